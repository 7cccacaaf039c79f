"""The gateway conformance suite: every gateway plugin behaves the same from the outside.

For test suites only: this module imports pytest and Hypothesis. ``import refundkit`` never
imports it.

How a plugin uses it
--------------------
1. Write a harness, a ``ConformanceHarness`` subclass. Its ``gateway`` is the gateway under
   test; its ``scenario(name)`` context manager arranges one scenario of ``SCENARIOS`` and
   yields a ``Scenario``: the payment at the gateway (``gateway_payment_id``, ``amount``) and
   the refund the suite will send (``refund_amount``, ``refund_id``, ``idempotency_key``).
   ``SCENARIOS`` says what each scenario must arrange and exactly which gateway calls the
   suite then makes, in order.
2. Subclass ``GatewayConformance`` in a test module (the subclass name starts with ``Test``)
   and give it a ``harness`` fixture::

       import pytest
       from refundkit.testing import GatewayConformance

       class TestStripeConformance(GatewayConformance):
           @pytest.fixture
           def harness(self) -> Iterator[StripeHarness]:
               with StripeHarness(CASSETTES / "conformance") as harness:
                   yield harness

   Every ``test_*`` method of ``GatewayConformance`` then runs against the plugin.

A harness may declare a scenario it cannot arrange unsupported by raising
``ScenarioNotSupported(reason)`` when it is entered; the test is then skipped. The gateway's
capabilities must explain it: ``partial_refund`` only without ``capabilities.partial_refunds``,
``idempotent_retry`` only without ``capabilities.idempotency_keys``, ``unknown_then_lookup``
only without ``capabilities.lookup`` (the suite then checks that a resend with the same key
gives the same refund instead), the two webhook scenarios only when the gateway does not
implement ``parse_webhook``, ``card_masking`` only when the harness sets
``fetch_payment_supported = False``. Any other skip fails the suite.

Cassette-based plugins (vcrpy, ``record_mode="none"``) record one cassette per scenario,
e.g. ``cassettes/<gateway>/conformance/<scenario>.yaml``, holding exactly the calls listed in
``SCENARIOS``. ``scenario(name)`` opens that cassette and yields the ids and amounts recorded
in it (the charge id, the amount, the refund id and idempotency key the recorded request
carried); a missing or extra request then fails loudly. For ``unknown_then_lookup`` the harness
makes the recorded refund reply arrive as a timeout (the gateway applied it, the plugin raises
``GatewayTimeout``), and the cassette holds the lookups that follow, including one for
``Scenario.unsent_request()`` that finds nothing. For the webhook scenarios put the recorded
delivery (headers and body) in ``Scenario.webhook``; the default ``ConformanceHarness.webhooks``
derives a tampered copy (``tamper_webhook``) unless ``Scenario.tampered_webhook`` is given.
Pin the plugin's clock to the recording time so signature timestamps stay valid.

Gateway truth (three more scenarios, in ``refundkit.testing._truth``): the harness also
declares what the suite cannot know about the gateway. ``status_table()`` returns a
``StatusTable``: every status the gateway's SDK or API specification lists for a refund, and
the plugin's table from each to a kit outcome (``test_status_table_is_complete``).
``error_body(code, message)`` builds an error body as the gateway writes it, ``error_codes``
lists the codes it uses, and ``server_error(status, body)`` arranges a refund request answered
with that HTTP status and body (a cassette built on the fly, a fake HTTP client) and yields the
request (``test_server_error_never_releases_money``). ``webhook_histories()`` yields
``WebhookHistory`` values: refunds' lives as the gateway announces them, each delivery with
the status the gateway then holds the refund in (``test_webhooks_converge_in_any_order``).

A conformance failure is an ``AssertionError`` whose message says what the gateway did wrong.
"""

from __future__ import annotations

import abc
import contextlib
import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from fractions import Fraction
from types import MappingProxyType, TracebackType
from typing import Final, NoReturn, Self, TypeAlias, TypeVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .._currencies import EXPONENTS
from .._errors import (
    AmountNotRepresentable,
    GatewayDeclined,
    GatewayTimeout,
    InvalidMoney,
    RefundkitError,
    WebhookVerificationError,
)
from .._gateway import (
    Capabilities,
    Gateway,
    GatewayPayment,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundUpdate,
)
from .._model import Card
from .._money import MAX_AMOUNT, Money
from .._pans import find_pans
from ._truth import (
    StatusTable,
    WebhookHistory,
    check_server_errors,
    check_status_table,
    check_webhook_orders,
)

__all__ = [
    "DEFAULT_CURRENCIES",
    "SCENARIOS",
    "ConformanceHarness",
    "GatewayConformance",
    "Scenario",
    "ScenarioNotSupported",
    "StatusTable",
    "WebhookDelivery",
    "WebhookHistory",
    "tamper_webhook",
]

_T = TypeVar("_T")

#: One inbound webhook as a web framework hands it over: (headers, raw body).
WebhookDelivery: TypeAlias = tuple[Mapping[str, str], bytes]

#: Each scenario: what the harness must arrange, then the gateway calls the suite makes.
SCENARIOS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "full_refund": (
            "A captured, settled payment with nothing refunded; refund_amount == amount; the"
            " gateway accepts the refund. Calls: refund(request)."
        ),
        "partial_refund": (
            "Like full_refund with 0 < refund_amount < amount. Calls: refund(request), then"
            " fetch_payment(gateway_payment_id) if the harness fetches payments."
        ),
        "over_refund": (
            "A payment with nothing refunded; refund_amount > amount; the gateway declines it."
            " Calls: refund(request)."
        ),
        "idempotent_retry": (
            "A payment with nothing refunded (refund_amount at most half the amount, so a"
            " double refund would fit and show). Calls: refund(request) twice with the same"
            " idempotency key, then fetch_payment(gateway_payment_id) if the harness fetches"
            " payments."
        ),
        "unknown_then_lookup": (
            "The first refund call reaches the gateway and is applied, but the plugin raises"
            " GatewayTimeout. Calls: refund(request) -> GatewayTimeout, lookup_refund(request),"
            " lookup_refund(unsent_request()) -> None."
        ),
        "webhook_succeeded": (
            "A refund whose final status a webhook announces as succeeded. Calls:"
            " refund(request), harness.webhooks(scenario, result), then parse_webhook on the"
            " genuine delivery (twice), the tampered one and the body without headers."
        ),
        "webhook_failed": (
            "Like webhook_succeeded, but the webhook announces the refund failed (or reversed)."
        ),
        "card_masking": (
            "A payment made with a card (with its first 6 digits if the gateway reports them)."
            " Calls: fetch_payment(gateway_payment_id)."
        ),
    }
)

#: Round-trip currencies every harness checks: ISO exponents 0, 2, 3 and 4, and the codes
#: where gateways disagree with ISO 4217 (ISK, CLP, IDR, UGX, MGA, CVE).
DEFAULT_CURRENCIES: Final[tuple[str, ...]] = (
    "USD",
    "EUR",
    "GBP",
    "JPY",
    "KRW",
    "VND",
    "BHD",
    "KWD",
    "TND",
    "CLF",
    "ISK",
    "CLP",
    "IDR",
    "UGX",
    "MGA",
    "CVE",
)

#: Amounts (ISO minor units) every currency is round-tripped with, before random ones.
ROUND_TRIP_AMOUNTS: Final[tuple[int, ...]] = (0, 1, 5, 99, 100, 101, 1050, 10**9, MAX_AMOUNT)

_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)
_ACCEPTED: Final = frozenset({"succeeded"})
_ACCEPTED_ASYNC: Final = frozenset({"succeeded", "pending"})


class ScenarioNotSupported(Exception):
    """Raised by ``ConformanceHarness.scenario`` for a scenario it cannot arrange.

    The suite skips the test with ``reason``, but only if the gateway's capabilities explain
    it (see the module docstring); otherwise the test fails.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _same_currency(instance: Scenario, attribute: attrs.Attribute[Money], value: Money) -> None:
    if value.currency != instance.amount.currency:
        raise ValueError(
            f"Scenario.refund_amount is in {value.currency}, the payment in "
            f"{instance.amount.currency}"
        )


@attrs.frozen(kw_only=True)
class Scenario:
    """One arranged scenario: a payment at the gateway and the refund the suite sends."""

    #: The payment as the gateway names it (the charge, transaction or PSP reference).
    gateway_payment_id: str
    #: The payment's amount.
    amount: Money
    #: The amount the suite asks to refund.
    refund_amount: Money = attrs.field(validator=_same_currency)
    #: Our refund id, as the gateway receives it (metadata, order id, reference).
    refund_id: str
    idempotency_key: str
    #: Our payment id (defaults to ``"pay_" + gateway_payment_id``).
    payment_id: str = attrs.field()
    reason: str | None = "requested_by_customer"
    #: Webhook scenarios: the recorded delivery announcing the refund's outcome.
    webhook: WebhookDelivery | None = None
    #: Webhook scenarios: the same delivery with one byte of the body changed or a bad
    #: signature (``tamper_webhook(webhook)`` when None).
    tampered_webhook: WebhookDelivery | None = None
    #: ``unknown_then_lookup``: the ids of a refund that was never sent (lookup finds None).
    unsent_refund_id: str = attrs.field()
    unsent_idempotency_key: str = attrs.field()

    @payment_id.default
    def _payment_id(self) -> str:
        return "pay_" + self.gateway_payment_id

    @unsent_refund_id.default
    def _unsent_refund_id(self) -> str:
        return self.refund_id + "_unsent"

    @unsent_idempotency_key.default
    def _unsent_idempotency_key(self) -> str:
        return self.idempotency_key + "-unsent"

    def request(self, amount: Money | None = None, void: bool = False) -> GatewayRefundRequest:
        """The refund request of this scenario (``amount`` defaults to ``refund_amount``)."""
        return GatewayRefundRequest(
            refund_id=self.refund_id,
            payment_id=self.payment_id,
            gateway_payment_id=self.gateway_payment_id,
            amount=self.refund_amount if amount is None else amount,
            idempotency_key=self.idempotency_key,
            reason=self.reason,
            void=void,
        )

    def unsent_request(self) -> GatewayRefundRequest:
        """A request for the same payment that was never sent to the gateway."""
        return attrs.evolve(
            self.request(),
            refund_id=self.unsent_refund_id,
            idempotency_key=self.unsent_idempotency_key,
        )


def tamper_webhook(delivery: WebhookDelivery) -> WebhookDelivery:
    """The same delivery with one byte of the body changed (a letter or digit near the middle).

    A gateway that verifies signatures must refuse it with ``WebhookVerificationError``.
    """
    headers, body = delivery
    if not body:
        return dict(headers), b"0"
    middle = len(body) // 2
    index = middle
    for offset in range(len(body)):
        candidates = [i for i in (middle - offset, middle + offset) if 0 <= i < len(body)]
        found = [i for i in candidates if body[i : i + 1].isalnum()]
        if found:
            index = found[0]
            break
        if not candidates:
            break
    changed = bytearray(body)
    changed[index] ^= 0x01
    return dict(headers), bytes(changed)


class ConformanceHarness(abc.ABC):
    """What a plugin supplies to the suite: its gateway, and each scenario arranged.

    Use it as a context manager (``with Harness(...) as harness``) so ``close`` runs.
    """

    #: False when the gateway has no call to fetch a payment: the suite then leaves out its
    #: fetch_payment checks and the harness may declare ``card_masking`` unsupported.
    fetch_payment_supported: bool = True

    @property
    @abc.abstractmethod
    def gateway(self) -> Gateway:
        """The gateway under test, configured for the harness (fakes, cassettes, sandbox)."""

    @property
    def currencies(self) -> Sequence[str]:
        """Currencies of the amount round trip: ``DEFAULT_CURRENCIES`` and the gateway's own."""
        own = sorted(self.gateway.capabilities.currency_exponents)
        return tuple(dict.fromkeys([*DEFAULT_CURRENCIES, *own]))

    @abc.abstractmethod
    def scenario(self, name: str) -> AbstractContextManager[Scenario]:
        """Arrange scenario ``name`` (a key of ``SCENARIOS``) and yield it.

        Raise ``ScenarioNotSupported(reason)`` on entering for a scenario this gateway cannot
        have; the suite checks that its capabilities explain why.
        """

    def webhooks(
        self, scenario: Scenario, result: GatewayRefundResult
    ) -> tuple[WebhookDelivery, WebhookDelivery]:
        """(genuine, tampered) deliveries announcing the outcome of the refund just made.

        The default returns ``scenario.webhook`` and ``scenario.tampered_webhook`` (or a
        tampered copy), which suits recorded webhooks; a live fake (the sandbox) overrides it
        to settle the refund and return the webhook it sends.
        """
        if scenario.webhook is None:
            raise NotImplementedError(
                f"{type(self).__name__}: a webhook scenario needs Scenario.webhook, or"
                " override ConformanceHarness.webhooks()"
            )
        tampered = scenario.tampered_webhook or tamper_webhook(scenario.webhook)
        return scenario.webhook, tampered

    # --- gateway truth: what the plugin declares about its gateway --------------------------

    #: Error codes the gateway puts in its error bodies (its refusals, rate limits, "not
    #: found"...); the server-error scenario sends each in a 5xx body built by ``error_body``.
    error_codes: Collection[str] = ()

    def status_table(self) -> StatusTable:
        """The gateway's refund statuses and the plugin's table of them (``StatusTable``)."""
        raise NotImplementedError(
            "return a StatusTable: every status the gateway's SDK or API specification lists"
            " for a refund, and the plugin's table from each to a kit outcome"
        )

    def error_body(self, code: str, message: str) -> bytes:
        """An error response body as the gateway writes it, carrying ``code`` and ``message``."""
        raise NotImplementedError(
            "return the body of an error response as the gateway writes it, with this code"
        )

    def server_error(
        self, status: int, body: bytes
    ) -> AbstractContextManager[GatewayRefundRequest]:
        """Arrange a refund request that the gateway answers with HTTP ``status`` and
        ``body``, and yield the request (``harness.gateway.refund`` is called with it once)."""
        raise NotImplementedError(
            "arrange a refund request answered with this HTTP status and body (a cassette"
            " built for it, a fake HTTP client) and yield the request"
        )

    def webhook_histories(self) -> AbstractContextManager[Sequence[WebhookHistory]]:
        """Refunds' lives as the gateway announces them: at least one that succeeds, one that
        fails, and one that fails or is reversed after it succeeded (``WebhookHistory``)."""
        raise NotImplementedError(
            "yield WebhookHistory values: the signed deliveries of a refund's life, in the"
            " order the gateway sends them, each with the status the gateway then holds"
        )

    def close(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Release what the harness holds (connections, cassettes). The default does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# --- which scenarios may be skipped ------------------------------------------------------------


def implements_webhooks(gateway: Gateway) -> bool:
    """Does the gateway implement ``parse_webhook`` (rather than inherit the no-op)?"""
    return type(gateway).parse_webhook is not Gateway.parse_webhook


def _requirement(name: str, harness: ConformanceHarness) -> tuple[bool, str]:
    """(may the harness skip ``name``?, the capability that says so)."""
    caps = harness.gateway.capabilities
    if name == "partial_refund":
        return not caps.partial_refunds, f"capabilities.partial_refunds is {caps.partial_refunds}"
    if name == "idempotent_retry":
        return (
            not caps.idempotency_keys,
            f"capabilities.idempotency_keys is {caps.idempotency_keys}",
        )
    if name == "unknown_then_lookup":
        return not caps.lookup, f"capabilities.lookup is {caps.lookup}"
    if name in ("webhook_succeeded", "webhook_failed"):
        webhooks = implements_webhooks(harness.gateway)
        return not webhooks, (
            "the gateway implements parse_webhook"
            if webhooks
            else "the gateway does not implement parse_webhook"
        )
    if name == "card_masking":
        fetches = harness.fetch_payment_supported
        return not fetches, f"harness.fetch_payment_supported is {fetches}"
    return False, "every gateway must support it"


def _fail(message: str) -> NoReturn:
    __tracebackhide__ = True
    raise AssertionError(message)


def _check_shape(name: str, scenario: object) -> Scenario:
    """The harness kept the scenario's contract (a harness bug fails here, not in a check)."""
    if not isinstance(scenario, Scenario):
        _fail(f"harness error: scenario {name!r} yielded {scenario!r}, not a Scenario")
    problems = [
        f"{field} is empty"
        for field in ("gateway_payment_id", "refund_id", "idempotency_key", "payment_id")
        if not getattr(scenario, field)
    ]
    if scenario.amount.amount <= 0 or scenario.refund_amount.amount <= 0:
        problems.append("amounts must be positive")
    amount, refund = scenario.amount.amount, scenario.refund_amount.amount
    if name == "full_refund" and refund != amount:
        problems.append("refund_amount must equal amount")
    elif name == "partial_refund" and not refund < amount:
        problems.append("refund_amount must be less than amount")
    elif name == "over_refund" and not refund > amount:
        problems.append("refund_amount must exceed amount")
    elif name not in ("full_refund", "partial_refund", "over_refund") and refund > amount:
        problems.append("refund_amount must not exceed amount")
    if problems:
        _fail(f"harness error in scenario {name!r}: {'; '.join(problems)} ({scenario!r})")
    return scenario


def _enter(stack: contextlib.ExitStack, harness: ConformanceHarness, name: str) -> Scenario | str:
    """The arranged scenario, or why it may be skipped; fails on a skip nothing explains."""
    try:
        scenario = stack.enter_context(harness.scenario(name))
    except ScenarioNotSupported as exc:
        optional, because = _requirement(name, harness)
        if not optional:
            _fail(
                f"the harness declared scenario {name!r} unsupported ({exc.reason}), but it"
                f" is required: {because}"
            )
        return f"{name}: {exc.reason} ({because})"
    return _check_shape(name, scenario)


@contextlib.contextmanager
def _arranged(harness: ConformanceHarness, name: str) -> Iterator[Scenario]:
    with contextlib.ExitStack() as stack:
        entered = _enter(stack, harness, name)
        if isinstance(entered, str):
            pytest.skip(entered)
        yield entered


# --- the gateway's calls, each checked ---------------------------------------------------------


def _type_name(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


class _Checked:
    """The gateway's calls: any exception that is not a ``RefundkitError`` with a stable
    ``code`` fails the suite, and so does a reply of the wrong type."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _call(self, method: str, call: Callable[[], _T]) -> _T:
        __tracebackhide__ = True
        try:
            return call()
        except RefundkitError as exc:
            if not (isinstance(exc.code, str) and exc.code):
                _fail(f"{self.gateway!r}.{method} raised {exc!r} without a stable code")
            raise
        except Exception as exc:
            _fail(
                f"{self.gateway!r}.{method} raised {_type_name(exc)}: {exc}; a gateway raises"
                " only refundkit errors (translate SDK exceptions at the boundary)"
            )

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        result = self._call("refund", lambda: self.gateway.refund(request))
        assert isinstance(result, GatewayRefundResult), (
            f"refund() returned {result!r}, not a GatewayRefundResult"
        )
        return result

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        result = self._call("lookup_refund", lambda: self.gateway.lookup_refund(request))
        assert result is None or isinstance(result, GatewayRefundResult), (
            f"lookup_refund() returned {result!r}, not a GatewayRefundResult or None"
        )
        return result

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        payment = self._call(
            "fetch_payment", lambda: self.gateway.fetch_payment(gateway_payment_id)
        )
        assert isinstance(payment, GatewayPayment), (
            f"fetch_payment() returned {payment!r}, not a GatewayPayment"
        )
        assert payment.gateway_payment_id == gateway_payment_id, (
            f"fetch_payment({gateway_payment_id!r}) returned payment {payment.gateway_payment_id!r}"
        )
        return payment

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
        updates = self._call("parse_webhook", lambda: self.gateway.parse_webhook(headers, body))
        assert isinstance(updates, list), f"parse_webhook() returned {updates!r}, not a list"
        for update in updates:
            assert isinstance(update, GatewayRefundUpdate), (
                f"parse_webhook() returned {update!r}, not a GatewayRefundUpdate"
            )
        return updates

    def to_gateway_amount(self, money: Money) -> int:
        return self._call("to_gateway_amount", lambda: self.gateway.to_gateway_amount(money))

    def from_gateway_amount(self, amount: object, currency: str) -> Money:
        # ``amount`` is deliberately loose: the suite feeds wrong types on purpose.
        return self._call(
            "from_gateway_amount",
            lambda: self.gateway.from_gateway_amount(amount, currency),  # type: ignore[arg-type]
        )


# --- shared checks -----------------------------------------------------------------------------


def _accepted(gateway: Gateway) -> frozenset[str]:
    """Statuses of an accepted refund: succeeded, or pending too for async gateways."""
    return _ACCEPTED_ASYNC if gateway.capabilities.async_outcome else _ACCEPTED


def _check_result(
    result: GatewayRefundResult,
    request: GatewayRefundRequest,
    statuses: frozenset[str],
    what: str,
) -> str:
    """Checks one accepted refund; returns its gateway refund id."""
    assert result.status in statuses, (
        f"{what}: status {result.status!r}, expected {' or '.join(sorted(statuses))} ({result!r})"
    )
    gateway_refund_id = result.gateway_refund_id
    assert isinstance(gateway_refund_id, str), f"{what}: no gateway_refund_id in {result!r}"
    assert gateway_refund_id.strip(), f"{what}: empty gateway_refund_id in {result!r}"
    assert result.amount is None or result.amount == request.amount, (
        f"{what}: the gateway answered {result.amount!r} for a refund of {request.amount!r}"
    )
    return gateway_refund_id


def _check_refunded(
    calls: _Checked, scenario: Scenario, *, at_least: Money | None, at_most: Money
) -> None:
    """fetch_payment agrees with the scenario and shows a refunded total within bounds."""
    payment = calls.fetch_payment(scenario.gateway_payment_id)
    assert payment.amount == scenario.amount, (
        f"fetch_payment() says the payment is {payment.amount!r}, not {scenario.amount!r}"
    )
    refunded = payment.refunded
    assert isinstance(refunded, Money), f"fetch_payment().refunded is {refunded!r}"
    assert refunded.currency == scenario.amount.currency, (
        f"fetch_payment().refunded is in {refunded.currency}, the payment in"
        f" {scenario.amount.currency}"
    )
    assert 0 <= refunded.amount <= at_most.amount, (
        f"fetch_payment() shows {refunded} refunded; at most {at_most} may be"
    )
    if at_least is not None:
        assert refunded.amount >= at_least.amount, (
            f"fetch_payment() shows {refunded} refunded after a succeeded refund of {at_least}"
        )


def _check_idempotent_retry(harness: ConformanceHarness, scenario: Scenario) -> None:
    calls = _Checked(harness.gateway)
    accepted = _accepted(harness.gateway)
    request = scenario.request()
    first = _check_result(calls.refund(request), request, accepted, "first request")
    second = _check_result(calls.refund(request), request, accepted, "the same request again")
    assert second == first, (
        f"the same request (idempotency key {request.idempotency_key!r}) sent twice made two"
        f" refunds: {first!r} and {second!r}"
    )
    if harness.fetch_payment_supported:
        _check_refunded(calls, scenario, at_least=None, at_most=request.amount)


def _expect_declined(calls: _Checked, request: GatewayRefundRequest, what: str) -> None:
    try:
        result = calls.refund(request)
    except GatewayDeclined:
        return
    except RefundkitError as exc:
        _fail(f"{what} must be declined with GatewayDeclined, not {exc!r}")
    _fail(f"{what} was accepted: {result!r}")


def _expect_unverified(calls: _Checked, delivery: WebhookDelivery, what: str) -> None:
    headers, body = delivery
    try:
        updates = calls.parse_webhook(headers, body)
    except WebhookVerificationError:
        return
    except RefundkitError as exc:
        _fail(f"{what} must raise WebhookVerificationError, not {exc!r}")
    _fail(f"{what} was accepted: {updates!r}")


def _check_webhook(harness: ConformanceHarness, name: str, final: frozenset[str]) -> None:
    with _arranged(harness, name) as scenario:
        calls = _Checked(harness.gateway)
        request = scenario.request()
        result = calls.refund(request)
        gateway_refund_id = _check_result(result, request, _accepted(harness.gateway), name)
        genuine, tampered = harness.webhooks(scenario, result)
        assert tampered != genuine, "harness error: the tampered webhook is the genuine one"
        updates = calls.parse_webhook(*genuine)
        ours = [
            u
            for u in updates
            if u.refund_id == scenario.refund_id or u.gateway_refund_id == gateway_refund_id
        ]
        assert ours, (
            f"no update names refund {scenario.refund_id!r} or {gateway_refund_id!r}: {updates!r}"
        )
        for update in ours:
            assert update.status in final, (
                f"the webhook says {update.status!r}, expected {' or '.join(sorted(final))}"
            )
            assert update.refund_id in (None, scenario.refund_id), (
                f"the update names refund {update.refund_id!r}, not {scenario.refund_id!r}"
            )
            assert update.gateway_refund_id in (None, gateway_refund_id), (
                f"the update names {update.gateway_refund_id!r}, not {gateway_refund_id!r}"
            )
            assert update.amount is None or update.amount == request.amount, (
                f"the update says {update.amount!r} for a refund of {request.amount!r}"
            )
        assert calls.parse_webhook(*genuine) == updates, (
            "parsing the same delivery twice gave different updates (deliveries repeat)"
        )
        _expect_unverified(calls, tampered, "a tampered webhook")
        _expect_unverified(calls, ({}, genuine[1]), "a webhook without headers")


def _check_round_trip(calls: _Checked, money: Money) -> None:
    """R-6.5 for one amount: exact round trip when representable, else a refusal."""
    __tracebackhide__ = True
    gateway = calls.gateway
    gateway_exponent = gateway.exponent(money.currency)
    shift = gateway_exponent - money.exponent
    if shift >= 0 or money.amount % 10**-shift == 0:
        try:
            wire = calls.to_gateway_amount(money)
            back = calls.from_gateway_amount(wire, money.currency)
        except RefundkitError as exc:
            _fail(f"{money!r} is representable with {gateway_exponent} decimals: {exc!r}")
        assert type(wire) is int, f"to_gateway_amount({money!r}) returned {wire!r}"
        assert Fraction(wire, 10**gateway_exponent) == Fraction(money.amount, 10**money.exponent), (
            f"{money!r} went to the gateway as {wire} with {gateway_exponent} decimals"
        )
        assert back == money, f"{money!r} came back from the gateway as {back!r}"
        return
    try:
        wire = calls.to_gateway_amount(money)
    except AmountNotRepresentable:
        return
    except RefundkitError as exc:
        _fail(f"{money!r} must be refused with AmountNotRepresentable, not {exc!r}")
    _fail(
        f"{money!r} has no exact form with {gateway_exponent} decimals, yet it went to the"
        f" gateway as {wire} (rounded)"
    )


_ROUND_TRIP_EXAMPLES: Final = 60

_amounts: Final = st.one_of(
    st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT),
    # near multiples of 100, so both outcomes come up where the gateway has fewer decimals
    st.builds(
        lambda whole, rest: whole * 100 + rest,
        st.integers(min_value=-(10**12), max_value=10**12),
        st.integers(min_value=-99, max_value=99),
    ),
)


# --- the suite -------------------------------------------------------------------------------


class GatewayConformance:
    """The conformance suite. Subclass it as ``Test<Gateway>Conformance`` with a ``harness``
    fixture returning (or yielding) your ``ConformanceHarness``; see the module docstring."""

    def test_capabilities_are_consistent(self, harness: ConformanceHarness) -> None:
        """The capabilities the policy reads make sense together, and unknown refunds can be
        resolved (by lookup or by resending under the same idempotency key)."""
        gateway = harness.gateway
        assert isinstance(gateway, Gateway), f"{gateway!r} is not a refundkit Gateway"
        assert isinstance(gateway.name, str), f"gateway name {gateway.name!r} is not a string"
        assert gateway.name.strip(), "the gateway has no name"
        caps = gateway.capabilities
        assert isinstance(caps, Capabilities), f"capabilities is {caps!r}"
        for field in ("max_refunds_per_payment", "refund_window_days", "idempotency_window_hours"):
            value = getattr(caps, field)
            assert value is None or (type(value) is int and value >= 1), (
                f"capabilities.{field} is {value!r}: None or a positive int"
            )
        assert caps.idempotency_window_hours is None or caps.idempotency_keys, (
            "capabilities.idempotency_window_hours is set but idempotency_keys is False"
        )
        for currency, exponent in caps.currency_exponents.items():
            assert currency in EXPONENTS, (
                f"capabilities.currency_exponents names {currency!r}, not an ISO 4217 code"
                " with minor units"
            )
            assert type(exponent) is int, (
                f"capabilities.currency_exponents[{currency!r}] is {exponent!r}, not an int"
            )
            assert 0 <= exponent <= 4, (
                f"capabilities.currency_exponents[{currency!r}] is {exponent}, not 0-4"
            )
        assert caps.lookup or caps.idempotency_keys, (
            "the gateway has neither lookup nor idempotency keys: an unknown refund (timeout)"
            " could never be resolved"
        )
        assert not caps.async_outcome or caps.lookup or implements_webhooks(gateway), (
            "outcomes arrive later (async_outcome) but the gateway has neither lookup nor"
            " webhooks to learn them"
        )

    def test_harness_supports_every_scenario_its_capabilities_claim(
        self, harness: ConformanceHarness
    ) -> None:
        """A harness may skip a scenario only when the capabilities explain it."""
        problems: list[str] = []
        for name in SCENARIOS:
            with contextlib.ExitStack() as stack:
                try:
                    _enter(stack, harness, name)  # fails on an unexplained skip
                except AssertionError as exc:
                    problems.append(str(exc))
        assert not problems, "\n".join(problems)

    def test_full_refund(self, harness: ConformanceHarness) -> None:
        """A refund of the whole payment is accepted with the gateway's refund id."""
        with _arranged(harness, "full_refund") as scenario:
            request = scenario.request()
            result = _Checked(harness.gateway).refund(request)
            _check_result(result, request, _accepted(harness.gateway), "full refund")

    def test_partial_refund(self, harness: ConformanceHarness) -> None:
        """A refund of part of the payment is accepted; the gateway shows no more refunded
        than the payment."""
        with _arranged(harness, "partial_refund") as scenario:
            calls = _Checked(harness.gateway)
            request = scenario.request()
            result = calls.refund(request)
            _check_result(result, request, _accepted(harness.gateway), "partial refund")
            if harness.fetch_payment_supported:
                succeeded = result.status == "succeeded"
                _check_refunded(
                    calls,
                    scenario,
                    at_least=request.amount if succeeded else None,
                    at_most=scenario.amount,
                )

    def test_over_refund(self, harness: ConformanceHarness) -> None:
        """A refund of more than the payment is declined (GatewayDeclined), never accepted."""
        with _arranged(harness, "over_refund") as scenario:
            _expect_declined(
                _Checked(harness.gateway),
                scenario.request(),
                f"a refund of {scenario.refund_amount} on a payment of {scenario.amount}",
            )

    def test_idempotent_retry(self, harness: ConformanceHarness) -> None:
        """The same request sent twice makes one refund, with one gateway refund id."""
        with _arranged(harness, "idempotent_retry") as scenario:
            _check_idempotent_retry(harness, scenario)

    def test_unknown_then_lookup(self, harness: ConformanceHarness) -> None:
        """After a timeout the refund is found by lookup; a never-sent one is not found.

        Without ``capabilities.lookup`` a resend under the same idempotency key must give the
        same refund instead.
        """
        with contextlib.ExitStack() as stack:
            entered = _enter(stack, harness, "unknown_then_lookup")
            if isinstance(entered, str):
                if not harness.gateway.capabilities.idempotency_keys:
                    _fail(f"{entered}; without idempotency keys either, unknown refunds stay")
                with _arranged(harness, "idempotent_retry") as retry:
                    _check_idempotent_retry(harness, retry)
                return
            scenario = entered
            calls = _Checked(harness.gateway)
            request = scenario.request()
            try:
                result = calls.refund(request)
            except GatewayTimeout:
                pass
            else:
                _fail(f"harness error: the first call was to time out, it returned {result!r}")
            found = calls.lookup_refund(request)
            assert found is not None, (
                "lookup_refund() found nothing for a refund the gateway applied before the timeout"
            )
            _check_result(found, request, _accepted(harness.gateway), "lookup after a timeout")
            unsent = calls.lookup_refund(scenario.unsent_request())
            assert unsent is None, f"lookup_refund() of a never-sent refund found {unsent!r}"

    def test_webhook_succeeded(self, harness: ConformanceHarness) -> None:
        """A signed webhook says the refund succeeded; a tampered or unsigned one is refused."""
        _check_webhook(harness, "webhook_succeeded", frozenset({"succeeded"}))

    def test_webhook_failed(self, harness: ConformanceHarness) -> None:
        """A signed webhook says the refund failed; a tampered or unsigned one is refused."""
        _check_webhook(harness, "webhook_failed", frozenset({"failed", "reversed"}))

    def test_card_masking(self, harness: ConformanceHarness) -> None:
        """The card of a payment is brand, last 4, expiry and at most the first 6 digits;
        no card number shows in its repr or its event form."""
        with _arranged(harness, "card_masking") as scenario:
            payment = _Checked(harness.gateway).fetch_payment(scenario.gateway_payment_id)
            card = payment.card
            assert isinstance(card, Card), f"the scenario's payment has no card: {payment!r}"
            assert isinstance(card.last4, str), f"last4 is {card.last4!r}"
            assert len(card.last4) == 4, f"last4 is {card.last4!r}, not 4 digits"
            assert _DIGITS.fullmatch(card.last4), f"last4 is {card.last4!r}, not 4 digits"
            assert card.first6 is None or (
                isinstance(card.first6, str)
                and len(card.first6) == 6
                and _DIGITS.fullmatch(card.first6)
            ), f"first6 is {card.first6!r}, not None or 6 digits"
            assert isinstance(card.brand, str), f"brand is {card.brand!r}"
            assert card.brand.strip(), "the card has no brand"
            for label, text in (
                ("repr(card)", repr(card)),
                ("str(card)", str(card)),
                ("card.to_dict()", json.dumps(card.to_dict())),
                ("card.display()", card.display()),
            ):
                assert not find_pans(text, luhn=False), f"{label} holds a long number: {text}"
            # The payment id may be a long number itself (Adyen's PSP references are).
            rest = repr(payment).replace(payment.gateway_payment_id, "<id>")
            assert not find_pans(rest), f"repr(payment) holds a card number: {rest}"

    def test_amount_round_trip(self, harness: ConformanceHarness) -> None:
        """R-6.5: ``from_gateway_amount(to_gateway_amount(m)) == m`` when the gateway can
        carry ``m``, ``AmountNotRepresentable`` otherwise: never rounded."""
        gateway = harness.gateway
        calls = _Checked(gateway)
        currencies = list(dict.fromkeys(harness.currencies))
        assert currencies, "harness.currencies is empty"
        for currency in currencies:
            expected = gateway.capabilities.currency_exponents.get(currency, EXPONENTS[currency])
            assert gateway.exponent(currency) == expected, (
                f"exponent({currency!r}) is {gateway.exponent(currency)}, but the capabilities"
                f" (and ISO 4217) say {expected}"
            )
            for amount in ROUND_TRIP_AMOUNTS:
                _check_round_trip(calls, Money(amount, currency))

        @settings(max_examples=_ROUND_TRIP_EXAMPLES, deadline=None, database=None)
        @given(currency=st.sampled_from(currencies), amount=_amounts)
        def random_amounts(currency: str, amount: int) -> None:
            _check_round_trip(calls, Money(amount, currency))

        random_amounts()

    def test_errors_are_refundkit_errors(self, harness: ConformanceHarness) -> None:
        """Bad input is refused with refundkit errors (every scenario test checks the same of
        every call it makes): amounts of the wrong type or currency, unsigned webhooks."""
        gateway = harness.gateway
        calls = _Checked(gateway)
        for amount, currency in ((1.5, "USD"), (True, "USD"), ("100", "USD"), (100, "usd")):
            try:
                money = calls.from_gateway_amount(amount, currency)
            except InvalidMoney:
                continue
            _fail(f"from_gateway_amount({amount!r}, {currency!r}) returned {money!r}")
        if implements_webhooks(gateway):
            for body in (b"", b"{}", b"not json", b"\xff\xfe", b'{"id": "evt_1", "data": {}}'):
                _expect_unverified(calls, ({}, body), f"an unsigned webhook body {body!r}")
            _expect_unverified(
                calls, ({"signature": "t=1,v1=00"}, b"{}"), "a webhook with a made-up signature"
            )

    def test_status_table_is_complete(self, harness: ConformanceHarness) -> None:
        """Every status the gateway's SDK or specification lists for a refund maps to a kit
        outcome in the plugin's status table."""
        check_status_table(harness)

    def test_server_error_never_releases_money(self, harness: ConformanceHarness) -> None:
        """A 5xx with any body (the gateway's error bodies with every error code, a proxy's
        page, nothing, random bytes) is never a definite refusal: the kit holds the refund."""
        check_server_errors(harness)

    def test_webhooks_converge_in_any_order(self, harness: ConformanceHarness) -> None:
        """Each webhook reports the state the gateway holds the refund in now; a refund's
        webhooks in every order, repeated, end where the gateway's books are."""
        check_webhook_orders(harness)

    def test_repr_hides_configuration(self, harness: ConformanceHarness) -> None:
        """Configuration may hold secrets: the gateway's repr and str never show it."""
        gateway = harness.gateway
        shown = repr(gateway) + str(gateway)
        for key, value in gateway.config.items():
            if isinstance(value, str) and len(value) >= 6:
                assert value not in shown, f"repr(gateway) shows config[{key!r}]"

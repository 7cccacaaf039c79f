"""Gateway truth: the conformance scenarios that keep a plugin honest about money (issue 15).

Three scenarios of ``GatewayConformance``, each fed by what the plugin's harness declares:

* **status table** (``test_status_table_is_complete``): every status the gateway's SDK or API
  specification says a refund can be in maps to a kit outcome (``StatusTable``).
* **server errors** (``test_server_error_never_releases_money``): a 5xx, with any body (the
  gateway's own error bodies carrying each error code, a proxy's page, nothing, garbage),
  never releases money: what the plugin raises is not a definite refusal
  (``refundkit._engine.outcomes.releases``, the rule the kit applies).
* **webhook orders** (``test_webhooks_converge_in_any_order``): each delivery of a refund's life
  reports the state the gateway says the refund is in now (its status table's outcome), and
  the deliveries, in every order and with any one of them repeated, converge through a real
  kit on the gateway's truth: the same status, the amount held or released accordingly, a
  balanced journal, at most one ``charge.refunded`` and none for a refund never paid out.

For the last one the kit talks to a stand-in gateway named ``conformance``: the plugin's own
``parse_webhook`` and capabilities, refunds answered ``pending`` without a call, and lookups
answered with the history's last state (what the gateway holds once it sent everything).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar, get_args

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .._engine.outcomes import releases
from .._errors import GatewayPaymentNotFound, RefundkitError
from .._gateway import (
    Gateway,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundStatus,
    GatewayRefundUpdate,
)
from .._kit import RefundKit
from .._ledger import is_balanced
from .._model import Refund, RefundStatus
from .._money import Money
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .conformance import ConformanceHarness

_T = TypeVar("_T")
S = RefundStatus

#: One inbound webhook as a web framework hands it over: (headers, raw body).
Delivery = tuple[Mapping[str, str], bytes]

#: The kit's outcomes a status table may map to; ``unknown`` is a status the plugin holds the
#: refund on (a reply raises ``GatewayError``, a webhook gives no update), never a release.
OUTCOMES: Final[frozenset[str]] = frozenset(get_args(GatewayRefundStatus)) | {"unknown"}
_PAID_OUT: Final = frozenset({"succeeded", "reversed"})
_MONEY_BACK: Final = frozenset({"failed", "reversed"})

#: The 5xx statuses every body is tried with (random ones from 500-599 follow).
SERVER_ERROR_STATUSES: Final[tuple[int, ...]] = (500, 502, 503, 504)
#: Error codes that read like definite refusals at one gateway or another (Stripe, Braintree,
#: Adyen, the sandbox); each goes into a 5xx body beside the plugin's own ``error_codes``.
REFUSAL_LIKE_CODES: Final[tuple[str, ...]] = (
    "amount_too_large",
    "charge_already_refunded",
    "charge_disputed",
    "refund_declined",
    "declined",
    "resource_missing",
    "not_found",
    "rate_limit",
    "rate_limited",
    "too_many_requests",
    "lock_timeout",
    "unavailable",
    "service_unavailable",
    "validation",
    "91512",
    "91521",
    "137",
    "167",
    "703",
    "00_500",
)
#: Bodies a 5xx may carry that no gateway writes: a proxy's page, nothing, garbage.
ODD_BODIES: Final[tuple[bytes, ...]] = (
    b"",
    b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    b"upstream connect error or disconnect/reset before headers",
    b"{}",
    b"null",
    b"[]",
    b'{"error": "too many requests"}',
    b"\xff\xfe\x00",
)
_RANDOM_BODIES: Final = 20


def _statuses(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class StatusTable:
    """A plugin's declaration of its gateway's refund statuses (``status_table()``)."""

    #: Every status the gateway's SDK or API specification says a refund can be in, in the
    #: gateway's own words, read from there (an SDK's constants, a spec's enum), never from
    #: ``table``: the scenario checks that the table covers them.
    statuses: frozenset[str] = attrs.field(converter=_statuses)
    #: The plugin's table: gateway status → the kit outcome it means (``succeeded``,
    #: ``pending``, ``failed`` or ``reversed``).
    table: Mapping[str, str]


@attrs.frozen
class Report:
    """One webhook delivery, and the status the gateway holds the refund in once it sent it
    (a key of the status table)."""

    delivery: Delivery
    status: str


def _reports(value: Sequence[Report]) -> tuple[Report, ...]:
    return tuple(value)


@attrs.frozen
class WebhookHistory:
    """A refund's life at the gateway: the deliveries it sent, in the order it sent them."""

    #: What the life is, for messages (``succeeded_then_failed``, say).
    name: str
    #: The refund's amount, and how the deliveries name it: the gateway's id and ours (None
    #: when the gateway's deliveries do not carry our refund id).
    amount: Money
    gateway_refund_id: str
    refund_id: str | None
    reports: tuple[Report, ...] = attrs.field(converter=_reports)


def delivery_orders(n: int) -> list[tuple[int, ...]]:
    """Every order of ``n`` deliveries, and every order with one of them delivered twice."""
    orders = set(itertools.permutations(range(n)))
    for twice in range(n):
        orders |= set(itertools.permutations([*range(n), twice]))
    return sorted(orders)


# --- what the harness declares -----------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    __tracebackhide__ = True
    raise AssertionError(message)


def _declared(harness: ConformanceHarness, hook: str, call: Callable[[], _T]) -> _T:
    __tracebackhide__ = True
    try:
        return call()
    except NotImplementedError as exc:
        _fail(f"harness error: {type(harness).__name__} does not declare {hook}: {exc}")


def declared_table(harness: ConformanceHarness) -> StatusTable:
    declared = _declared(harness, "status_table()", harness.status_table)
    if not isinstance(declared, StatusTable):
        _fail(f"harness error: status_table() returned {declared!r}, not a StatusTable")
    return declared


def _names(update: GatewayRefundUpdate, history: WebhookHistory) -> bool:
    if update.gateway_refund_id is not None:
        return update.gateway_refund_id == history.gateway_refund_id
    return update.refund_id is not None and update.refund_id == history.refund_id


def _show(body: bytes) -> str:
    return repr(body if len(body) <= 80 else body[:77] + b"...")


# --- the status table --------------------------------------------------------------------------


def check_status_table(harness: ConformanceHarness) -> None:
    """Every status the gateway can report maps to a kit outcome."""
    declared = declared_table(harness)
    name = harness.gateway.name
    assert declared.statuses, "harness error: status_table() declares no gateway statuses"
    problems: list[str] = []
    missing = sorted(declared.statuses - set(declared.table))
    if missing:
        problems.append(
            f"the status table has no entry for {', '.join(map(repr, missing))}, which {name}"
            " can report for a refund: every status must map to a kit outcome, or a refund in"
            " it cannot be booked"
        )
    wrong = {status: o for status, o in declared.table.items() if o not in OUTCOMES}
    if wrong:
        problems.append(
            f"the status table maps {wrong!r} to what is not a kit outcome"
            f" ({', '.join(sorted(OUTCOMES))})"
        )
    assert not problems, "\n".join(problems)


# --- server errors -----------------------------------------------------------------------------


def server_error_cases(harness: ConformanceHarness) -> list[tuple[int, bytes]]:
    """(status, body) of every 5xx the scenario sends: odd bodies and every error code."""
    codes = list(dict.fromkeys([*harness.error_codes, *REFUSAL_LIKE_CODES]))
    cases = [(status, body) for status in SERVER_ERROR_STATUSES for body in ODD_BODIES]
    for code in codes:
        body = _declared(
            harness,
            "error_body(code, message)",
            # The message too reads like a refusal (some gateways put the reason only there).
            functools.partial(harness.error_body, code, f"{code}: too many requests, declined"),
        )
        cases += [(status, body) for status in SERVER_ERROR_STATUSES]
        cases.append((SERVER_ERROR_STATUSES[0], body[: len(body) // 2]))  # cut short
    return cases


def server_error_problem(harness: ConformanceHarness, status: int, body: bytes) -> str | None:
    """What is wrong with how the plugin takes HTTP ``status`` with ``body``, or None."""
    what = f"HTTP {status} with body {_show(body)}"
    arranged = _declared(
        harness, "server_error(status, body)", lambda: harness.server_error(status, body)
    )
    with arranged as request:
        try:
            result = harness.gateway.refund(request)
        except RefundkitError as exc:
            if releases(exc):
                return (
                    f"{what}: refund() raised {type(exc).__name__} ({exc}), which releases the"
                    " reservation; a 5xx does not prove the gateway did nothing (read the HTTP"
                    " status before any code in the body): raise GatewayTimeout"
                )
            return None
        except Exception as exc:
            return (
                f"{what}: refund() raised {type(exc).__module__}.{type(exc).__qualname__}:"
                f" {exc}; a gateway raises only refundkit errors"
            )
    return f"{what}: refund() returned {result!r}; a 5xx is not a refund result"


def check_server_errors(harness: ConformanceHarness) -> None:
    """A 5xx with any body never releases money."""
    problems = [
        problem
        for status, body in server_error_cases(harness)
        if (problem := server_error_problem(harness, status, body)) is not None
    ]
    assert not problems, f"{len(problems)} server errors would release money:\n" + "\n".join(
        problems
    )
    bodies = st.one_of(
        st.binary(max_size=300),
        st.builds(harness.error_body, st.text(max_size=40), st.text(max_size=80)),
    )

    @settings(
        max_examples=_RANDOM_BODIES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(status=st.integers(min_value=500, max_value=599), body=bodies)
    def any_5xx(status: int, body: bytes) -> None:
        problem = server_error_problem(harness, status, body)
        assert problem is None, problem

    any_5xx()


# --- webhook orders ----------------------------------------------------------------------------


def check_webhook_orders(harness: ConformanceHarness) -> None:
    """Each delivery reports the state now; every order converges on the gateway's truth."""
    table = declared_table(harness).table
    arranged = _declared(harness, "webhook_histories()", harness.webhook_histories)
    with arranged as declared:
        histories = tuple(declared)
        _check_coverage(histories, table)
        for history in histories:
            _check_reports(harness.gateway, history, table)
        for history in histories:
            _check_orders(harness.gateway, history, table)


def _check_coverage(histories: Sequence[WebhookHistory], table: Mapping[str, str]) -> None:
    for history in histories:
        if not history.reports:
            _fail(f"harness error: webhook history {history.name!r} has no deliveries")
        for report in history.reports:
            if report.status not in table:
                _fail(
                    f"harness error: webhook history {history.name!r} says the gateway holds"
                    f" the refund {report.status!r}, which the status table does not have"
                )
    lives = [[table[r.status] for r in h.reports] for h in histories]
    wanted = {
        "a refund that succeeds": any(life[-1] == "succeeded" for life in lives),
        "a refund that fails": any(
            life[-1] == "failed" and not _PAID_OUT & set(life) for life in lives
        ),
        "a refund that fails or is reversed after it succeeded": any(
            "succeeded" in life and _MONEY_BACK & set(life[life.index("succeeded") :])
            for life in lives
        ),
    }
    missing = [what for what, found in wanted.items() if not found]
    if missing:
        _fail(f"harness error: webhook_histories() has no history of {'; '.join(missing)}")


def _parse(gateway: Gateway, delivery: Delivery, what: str) -> list[GatewayRefundUpdate]:
    try:
        return gateway.parse_webhook(*delivery)
    except Exception as exc:
        _fail(f"{what}: parse_webhook raised {type(exc).__name__}: {exc}")


def _check_reports(gateway: Gateway, history: WebhookHistory, table: Mapping[str, str]) -> None:
    for n, report in enumerate(history.reports):
        what = f"webhook history {history.name!r}, delivery {n + 1} ({report.status!r})"
        updates = _parse(gateway, report.delivery, what)
        ours = [u for u in updates if _names(u, history)]
        if not ours:
            _fail(f"{what}: parse_webhook gave no update for the refund: {updates!r}")
        for update in ours:
            if update.status != table[report.status]:
                _fail(
                    f"{what}: the gateway says the refund is now {report.status!r}"
                    f" ({table[report.status]!r} in the status table), but parse_webhook"
                    f" reports {update.status!r}. Report the state the gateway holds the"
                    " refund in now, never the change that led there: refundkit decides what"
                    " a state means from what it holds, whatever order deliveries arrive in"
                )
            if update.amount is not None and update.amount != history.amount:
                _fail(f"{what}: the update says {update.amount}, the refund is {history.amount}")


#: The stand-in gateway's name in the kit the orders are delivered to.
STAND_IN: Final = "conformance"


class _Life:
    """The gateway side of the stand-in: the history's last state, and which kit refund its
    deliveries are about now (each order gets a fresh refund, relabelled onto them)."""

    def __init__(self, real: Gateway, history: WebhookHistory, table: Mapping[str, str]) -> None:
        self.real, self.history = real, history
        #: The kit outcome of each delivery's state, in the gateway's order; the last is the
        #: state the gateway holds the refund in once it sent them all.
        self.outcomes = [table[report.status] for report in history.reports]
        self.truth = self.outcomes[-1]
        self.current: tuple[str, str] | None = None
        self.serial = 0

    def made(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        self.serial += 1
        self.current = (request.refund_id, f"cf_re_{self.serial}")
        return GatewayRefundResult("pending", self.current[1], request.amount)

    def looked_up(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        if self.current is None or request.refund_id != self.current[0]:
            return None
        status: Any = self.truth
        return GatewayRefundResult(status, self.current[1], request.amount)

    def parsed(self, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
        return [self._relabel(u) for u in self.real.parse_webhook(headers, body)]

    def _relabel(self, update: GatewayRefundUpdate) -> GatewayRefundUpdate:
        if self.current is None or not _names(update, self.history):
            return update
        refund_id, gateway_refund_id = self.current
        return attrs.evolve(update, refund_id=refund_id, gateway_refund_id=gateway_refund_id)


def _stand_in(life: _Life) -> type[Gateway]:
    class ConformanceStandIn(Gateway):
        """The gateway under test as the kit meets it here (see the module docstring)."""

        name = STAND_IN
        capabilities = life.real.capabilities

        def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
            return life.made(request)

        def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
            return life.looked_up(request)

        def fetch_payment(self, gateway_payment_id: str) -> Any:
            raise GatewayPaymentNotFound("the conformance stand-in fetches no payments")

        def parse_webhook(
            self, headers: Mapping[str, str], body: bytes
        ) -> list[GatewayRefundUpdate]:
            return life.parsed(headers, body)

    return ConformanceStandIn


class _Registers:
    def __init__(self, gateway_class: type[Gateway]) -> None:
        self._class = gateway_class

    @hookimpl
    def refundkit_register_gateways(self, register: Any) -> None:
        register(self._class)


@contextlib.contextmanager
def _kit(life: _Life) -> Iterator[RefundKit]:
    kit = RefundKit.open("sqlite://", autoload=False, plugins=[_Registers(_stand_in(life))])
    try:
        yield kit
    finally:
        kit.close()


def _check_orders(gateway: Gateway, history: WebhookHistory, table: Mapping[str, str]) -> None:
    life = _Life(gateway, history, table)
    with _kit(life) as kit:
        for order in delivery_orders(len(history.reports)):
            _deliver_in_order(kit, life, order)


def _deliver_in_order(kit: RefundKit, life: _Life, order: Collection[int]) -> None:
    history = life.history
    payment = kit.record_payment(
        id=f"pay_conformance_{life.serial + 1}",
        customer_id="cus_conformance",
        amount=history.amount,
        gateway=STAND_IN,
        gateway_payment_id=f"cf_ch_{life.serial + 1}",
    )
    refund = kit.refund(payment.id, history.amount)
    deliveries = [history.reports[i].delivery for i in order]
    for headers, body in deliveries:
        kit.handle_gateway_webhook(STAND_IN, headers, body)
    where = (
        f"webhook history {history.name!r} delivered in the order"
        f" {[history.reports[i].status for i in order]}"
    )
    after = kit.get_refund(refund.id)
    _check_truth(kit, after, life, where)
    events = kit.events(refund_id=refund.id)
    for headers, body in deliveries:  # all of them again: nothing changes
        kit.handle_gateway_webhook(STAND_IN, headers, body)
    again = kit.get_refund(refund.id)
    assert (again.status, kit.events(refund_id=refund.id)) == (after.status, events), (
        f"{where}, then delivered again: the refund moved from {after.status} to {again.status}"
        " or events were added; a delivery repeated must change nothing"
    )


def _check_truth(kit: RefundKit, refund: Refund, life: _Life, where: str) -> None:
    truth, amount = life.truth, refund.amount
    ends = {
        "succeeded": {S.SUCCEEDED},
        "pending": {S.PENDING},
        "failed": {S.FAILED, S.REVERSED},
        "reversed": {S.FAILED, S.REVERSED},
    }[truth]
    assert refund.status in ends, (
        f"{where}: refundkit holds the refund {refund.status}, the gateway holds it {truth}"
        f" (expected {' or '.join(sorted(s.value for s in ends))})"
    )
    payment = kit.payment(refund.payment_id)
    zero = Money.zero(amount.currency)
    held = amount if refund.status.holds_balance else zero
    assert payment.held == held, f"{where}: {payment.held} held, expected {held}"
    refunded = amount if refund.status is S.SUCCEEDED else zero
    assert payment.refunded == refunded, f"{where}: {payment.refunded} refunded, not {refunded}"
    types = [e.type for e in kit.events(refund_id=refund.id)]
    assert types.count("charge.refunded") <= 1, f"{where}: announced twice: {types}"
    paid_out = bool(_PAID_OUT & set(life.outcomes))
    assert paid_out or "charge.refunded" not in types, (
        f"{where}: charge.refunded announced for a refund the gateway never paid out: {types}"
    )
    assert is_balanced(kit.journal(refund.id)), f"{where}: the journal is not balanced"

"""The gateway conformance suite run against the sandbox, and proof that the suite can fail."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest

from refundkit._errors import GatewayDeclined, GatewayError, GatewayUnavailable
from refundkit._gateway import (
    Gateway,
    GatewayPayment,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundUpdate,
)
from refundkit._money import Money
from refundkit.gateways.sandbox import ERROR_CODES, SandboxGateway
from refundkit.testing import (
    SCENARIOS,
    ConformanceHarness,
    GatewayConformance,
    SandboxHarness,
    Scenario,
    ScenarioNotSupported,
    find_pans,
    luhn_valid,
    tamper_webhook,
)


class TestSandboxConformance(GatewayConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SandboxHarness]:
        with SandboxHarness(tmp_path) as harness:
            yield harness


# --- deliberately broken gateways: the suite must fail each -------------------------------------


class ForgetfulSandbox(SandboxGateway):
    """Ignores the idempotency key: every call is a new request."""

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        return super().refund(attrs.evolve(request, idempotency_key=secrets.token_hex(8)))


class GenerousSandbox(SandboxGateway):
    """Accepts refunds of more than the payment."""

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        if request.amount > self.fetch_payment(request.gateway_payment_id).amount:
            return GatewayRefundResult("succeeded", "sbx_re_generous", request.amount)
        return super().refund(request)


class RawErrorSandbox(SandboxGateway):
    """Lets an SDK/transport exception escape instead of translating it."""

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        raise ConnectionResetError("connection reset by peer")


class CardLeakingSandbox(SandboxGateway):
    """Puts the full card number into the card summary.

    ``Card`` itself refuses digits in a brand, so the leak bypasses its validation the way a
    careless plugin building objects by hand could."""

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        payment = super().fetch_payment(gateway_payment_id)
        assert payment.card is not None
        card = attrs.evolve(payment.card)
        object.__setattr__(card, "brand", "visa 4242 4242 4242 4242")
        return attrs.evolve(payment, card=card)


class RoundingSandbox(SandboxGateway):
    """Takes MGA without decimals, and rounds instead of refusing 10.50 MGA."""

    capabilities = attrs.evolve(SandboxGateway.capabilities, currency_exponents={"MGA": 0})

    def to_gateway_amount(self, money: Money) -> int:
        shift = self.exponent(money.currency) - money.exponent
        factor = int(10 ** abs(shift))
        return money.amount * factor if shift >= 0 else money.amount // factor


class TrustingSandbox(SandboxGateway):
    """Parses webhooks without checking their signature."""

    def _verify(self, headers: Any, body: bytes) -> None:
        return None


class AmnesicLookupSandbox(SandboxGateway):
    """Claims lookup, but never finds a refund."""

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        return None


class UnresolvableSandbox(SandboxGateway):
    """Neither lookup nor idempotency keys: an unknown refund could never be resolved."""

    capabilities = attrs.evolve(
        SandboxGateway.capabilities,
        lookup=False,
        idempotency_keys=False,
        idempotency_window_hours=None,
    )


class NoLookupSandbox(SandboxGateway):
    """A gateway without lookup (but with idempotency keys)."""

    capabilities = attrs.evolve(SandboxGateway.capabilities, lookup=False)


class ForgetfulNoLookupSandbox(NoLookupSandbox, ForgetfulSandbox):
    """Without lookup, and ignoring idempotency keys though it claims them."""


class NoWebhookSandbox(SandboxGateway):
    """A gateway that does not implement webhooks."""

    parse_webhook = Gateway.parse_webhook


class BodyFirstSandbox(SandboxGateway):
    """Reads the code in an error body before the HTTP status: a 5xx whose body names a
    refusal (``amount_too_large``) becomes a definite refusal, and the kit releases money the
    gateway may have refunded."""

    def http_error(self, status: int, body: bytes) -> GatewayError:
        exc = super().http_error(status, body)
        if exc.gateway_code in ERROR_CODES and exc.gateway_code != "timeout":
            return GatewayDeclined(f"sandbox: {exc.gateway_code}", gateway_code=exc.gateway_code)
        return exc


class UnavailableOn503Sandbox(SandboxGateway):
    """Takes a 503 for "not processed" (GatewayUnavailable): it releases the reservation."""

    def http_error(self, status: int, body: bytes) -> GatewayError:
        if status == 503:
            return GatewayUnavailable("sandbox: service unavailable", gateway_code="unavailable")
        return super().http_error(status, body)


class IncompleteTableSandbox(SandboxGateway):
    """Its status table forgot a status its books hold."""

    REFUND_STATUSES = MappingProxyType(
        {k: v for k, v in SandboxGateway.REFUND_STATUSES.items() if k != "reversed"}
    )


class MisnamedTableSandbox(SandboxGateway):
    """Its status table maps a status to something that is not a kit outcome."""

    REFUND_STATUSES = MappingProxyType(
        {**SandboxGateway.REFUND_STATUSES, "reversed": "refunded_back"}  # type: ignore[dict-item]
    )


def _event(body: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body)["data"]
    return data


class TransitionSandbox(SandboxGateway):
    """Reports the change instead of the state, as Stripe's plugin did: a refund that fails
    after it succeeded (``previous_status``) is reported ``reversed``. Delivered before its
    success, that failure looks like a reversal of a refund never paid out."""

    def parse_webhook(self, headers: Any, body: bytes) -> list[GatewayRefundUpdate]:
        updates = super().parse_webhook(headers, body)
        event = _event(body)
        if event["status"] == "failed" and event["previous_status"] == "succeeded":
            return [attrs.evolve(u, status="reversed") for u in updates]
        return updates


class EarlyFailureSandbox(SandboxGateway):
    """Thinks a failure that did not follow a success is not final yet: it reports it
    ``pending``, so the refund is never released, or a late success wins."""

    def parse_webhook(self, headers: Any, body: bytes) -> list[GatewayRefundUpdate]:
        updates = super().parse_webhook(headers, body)
        if _event(body)["previous_status"] == "pending":
            return [
                attrs.evolve(u, status="pending") if u.status == "failed" else u for u in updates
            ]
        return updates


class PartialHarness(SandboxHarness):
    """A sandbox harness that declares some scenarios unsupported."""

    def __init__(
        self,
        directory: Path,
        unsupported: Collection[str],
        gateway_class: type[SandboxGateway] = SandboxGateway,
    ) -> None:
        super().__init__(directory, gateway_class=gateway_class)
        self.unsupported = frozenset(unsupported)

    @contextlib.contextmanager
    def scenario(self, name: str) -> Iterator[Scenario]:
        if name in self.unsupported:
            raise ScenarioNotSupported(f"this harness does not arrange {name}")
        with super().scenario(name) as scenario:
            yield scenario


class LazyHarness(SandboxHarness):
    """Yields scenarios that break their contract (a full refund of half the payment)."""

    @contextlib.contextmanager
    def scenario(self, name: str) -> Iterator[Scenario]:
        with super().scenario(name) as scenario:
            half = Money(scenario.amount.amount // 2, scenario.amount.currency)
            yield attrs.evolve(scenario, refund_amount=half)


Check = Callable[[GatewayConformance, ConformanceHarness], None]
Suite = GatewayConformance

#: (broken gateway, the check that must catch it, test id)
BROKEN: list[tuple[type[SandboxGateway], Check, str]] = [
    (ForgetfulSandbox, Suite.test_idempotent_retry, "ignores-idempotency-key"),
    (GenerousSandbox, Suite.test_over_refund, "over-refund-succeeds"),
    (RawErrorSandbox, Suite.test_full_refund, "raw-sdk-exception"),
    (CardLeakingSandbox, Suite.test_card_masking, "card-number-leaks"),
    (RoundingSandbox, Suite.test_amount_round_trip, "rounds-amounts"),
    (TrustingSandbox, Suite.test_webhook_succeeded, "unverified-webhook"),
    (TrustingSandbox, Suite.test_webhook_failed, "unverified-webhook-failed"),
    (TrustingSandbox, Suite.test_errors_are_refundkit_errors, "unsigned-body"),
    (AmnesicLookupSandbox, Suite.test_unknown_then_lookup, "lookup-finds-nothing"),
    (UnresolvableSandbox, Suite.test_capabilities_are_consistent, "unresolvable"),
    (BodyFirstSandbox, Suite.test_server_error_never_releases_money, "5xx-body-read-first"),
    (UnavailableOn503Sandbox, Suite.test_server_error_never_releases_money, "503-released"),
    (IncompleteTableSandbox, Suite.test_status_table_is_complete, "status-table-incomplete"),
    (MisnamedTableSandbox, Suite.test_status_table_is_complete, "status-table-not-outcomes"),
    (TransitionSandbox, Suite.test_webhooks_converge_in_any_order, "reports-the-change"),
    (EarlyFailureSandbox, Suite.test_webhooks_converge_in_any_order, "early-failure-pending"),
]
CHECKS = {check.__name__: check for _, check, _ in BROKEN}


@pytest.mark.parametrize(
    ("gateway_class", "check"), [(g, c) for g, c, _ in BROKEN], ids=[i for _, _, i in BROKEN]
)
def test_the_suite_fails_a_broken_gateway(
    tmp_path: Path, gateway_class: type[SandboxGateway], check: Check
) -> None:
    with (
        SandboxHarness(tmp_path, gateway_class=gateway_class) as harness,
        pytest.raises(AssertionError),
    ):
        check(GatewayConformance(), harness)


@pytest.mark.parametrize("check", [CHECKS[name] for name in sorted(CHECKS)], ids=sorted(CHECKS))
def test_the_same_checks_pass_on_the_real_sandbox(tmp_path: Path, check: Check) -> None:
    # Control for the test above: called the same way, the genuine sandbox passes.
    with SandboxHarness(tmp_path) as harness:
        check(GatewayConformance(), harness)


def test_a_harness_may_not_skip_a_scenario_the_capabilities_claim(tmp_path: Path) -> None:
    with PartialHarness(tmp_path, {"unknown_then_lookup", "partial_refund"}) as harness:
        suite = GatewayConformance()
        with pytest.raises(AssertionError, match=r"capabilities\.lookup is True"):
            suite.test_unknown_then_lookup(harness)
        with pytest.raises(AssertionError, match=r"capabilities\.partial_refunds is True"):
            suite.test_partial_refund(harness)
        with pytest.raises(AssertionError) as info:
            suite.test_harness_supports_every_scenario_its_capabilities_claim(harness)
        assert "unknown_then_lookup" in str(info.value)
        assert "partial_refund" in str(info.value)


def test_without_lookup_the_suite_checks_resending_instead(tmp_path: Path) -> None:
    with PartialHarness(tmp_path, {"unknown_then_lookup"}, NoLookupSandbox) as harness:
        suite = GatewayConformance()
        suite.test_harness_supports_every_scenario_its_capabilities_claim(harness)
        suite.test_unknown_then_lookup(harness)  # passes through the idempotent resend check
    with (
        PartialHarness(
            tmp_path / "x", {"unknown_then_lookup"}, ForgetfulNoLookupSandbox
        ) as harness,
        pytest.raises(AssertionError, match="made two refunds"),
    ):
        GatewayConformance().test_unknown_then_lookup(harness)


def test_a_gateway_without_webhooks_may_skip_the_webhook_scenarios(tmp_path: Path) -> None:
    webhooks = {"webhook_succeeded", "webhook_failed"}
    with PartialHarness(tmp_path, webhooks, NoWebhookSandbox) as harness:
        suite = GatewayConformance()
        suite.test_harness_supports_every_scenario_its_capabilities_claim(harness)
        suite.test_errors_are_refundkit_errors(harness)
        with pytest.raises(pytest.skip.Exception, match="does not implement parse_webhook"):
            suite.test_webhook_succeeded(harness)
    with PartialHarness(tmp_path / "x", webhooks) as harness, pytest.raises(AssertionError):
        GatewayConformance().test_webhook_failed(harness)


class SilentHarness(SandboxHarness):
    """A harness written before the gateway-truth scenarios: it declares none of their hooks."""

    status_table = ConformanceHarness.status_table
    error_body = ConformanceHarness.error_body
    server_error = ConformanceHarness.server_error  # type: ignore[assignment]
    webhook_histories = ConformanceHarness.webhook_histories  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("check", "hook"),
    [
        (Suite.test_status_table_is_complete, "status_table()"),
        (Suite.test_server_error_never_releases_money, "error_body(code, message)"),
        (Suite.test_webhooks_converge_in_any_order, "status_table()"),
    ],
)
def test_a_harness_that_declares_nothing_fails_the_truth_scenarios(
    tmp_path: Path, check: Check, hook: str
) -> None:
    with SilentHarness(tmp_path) as harness, pytest.raises(AssertionError) as info:
        check(GatewayConformance(), harness)
    assert f"harness error: SilentHarness does not declare {hook}" in str(info.value)


def test_the_orders_scenario_fails_a_kit_that_lets_a_late_report_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenario runs the reports through a real kit: a kit that books each report as the
    move it describes, looking nothing up (refundkit before issue 15), fails it with the
    genuine sandbox, whose reports are right."""
    from refundkit._engine import inbound, outcomes, transitions

    def as_described(rt: Any, refund: Any, payment: Any, result: Any) -> Any:
        return transitions.apply(rt, refund, payment, outcomes.of_result(refund, result))

    monkeypatch.setattr(inbound, "contradicts", lambda held, reported: False)
    monkeypatch.setattr(outcomes, "apply_result", as_described)
    with (
        SandboxHarness(tmp_path) as harness,
        pytest.raises(AssertionError, match="refundkit holds the refund succeeded"),
    ):
        GatewayConformance().test_webhooks_converge_in_any_order(harness)


def test_a_harness_breaking_a_scenario_contract_fails(tmp_path: Path) -> None:
    with LazyHarness(tmp_path) as harness, pytest.raises(AssertionError, match="harness error"):
        GatewayConformance().test_full_refund(harness)


# --- pieces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424242",
        "card 4111 1111 1111 1111 expires",
        "4111-1111-1111-1111",
        "amex 378282246310005.",
        "diners 30569309025904",
        "order 7 4242 4242 4242 4242",  # a PAN after an unrelated number is still found
    ],
)
def test_find_pans_finds_card_numbers(text: str) -> None:
    found = find_pans(text)
    assert found
    assert all(13 <= len(pan) <= 19 and luhn_valid(pan) for pan in found)


def test_find_pans_keeps_out_what_is_not_a_card_number() -> None:
    assert find_pans("4242424242424241") == []  # fails Luhn
    assert find_pans("4242424242424241", luhn=False) == ["4242424242424241"]
    assert find_pans("424242424242") == []  # 12 digits
    assert find_pans("424242424242", luhn=False) == []
    assert find_pans("4242424242424242424242", luhn=False) == []  # one 22-digit run
    assert find_pans("Card(brand='visa', last4='4242', exp_month=12, exp_year=2030)") == []
    assert find_pans("visa •••• 4242 12/2030 first6 424242", luhn=False) == []
    assert find_pans("4242 4242 4242 4242", luhn=False) == ["4242424242424242"]


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_scenario_request_and_unsent_request() -> None:
    scenario = Scenario(
        gateway_payment_id="ch_1",
        amount=Money(5000, "USD"),
        refund_amount=Money(1500, "USD"),
        refund_id="rf_1",
        idempotency_key="key-1",
    )
    request = scenario.request()
    assert request == GatewayRefundRequest(
        refund_id="rf_1",
        payment_id="pay_ch_1",
        gateway_payment_id="ch_1",
        amount=Money(1500, "USD"),
        idempotency_key="key-1",
        reason="requested_by_customer",
    )
    assert scenario.request(Money(10, "USD"), void=True).amount == Money(10, "USD")
    assert scenario.request(void=True).void
    unsent = scenario.unsent_request()
    assert (unsent.refund_id, unsent.idempotency_key) == ("rf_1_unsent", "key-1-unsent")
    assert unsent.gateway_payment_id == "ch_1"
    with pytest.raises(ValueError, match="EUR"):
        attrs.evolve(scenario, refund_amount=Money(1500, "EUR"))


def test_tamper_webhook_changes_one_byte() -> None:
    headers = {"sig": "v1=abc"}
    body = b'{"id":"evt_1","status":"succeeded"}'
    tampered_headers, tampered = tamper_webhook((headers, body))
    assert tampered_headers == headers
    assert len(tampered) == len(body)
    assert sum(a != b for a, b in zip(body, tampered, strict=True)) == 1
    assert tamper_webhook((headers, b""))[1] != b""


def test_scenarios_are_the_documented_ones(tmp_path: Path) -> None:
    assert list(SCENARIOS) == [
        "full_refund",
        "partial_refund",
        "over_refund",
        "idempotent_retry",
        "unknown_then_lookup",
        "webhook_succeeded",
        "webhook_failed",
        "card_masking",
    ]
    with SandboxHarness(tmp_path) as harness:
        with pytest.raises(ValueError, match="unknown conformance scenario"):
            harness.scenario("no_such_scenario").__enter__()
        assert {"USD", "JPY", "KWD", "CLF", "ISK", "MGA"} <= set(harness.currencies)


def test_import_refundkit_does_not_import_the_testing_tools() -> None:
    code = (
        "import sys, refundkit, refundkit.gateways.sandbox\n"
        "loaded = {'pytest', 'hypothesis', 'refundkit.testing'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

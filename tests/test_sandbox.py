"""The built-in sandbox gateway: refunds, idempotency, faults, webhooks, many processes."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from refundkit._errors import (
    ConfigurationError,
    GatewayDeclined,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    InvalidInput,
    PaymentExists,
    WebhookUnprocessable,
    WebhookVerificationError,
)
from refundkit._gateway import GatewayRefundRequest, GatewayRefundResult
from refundkit._model import Card, Destination, Payment
from refundkit._money import Money
from refundkit._plugins import PluginManager
from refundkit.gateways.sandbox import OUTCOMES, SandboxGateway
from refundkit.gateways.sandbox import _books as sandbox_books

CHARGE = "sbx_ch_1"
START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(tmp_path: Path, clock: Clock) -> Iterator[SandboxGateway]:
    gateway = SandboxGateway({"path": str(tmp_path / "sandbox.db"), "clock": clock})
    yield gateway
    gateway.close()


def payment(
    amount: int = 5000,
    charge: str = CHARGE,
    *,
    currency: str = "USD",
    card: Card | None = None,
    disputed: bool = False,
    settled: bool = True,
) -> Payment:
    return Payment(
        id="pay_" + charge,
        customer_id="cus_1",
        amount=Money(amount, currency),
        gateway="sandbox",
        gateway_payment_id=charge,
        destination=Destination.INVOICE,
        captured_at=START,
        card=card,
        disputed=disputed,
        settled=settled,
    )


def request(
    amount: int,
    key: str,
    *,
    charge: str = CHARGE,
    refund_id: str | None = None,
    currency: str = "USD",
    void: bool = False,
) -> GatewayRefundRequest:
    return GatewayRefundRequest(
        refund_id=refund_id or "rf_" + key,
        payment_id="pay_" + charge,
        gateway_payment_id=charge,
        amount=Money(amount, currency),
        idempotency_key=key,
        void=void,
    )


def refunded(sandbox: SandboxGateway, charge: str = CHARGE) -> int:
    return sandbox.fetch_payment(charge).refunded.amount


# --- charges ---------------------------------------------------------------------------------


def test_register_and_fetch_uses_the_default_test_card(sandbox: SandboxGateway) -> None:
    registered = sandbox.register_payment(payment())
    fetched = sandbox.fetch_payment(CHARGE)
    assert registered == fetched
    assert fetched.amount == Money(5000, "USD")
    assert fetched.refunded == Money(0, "USD")
    assert fetched.card == Card(brand="visa", last4="4242", exp_month=12, exp_year=2030)
    assert (fetched.disputed, fetched.settled) == (False, True)
    assert fetched.captured_at == START


def test_register_keeps_the_given_card_and_flags(sandbox: SandboxGateway) -> None:
    card = Card(brand="mastercard", last4="4444", exp_month=3, exp_year=2031, first6="555555")
    fetched = sandbox.register_payment(payment(card=card, disputed=True, settled=False))
    assert fetched is not None
    assert fetched.card == card
    assert (fetched.disputed, fetched.settled) == (True, False)


def test_register_is_idempotent_but_refuses_a_different_amount(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    assert sandbox.register_payment(payment()) == sandbox.fetch_payment(CHARGE)
    with pytest.raises(PaymentExists):
        sandbox.register_payment(payment(amount=6000))
    with pytest.raises(PaymentExists):
        sandbox.register_payment(payment(currency="EUR"))


def test_unknown_charge(sandbox: SandboxGateway) -> None:
    with pytest.raises(GatewayPaymentNotFound):
        sandbox.fetch_payment("sbx_ch_missing")
    with pytest.raises(GatewayPaymentNotFound):
        sandbox.refund(request(100, "k1", charge="sbx_ch_missing"))
    with pytest.raises(GatewayPaymentNotFound):
        sandbox.set_disputed("sbx_ch_missing", True)
    assert sandbox.refund_count() == 0


def test_state_survives_close_and_is_shared_by_instances(tmp_path: Path) -> None:
    path = str(tmp_path / "sb.db")
    first = SandboxGateway({"path": path})
    first.register_payment(payment())
    first.refund(request(1000, "k1"))
    first.close()
    second = SandboxGateway({"path": path})
    try:
        assert second.fetch_payment(CHARGE).refunded == Money(1000, "USD")
        assert second.refund_count(CHARGE) == 1
    finally:
        second.close()


def test_memory_database_works(clock: Clock) -> None:
    sandbox = SandboxGateway({"path": ":memory:", "clock": clock})
    try:
        sandbox.register_payment(payment())
        assert sandbox.refund(request(500, "k1")).status == "succeeded"
        assert refunded(sandbox) == 500
    finally:
        sandbox.close()


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"path": ""},
        {"path": 3},
        {"path": "x.db", "webhook_secret": ""},
        {"path": "x", "clock": 1},
    ],
)
def test_bad_config_is_refused(config: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SandboxGateway(config)


def test_registered_as_builtin_plugin() -> None:
    manager = PluginManager(autoload=False)
    assert manager.gateways.get("sandbox") is SandboxGateway
    caps = SandboxGateway.capabilities
    assert (caps.idempotency_keys, caps.idempotency_window_hours, caps.lookup) == (True, 24, True)


def test_repr_hides_configuration(tmp_path: Path) -> None:
    gateway = SandboxGateway({"path": str(tmp_path / "x.db"), "webhook_secret": "s3cret"})
    assert "s3cret" not in repr(gateway)


# --- refunds ---------------------------------------------------------------------------------


def test_full_refund(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    result = sandbox.refund(request(5000, "k1"))
    assert result.status == "succeeded"
    assert result.amount == Money(5000, "USD")
    assert result.gateway_refund_id is not None
    assert result.gateway_refund_id.startswith("sbx_re_")
    assert len(result.gateway_refund_id) == len("sbx_re_") + 24
    assert refunded(sandbox) == 5000
    [row] = sandbox.refunds(CHARGE)
    assert (row["refund_id"], row["idempotency_key"], row["status"]) == ("rf_k1", "k1", "succeeded")


def test_partial_refunds_add_up_and_over_refund_is_declined(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    first = sandbox.refund(request(2000, "k1"))
    second = sandbox.refund(request(2500, "k2"))
    assert first.gateway_refund_id != second.gateway_refund_id
    assert refunded(sandbox) == 4500
    with pytest.raises(GatewayDeclined) as declined:
        sandbox.refund(request(501, "k3"))
    assert declined.value.gateway_code == "amount_too_large"
    assert sandbox.refund(request(500, "k4")).status == "succeeded"
    assert refunded(sandbox) == 5000
    assert sandbox.refund_count(CHARGE) == 3


def test_non_positive_amount_is_declined(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    with pytest.raises(GatewayDeclined) as declined:
        sandbox.refund(request(0, "k1"))
    assert declined.value.gateway_code == "amount_invalid"


def test_currency_mismatch_is_declined(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    with pytest.raises(GatewayDeclined) as declined:
        sandbox.refund(request(100, "k1", currency="EUR"))
    assert declined.value.gateway_code == "currency_mismatch"
    assert refunded(sandbox) == 0


def test_disputed_charge_is_declined(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.set_disputed(CHARGE, True)
    with pytest.raises(GatewayDeclined) as declined:
        sandbox.refund(request(100, "k1"))
    assert declined.value.gateway_code == "charge_disputed"
    sandbox.set_disputed(CHARGE, False)
    assert sandbox.refund(request(100, "k2")).status == "succeeded"


def test_unsettled_charge_can_only_be_voided_in_full(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment(settled=False))
    for bad in (request(1000, "k1"), request(1000, "k2", void=True), request(5000, "k3")):
        with pytest.raises(GatewayDeclined) as declined:
            sandbox.refund(bad)
        assert declined.value.gateway_code == "charge_unsettled"
    voided = sandbox.refund(request(5000, "k4", void=True))
    assert voided.status == "succeeded"
    assert refunded(sandbox) == 5000
    assert sandbox.refunds(CHARGE)[-1]["void"] == 1


# --- idempotency -----------------------------------------------------------------------------


def test_same_key_replays_the_stored_result(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    first = sandbox.refund(request(1000, "k1"))
    sandbox.script("decline")
    again = sandbox.refund(request(1000, "k1", refund_id="rf_other"))
    assert again == first
    assert sandbox.refund_count() == 1
    assert refunded(sandbox) == 1000
    # The replay consumed no scripted outcome: the decline is still queued.
    with pytest.raises(GatewayDeclined):
        sandbox.refund(request(1000, "k2"))


def test_same_key_different_parameters_is_declined(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.register_payment(payment(charge="sbx_ch_2"))
    sandbox.refund(request(1000, "k1"))
    for other in (
        request(1001, "k1"),
        request(1000, "k1", charge="sbx_ch_2"),
        request(1000, "k1", currency="EUR"),
    ):
        with pytest.raises(GatewayDeclined) as declined:
            sandbox.refund(other)
        assert declined.value.gateway_code == "idempotency_key_reused"
    assert sandbox.refund_count() == 1


def test_stored_decline_is_replayed(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.script("decline")
    with pytest.raises(GatewayDeclined) as first:
        sandbox.refund(request(1000, "k1"))
    with pytest.raises(GatewayDeclined) as again:
        sandbox.refund(request(1000, "k1"))
    assert first.value.gateway_code == again.value.gateway_code == "refund_declined"
    assert again.value.message == first.value.message
    assert sandbox.refund_count() == 0
    assert len(sandbox.refunds()) == 1


def test_replay_returns_the_current_status(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.script("pending_succeed")
    assert sandbox.refund(request(1000, "k1")).status == "pending"
    sandbox.settle_pending()
    assert sandbox.refund(request(1000, "k1")).status == "succeeded"


def test_key_is_forgotten_after_24_hours(sandbox: SandboxGateway, clock: Clock) -> None:
    sandbox.register_payment(payment())
    first = sandbox.refund(request(1000, "k1"))
    clock.advance(hours=24)
    assert sandbox.refund(request(1000, "k1")) == first  # still inside the window
    clock.advance(seconds=1)
    second = sandbox.refund(request(1000, "k1"))
    assert second.status == "succeeded"
    assert second.gateway_refund_id != first.gateway_refund_id
    assert refunded(sandbox) == 2000
    assert sandbox.refund_count() == 2


def test_expired_key_still_meets_the_cap(sandbox: SandboxGateway, clock: Clock) -> None:
    sandbox.register_payment(payment())
    sandbox.refund(request(5000, "k1"))
    clock.advance(hours=25)
    with pytest.raises(GatewayDeclined) as declined:
        sandbox.refund(request(5000, "k1"))
    assert declined.value.gateway_code == "amount_too_large"
    assert refunded(sandbox) == 5000
    assert sandbox.refund_count() == 1


# --- outcomes --------------------------------------------------------------------------------

OUTCOME_AND_MAGIC = [
    ("decline", 1091),
    ("pending_succeed", 1092),
    ("pending_fail", 1093),
    ("timeout_after", 1094),
    ("timeout_before", 1095),
    ("rate_limit", 1096),
    ("unavailable", 1097),
]


def _expect(
    sandbox: SandboxGateway, outcome: str, req: GatewayRefundRequest
) -> GatewayRefundResult | None:
    """Send ``req`` and check the immediate effect of ``outcome``; returns the result if any."""
    errors: dict[str, type[Exception]] = {
        "decline": GatewayDeclined,
        "timeout_after": GatewayTimeout,
        "timeout_before": GatewayTimeout,
        "rate_limit": GatewayRateLimited,
        "unavailable": GatewayUnavailable,
    }
    if outcome in errors:
        with pytest.raises(errors[outcome]):
            sandbox.refund(req)
        return None
    return sandbox.refund(req)


def _check_effect(sandbox: SandboxGateway, outcome: str, amount: int) -> None:
    created = {"timeout_after": 1, "pending_succeed": 1, "pending_fail": 1, "succeed": 1}
    assert sandbox.refund_count(CHARGE) == created.get(outcome, 0)
    assert refunded(sandbox) == (amount if outcome in ("timeout_after", "succeed") else 0)
    rows = sandbox.refunds(CHARGE)
    if outcome in ("rate_limit", "unavailable", "timeout_before"):
        assert rows == []  # nothing applied, key not stored
    elif outcome == "decline":
        assert [(r["status"], r["failure_code"]) for r in rows] == [("failed", "refund_declined")]
    elif outcome.startswith("pending_"):
        final = "succeeded" if outcome == "pending_succeed" else "failed"
        assert [(r["status"], r["scheduled_status"]) for r in rows] == [("pending", final)]


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_scripted_outcome(sandbox: SandboxGateway, outcome: str) -> None:
    sandbox.register_payment(payment())
    sandbox.script(outcome)
    # A plain amount: only the script decides.
    result = _expect(sandbox, outcome, request(1000, "k1"))
    _check_effect(sandbox, outcome, 1000)
    if result is not None:
        assert result.status == ("pending" if outcome.startswith("pending_") else "succeeded")


@pytest.mark.parametrize(("outcome", "amount"), OUTCOME_AND_MAGIC)
def test_magic_amount(sandbox: SandboxGateway, outcome: str, amount: int) -> None:
    sandbox.register_payment(payment())
    result = _expect(sandbox, outcome, request(amount, "k1"))
    _check_effect(sandbox, outcome, amount)
    if result is not None:
        assert result.status == "pending"


@pytest.mark.parametrize("amount", [1000, 1090, 1098, 1099, 1001])
def test_other_amounts_succeed(sandbox: SandboxGateway, amount: int) -> None:
    sandbox.register_payment(payment())
    assert sandbox.refund(request(amount, "k1")).status == "succeeded"
    assert refunded(sandbox) == amount


def test_script_beats_magic_amount(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.script("succeed")
    assert sandbox.refund(request(1091, "k1")).status == "succeeded"
    with pytest.raises(GatewayDeclined):
        sandbox.refund(request(1091, "k2"))  # script used up: the magic amount again


def test_scripts_are_fifo_and_charge_scripts_come_first(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.register_payment(payment(charge="sbx_ch_2"))
    sandbox.script("rate_limit", "unavailable")
    sandbox.script("decline", charge="sbx_ch_2")
    with pytest.raises(GatewayDeclined):
        sandbox.refund(request(100, "k1", charge="sbx_ch_2"))
    with pytest.raises(GatewayRateLimited):
        sandbox.refund(request(100, "k2", charge="sbx_ch_2"))
    with pytest.raises(GatewayUnavailable):
        sandbox.refund(request(100, "k3"))
    assert sandbox.refund(request(100, "k4")).status == "succeeded"


def test_script_refuses_unknown_outcomes(sandbox: SandboxGateway) -> None:
    with pytest.raises(InvalidInput, match="explode"):
        sandbox.script("decline", "explode")
    sandbox.register_payment(payment())
    # Nothing was queued, not even the valid name before the bad one.
    assert sandbox.refund(request(1000, "k1")).status == "succeeded"


def test_not_applied_outcomes_do_not_store_the_key(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.script("rate_limit", "unavailable", "timeout_before")
    for error in (GatewayRateLimited, GatewayUnavailable, GatewayTimeout):
        with pytest.raises(error):
            sandbox.refund(request(1000, "k1"))
    result = sandbox.refund(request(1000, "k1"))
    assert result.status == "succeeded"
    assert sandbox.refund_count() == 1


def test_timeout_after_was_applied_and_replays(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.script("timeout_after")
    with pytest.raises(GatewayTimeout):
        sandbox.refund(request(1000, "k1"))
    replay = sandbox.refund(request(1000, "k1"))
    assert replay.status == "succeeded"
    assert sandbox.refund_count() == 1


def test_checks_apply_to_scripted_outcomes(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment(amount=1000))
    sandbox.script("timeout_after", "pending_succeed")
    with pytest.raises(GatewayDeclined) as declined:
        sandbox.refund(request(2000, "k1"))
    assert declined.value.gateway_code == "amount_too_large"
    with pytest.raises(GatewayDeclined):
        sandbox.refund(request(2000, "k2"))
    assert sandbox.refund_count() == 0


def test_pending_refunds_hold_the_balance(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.script("pending_fail")
    assert sandbox.refund(request(4000, "k1")).status == "pending"
    assert refunded(sandbox) == 0
    with pytest.raises(GatewayDeclined) as declined:
        sandbox.refund(request(1001, "k2"))
    assert declined.value.gateway_code == "amount_too_large"
    sandbox.settle_pending()
    # The failed refund released its hold.
    assert sandbox.refund(request(5000, "k3")).status == "succeeded"


# --- lookup ----------------------------------------------------------------------------------


def test_lookup_after_timeout_after_finds_the_refund(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.script("timeout_after")
    with pytest.raises(GatewayTimeout):
        sandbox.refund(request(1000, "k1"))
    found = sandbox.lookup_refund(request(1000, "k1"))
    assert found is not None
    assert (found.status, found.amount) == ("succeeded", Money(1000, "USD"))
    assert found.gateway_refund_id == sandbox.refunds()[0]["gateway_refund_id"]


def test_lookup_after_timeout_before_finds_nothing(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    sandbox.script("timeout_before", "decline")
    with pytest.raises(GatewayTimeout):
        sandbox.refund(request(1000, "k1"))
    assert sandbox.lookup_refund(request(1000, "k1")) is None
    # Lookup neither creates a refund nor consumes the queued decline.
    assert sandbox.refund_count() == 0
    with pytest.raises(GatewayDeclined):
        sandbox.refund(request(1000, "k2"))


def test_lookup_by_refund_id_ignores_the_window(sandbox: SandboxGateway, clock: Clock) -> None:
    sandbox.register_payment(payment())
    made = sandbox.refund(request(1000, "k1", refund_id="rf_1"))
    clock.advance(days=30)
    found = sandbox.lookup_refund(request(1000, "other-key", refund_id="rf_1"))
    assert found == made
    assert sandbox.lookup_refund(request(1000, "k9", refund_id="rf_9")) is None


def test_lookup_of_a_decline_is_failed(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    with pytest.raises(GatewayDeclined):
        sandbox.refund(request(1091, "k1"))
    found = sandbox.lookup_refund(request(1091, "k1"))
    assert found is not None
    assert (found.status, found.failure_code) == ("failed", "refund_declined")


# --- settlement, reversal, webhooks -----------------------------------------------------------


@pytest.mark.parametrize(("amount", "final"), [(1092, "succeeded"), (1093, "failed")])
def test_settle_pending_sends_a_webhook_with_the_final_status(
    sandbox: SandboxGateway, amount: int, final: str
) -> None:
    sandbox.register_payment(payment())
    pending = sandbox.refund(request(amount, "k1"))
    assert pending.status == "pending"
    [(headers, body)] = sandbox.settle_pending()
    [update] = sandbox.parse_webhook(headers, body)
    assert update.status == final
    assert update.refund_id == "rf_k1"
    assert update.gateway_refund_id == pending.gateway_refund_id
    assert update.amount == Money(amount, "USD")
    assert update.event_id == json.loads(body)["id"]
    assert update.event_id is not None
    assert update.event_id.startswith("sbx_evt_")
    assert (update.failure_code is None) == (final == "succeeded")
    assert refunded(sandbox) == (amount if final == "succeeded" else 0)
    assert sandbox.settle_pending() == []  # nothing left pending


def test_settle_one_pending_refund(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    first = sandbox.refund(request(1092, "k1"))
    sandbox.refund(request(1092, "k2"))
    assert first.gateway_refund_id is not None
    deliveries = sandbox.settle_pending(first.gateway_refund_id)
    assert len(deliveries) == 1
    assert [r["status"] for r in sandbox.refunds()] == ["succeeded", "pending"]
    with pytest.raises(InvalidInput):
        sandbox.settle_pending("sbx_re_missing")


def test_reverse_a_succeeded_refund(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment())
    made = sandbox.refund(request(1000, "k1"))
    assert made.gateway_refund_id is not None
    headers, body = sandbox.reverse(made.gateway_refund_id)
    [update] = sandbox.parse_webhook(headers, body)
    assert (update.status, update.gateway_refund_id) == ("reversed", made.gateway_refund_id)
    assert update.failure_code == "refund_reversed"
    assert refunded(sandbox) == 0
    assert sandbox.refund(request(1000, "k1")).status == "reversed"  # replay: current status
    assert sandbox.refund_count() == 1
    with pytest.raises(InvalidInput):
        sandbox.reverse(made.gateway_refund_id)  # already reversed


def _delivery(sandbox: SandboxGateway) -> tuple[dict[str, str], bytes]:
    sandbox.register_payment(payment())
    made = sandbox.refund(request(1000, "k1"))
    assert made.gateway_refund_id is not None
    return sandbox.reverse(made.gateway_refund_id)


def test_webhook_header_name_is_case_insensitive(sandbox: SandboxGateway) -> None:
    headers, body = _delivery(sandbox)
    assert (
        len(sandbox.parse_webhook({"Sandbox-Signature": headers["sandbox-signature"]}, body)) == 1
    )


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=abc,v1=00",
        "v1=00",
        "t=1795341600",
        "t=1795341600,v1=" + "0" * 64,
    ],
)
def test_webhook_bad_headers_are_refused(sandbox: SandboxGateway, header: str | None) -> None:
    _, body = _delivery(sandbox)
    headers = {} if header is None else {"sandbox-signature": header}
    with pytest.raises(WebhookVerificationError):
        sandbox.parse_webhook(headers, body)


def test_webhook_with_a_tampered_body_is_refused(sandbox: SandboxGateway) -> None:
    headers, body = _delivery(sandbox)
    with pytest.raises(WebhookVerificationError, match="signature"):
        sandbox.parse_webhook(headers, body.replace(b"reversed", b"succeeded"))


def test_webhook_signed_with_another_secret_is_refused(
    sandbox: SandboxGateway, tmp_path: Path, clock: Clock
) -> None:
    other = SandboxGateway({"path": str(tmp_path / "o.db"), "webhook_secret": "x", "clock": clock})
    headers, body = _delivery(sandbox)
    with pytest.raises(WebhookVerificationError):
        other.parse_webhook(headers, body)


def test_webhook_timestamp_tolerance_is_300_seconds(sandbox: SandboxGateway, clock: Clock) -> None:
    headers, body = _delivery(sandbox)
    clock.advance(seconds=300)
    assert len(sandbox.parse_webhook(headers, body)) == 1
    clock.advance(seconds=1)
    with pytest.raises(WebhookVerificationError, match="300"):
        sandbox.parse_webhook(headers, body)


def test_webhook_from_the_future_is_refused(sandbox: SandboxGateway, clock: Clock) -> None:
    headers, body = _delivery(sandbox)
    clock.advance(seconds=-301)
    with pytest.raises(WebhookVerificationError):
        sandbox.parse_webhook(headers, body)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"type": "refund.updated"}',
        b'{"id": "e", "data": 1, "type": "refund.updated"}',
    ],
)
def test_webhook_garbage_body_is_refused(
    sandbox: SandboxGateway, clock: Clock, body: bytes
) -> None:
    """Correctly signed, so authentic, but not an event: unprocessable (no retry cures it),
    not a verification failure."""
    timestamp = int(clock.now.timestamp())
    headers = {"sandbox-signature": sandbox.sign(body, timestamp)}
    with pytest.raises(WebhookUnprocessable):
        sandbox.parse_webhook(headers, body)


def test_webhook_of_another_type_gives_no_update(sandbox: SandboxGateway, clock: Clock) -> None:
    body = b'{"id": "sbx_evt_1", "type": "charge.updated", "data": {}}'
    headers = {"sandbox-signature": sandbox.sign(body, int(clock.now.timestamp()))}
    assert sandbox.parse_webhook(headers, body) == []


# --- concurrency -----------------------------------------------------------------------------


def test_threads_sharing_one_instance_never_over_refund(sandbox: SandboxGateway) -> None:
    sandbox.register_payment(payment(amount=5000))

    def worker(n: int) -> list[str]:
        statuses = []
        for i in range(20):
            try:
                statuses.append(str(sandbox.refund(request(100, f"t{n}-{i}")).status))
            except GatewayDeclined as exc:
                statuses.append(str(exc.gateway_code))
        return statuses

    with ThreadPoolExecutor(4) as pool:
        outcomes = [s for batch in pool.map(worker, range(4)) for s in batch]
    assert outcomes.count("succeeded") == 50
    assert outcomes.count("amount_too_large") == 30
    assert refunded(sandbox) == 5000


class _LockedTwice:
    """A connection whose WAL switch reports "database is locked" twice, then works."""

    def __init__(self, message: str = "database is locked") -> None:
        self.message = message
        self.calls = 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= 2:
            raise sqlite3.OperationalError(self.message)


def test_wal_switch_is_retried_when_another_process_holds_the_lock() -> None:
    # SQLite can refuse the switch at once, without its busy wait, when processes open together.
    connection = _LockedTwice()
    sandbox_books.enable_wal(cast(sqlite3.Connection, connection))
    assert connection.calls == 3
    other = _LockedTwice("disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk"):
        sandbox_books.enable_wal(cast(sqlite3.Connection, other))
    assert other.calls == 1


# --- many processes --------------------------------------------------------------------------


def _hammer(path: str, worker: int) -> list[str]:
    """Ten refunds of 1.00 with distinct keys; returns each outcome."""
    sandbox = SandboxGateway({"path": path})
    outcomes: list[str] = []
    try:
        sandbox.register_payment(payment(amount=5000))
        for i in range(10):
            key = f"w{worker}-{i}"
            try:
                outcomes.append(sandbox.refund(request(100, key)).status)
            except GatewayDeclined as exc:
                outcomes.append(str(exc.gateway_code))
    finally:
        sandbox.close()
    return outcomes


@pytest.mark.slow
def test_many_processes_never_over_refund(tmp_path: Path) -> None:
    # The children create the file and the charge themselves: first opens race too.
    path = str(tmp_path / "shared.db")
    context = multiprocessing.get_context("spawn")
    with context.Pool(8) as pool:
        results = pool.starmap(_hammer, [(path, w) for w in range(8)])
    outcomes = [o for worker in results for o in worker]
    setup = SandboxGateway({"path": path})
    try:
        assert outcomes.count("succeeded") == 50
        assert outcomes.count("amount_too_large") == 30
        assert setup.refund_count(CHARGE) == 50
        assert setup.fetch_payment(CHARGE).refunded == Money(5000, "USD")
    finally:
        setup.close()

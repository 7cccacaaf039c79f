"""The kit with Adyen end to end: received → pending (held) → webhook → succeeded / failed /
reversed; recovery re-sends an unknown refund with its key inside Adyen's idempotency window."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import refundkit_adyen
from _adyen_cassettes import CASES, SOURCES, adyen_value, gateway_config, use
from _adyen_webhooks import signed_refund_delivery
from refundkit_adyen import AdyenGateway, card_from_payment_response

from refundkit import (
    GatewayError,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayTimeout,
    Money,
    Refund,
    RefundKit,
    RefundStatus,
    WebhookVerificationError,
    hookimpl,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class LostAnswerAdyen(AdyenGateway):
    """Adyen applies the first refund call, but its answer is lost (a read timeout)."""

    keys_sent: ClassVar[list[str]] = []

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        type(self).keys_sent.append(self.adyen_key(request))
        result = super().refund(request)
        if len(type(self).keys_sent) == 1:
            raise GatewayTimeout("read timed out after sending (simulated)")
        return result


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _open(tmp_path: Path, clock: Clock, gateway: type[AdyenGateway] = AdyenGateway) -> RefundKit:
    plugin = refundkit_adyen if gateway is AdyenGateway else _Plugin(gateway)
    return RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}",
        autoload=False,
        plugins=[plugin],
        gateways={"adyen": gateway_config()},
        clock=clock,
        retry_backoff=0,
    )


class _Plugin:
    def __init__(self, gateway: type[AdyenGateway]) -> None:
        self.gateway = gateway

    @hookimpl
    def refundkit_register_gateways(self, register: Any) -> None:
        register(self.gateway)


@pytest.fixture
def kit(tmp_path: Path, clock: Clock) -> Iterator[RefundKit]:
    k = _open(tmp_path, clock)
    yield k
    k.close()


def _record(kit: RefundKit, name: str) -> str:
    case = CASES[name]
    payment = json.loads(
        (SOURCES / "adyenpy__checkout_payments_200_with_card_details.json").read_text()
    )
    kit.record_payment(
        id="pay_1",
        customer_id="cus_1",
        amount=Money(case.payment_amount, case.currency),
        gateway="adyen",
        gateway_payment_id=case.payment_psp,
        card=card_from_payment_response(payment),
    )
    return "pay_1"


def _refund(kit: RefundKit, name: str, **kw: Any) -> Refund:
    case = CASES[name]
    with use(case, kit=True) as cassette:
        refund = kit.refund("pay_1", Money(case.refund_amount, case.currency), **kw)
        assert cassette.all_played
    return refund


def _deliver(kit: RefundKit, refund: Refund, kind: str) -> list[Refund]:
    case = CASES["kit_refund_received"]
    assert refund.gateway_refund_id is not None  # Adyen's webhook names the refund's pspReference
    headers, body = signed_refund_delivery(
        kind,
        refund_id=refund.id,
        gateway_refund_id=refund.gateway_refund_id,
        gateway_payment_id=case.payment_psp,
        value=adyen_value(case, refund.amount.amount),
        currency=refund.amount.currency,
    )
    return kit.handle_gateway_webhook("adyen", headers, body)


def _types(kit: RefundKit) -> list[str]:
    return [e.type for e in kit.events()]


def test_received_refund_is_pending_and_holds_its_amount(kit: RefundKit) -> None:
    """R-1.8: Adyen answers 'received'; the refund stays pending and its amount is held."""
    _record(kit, "kit_refund_received")
    refund = _refund(kit, "kit_refund_received")
    assert refund.status is RefundStatus.PENDING
    assert refund.gateway_refund_id == CASES["kit_refund_received"].refund_psp
    assert kit.quote("pay_1").max_amount == Money(3000, "EUR")
    assert kit.journal(refund.id) == []
    assert _types(kit) == ["refund.pending"]


def test_a_429_is_retried_with_the_same_key(kit: RefundKit) -> None:
    """Rate limited (certainly not applied): the kit retries at once with the same key."""
    _record(kit, "refund_429_then_received")
    refund = _refund(kit, "refund_429_then_received", reason="requested_by_customer")
    assert refund.status is RefundStatus.PENDING
    assert refund.gateway_refund_id == CASES["refund_429_then_received"].refund_psp


def test_webhook_success_settles_once(kit: RefundKit) -> None:
    """R-1.8: a REFUND success webhook posts the journal and charge.refunded once, however
    often it is delivered (Adyen delivers at least once)."""
    _record(kit, "kit_refund_received")
    refund = _refund(kit, "kit_refund_received")
    for _ in range(3):
        (settled,) = _deliver(kit, refund, "success")
        assert settled.status is RefundStatus.SUCCEEDED
    assert len(kit.journal(refund.id)) == 2
    assert _types(kit) == ["refund.pending", "charge.refunded"]
    event = kit.events()[-1].data
    assert event["card"] == {"brand": "visa", "last4": "1111", "exp_month": 8, "exp_year": 2018}
    assert kit.quote("pay_1").max_amount == Money(3000, "EUR")


def test_webhook_failure_releases_the_amount(kit: RefundKit) -> None:
    """R-1.8: REFUND success=false fails the refund and releases the balance."""
    _record(kit, "kit_refund_received")
    refund = _refund(kit, "kit_refund_received")
    (failed,) = _deliver(kit, refund, "failure")
    assert failed.status is RefundStatus.FAILED
    assert failed.failure_code is not None
    assert "Insufficient" in failed.failure_code
    assert kit.quote("pay_1").max_amount == Money(5000, "EUR")
    assert kit.journal(refund.id) == []
    # A late success for a failed refund moves nothing (never backwards).
    (late,) = _deliver(kit, refund, "success")
    assert late.status is RefundStatus.FAILED
    assert kit.journal(refund.id) == []


@pytest.mark.parametrize("kind", ["reversed", "refund_failed"])
def test_failure_after_success_reverses_and_reopens(kit: RefundKit, kind: str) -> None:
    """R-1.8: REFUNDED_REVERSED (or REFUND_FAILED after a success) reopens the refundable balance,
    posts the reversing journal and emits refund.reversed, once."""
    _record(kit, "kit_refund_received")
    refund = _refund(kit, "kit_refund_received")
    _deliver(kit, refund, "success")
    for _ in range(2):
        updates = _deliver(kit, refund, kind)
        assert updates[-1].status is RefundStatus.REVERSED
    assert kit.quote("pay_1").max_amount == Money(5000, "EUR")
    kinds = [line.kind for line in kit.journal(refund.id)]
    assert kinds.count("refund") == 2
    assert kinds.count("reversal") == 2
    assert _types(kit) == ["refund.pending", "charge.refunded", "refund.reversed"]


def test_reversal_before_its_success_is_not_lost(kit: RefundKit) -> None:
    """Out of order: REFUNDED_REVERSED arrives before REFUND success; the refund ends
    reversed, and the late success changes nothing."""
    _record(kit, "kit_refund_received")
    refund = _refund(kit, "kit_refund_received")
    assert _deliver(kit, refund, "reversed")[-1].status is RefundStatus.REVERSED
    assert _deliver(kit, refund, "success")[-1].status is RefundStatus.REVERSED
    assert kit.quote("pay_1").max_amount == Money(5000, "EUR")
    assert _types(kit) == ["refund.pending", "charge.refunded", "refund.reversed"]


def test_wrongly_signed_webhook_changes_nothing(kit: RefundKit) -> None:
    _record(kit, "kit_refund_received")
    refund = _refund(kit, "kit_refund_received")
    case = CASES["kit_refund_received"]
    headers, body = signed_refund_delivery(
        "success",
        refund_id=refund.id,
        gateway_refund_id=case.refund_psp,
        gateway_payment_id=case.payment_psp,
        value=2000,
        currency="EUR",
        key_hex="00" * 32,
    )
    with pytest.raises(WebhookVerificationError, match="wrong HMAC"):
        kit.handle_gateway_webhook("adyen", headers, body)
    assert kit.refunds("pay_1")[0].status is RefundStatus.PENDING


def _unknown(tmp_path: Path, clock: Clock) -> tuple[RefundKit, Refund]:
    LostAnswerAdyen.keys_sent = []
    kit = _open(tmp_path, clock, LostAnswerAdyen)
    _record(kit, "kit_recover_resend")
    case = CASES["kit_recover_resend"]
    refund = kit.refund("pay_1", Money(case.refund_amount, case.currency))
    assert refund.status is RefundStatus.UNKNOWN
    return kit, refund


def test_recover_resends_with_the_same_key_inside_the_window(tmp_path: Path, clock: Clock) -> None:
    """R-1.4: Adyen has no lookup; inside its 7-day key window recovery re-sends the unknown
    refund with its original key, Adyen deduplicates it, and the webhook settles it."""
    case = CASES["kit_recover_resend"]
    with use(case, kit=True) as cassette:
        kit, refund = _unknown(tmp_path, clock)
        clock.now += timedelta(days=6)
        report = kit.recover()
        assert cassette.all_played
    assert LostAnswerAdyen.keys_sent == [refund.gateway_idempotency_key] * 2
    (pending,) = report.resolved
    assert pending.status is RefundStatus.PENDING
    assert pending.gateway_refund_id == case.refund_psp
    (settled,) = _deliver(kit, pending, "success")
    assert settled.status is RefundStatus.SUCCEEDED
    assert kit.quote("pay_1").max_amount == Money(3000, "EUR")
    kit.close()


def test_recover_never_resends_after_the_window(tmp_path: Path, clock: Clock) -> None:
    """R-1.6: past the idempotency window a resend could refund twice; recovery sends nothing
    and the refund goes to manual_review after its retry schedule, still held."""
    case = CASES["kit_recover_resend"]
    with use(case, kit=True) as cassette:
        kit, refund = _unknown(tmp_path, clock)
        clock.now += timedelta(hours=AdyenGateway.capabilities.idempotency_window_hours or 0)
        for _ in range(len(kit.retry_schedule)):
            kit.recover(force=True)
        assert cassette.play_count == 1
    assert LostAnswerAdyen.keys_sent == [refund.gateway_idempotency_key]
    (stuck,) = kit.refunds("pay_1")
    assert stuck.status is RefundStatus.MANUAL_REVIEW
    assert kit.quote("pay_1").max_amount == Money(3000, "EUR")
    kit.close()


def test_card_is_stored_masked_from_the_payment_response(kit: RefundKit) -> None:
    _record(kit, "kit_refund_received")
    card = kit.payment("pay_1").card
    assert card is not None
    assert attrs.asdict(card) == {
        "brand": "visa",
        "last4": "1111",
        "exp_month": 8,
        "exp_year": 2018,
        "first6": "411111",
    }


def _refund_or_refusal(kit: RefundKit, amount: Money) -> Refund | None:
    """The refund a kit made, also when a refusal was raised with it."""
    try:
        return kit.refund("pay_1", amount)
    except GatewayError as exc:
        return exc.refund


@pytest.mark.parametrize(
    "name",
    [
        "kit_500_errorcode_000",
        "kit_502_errorcode_010",
        "kit_503_errorcode_901",
        "kit_500_errorcode_137",
        "kit_500_errorcode_167",
    ],
)
def test_a_5xx_leaves_the_refund_unknown_and_held_whatever_its_code(
    kit: RefundKit, name: str
) -> None:
    """R-2.4 (issue 15): a 5xx answer may hide an applied refund, whatever errorCode its body
    carries (000 is Adyen's code for any HTTP-layer error; 010 and 901 are security codes;
    137 and 167 validation codes). The refund stays unknown, its amount held, nothing is
    booked; the REFUND success that follows books it once, and no second refund fits."""
    _record(kit, name)
    case = CASES[name]
    with use(case, kit=True) as cassette:
        refund = _refund_or_refusal(kit, Money(case.refund_amount, case.currency))
        assert cassette.all_played
    assert refund is not None
    assert refund.status is RefundStatus.UNKNOWN
    assert kit.quote("pay_1").max_amount == Money(3000, "EUR")  # 2000 of 5000 held
    assert kit.journal(refund.id) == []
    assert "charge.refunded" not in _types(kit)
    assert "refund.failed" not in _types(kit)
    (settled,) = _deliver(kit, attrs.evolve(refund, gateway_refund_id=case.refund_psp), "success")
    assert settled.status is RefundStatus.SUCCEEDED
    assert len(kit.journal(refund.id)) == 2
    assert _types(kit).count("charge.refunded") == 1
    assert kit.quote("pay_1").max_amount == Money(3000, "EUR")

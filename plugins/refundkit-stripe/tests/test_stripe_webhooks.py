"""Stripe webhooks: signature and tolerance, the refund events, and what a kit does with them
(a refund refundkit made is updated, never counted twice; a failure after success reverses)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import refundkit_stripe
from _stripe_cassettes import CASSETTES, CONFORMANCE, WEBHOOK_AT, WEBHOOK_SECRET
from _stripe_support import cassette, make_gateway
from _stripe_webhooks import WEBHOOK_CONFIG, delivery, signed, signed_refund_delivery
from refundkit_stripe._webhooks import sign

from refundkit import (
    GatewayRefundRequest,
    GatewayRefundResult,
    Money,
    RefundKit,
    RefundStatus,
    WebhookUnprocessable,
    WebhookVerificationError,
)


def test_refund_updated_to_succeeded() -> None:
    [update] = make_gateway().parse_webhook(*delivery("refund_updated_succeeded"))
    case = CONFORMANCE["webhook_succeeded"]
    assert update.status == "succeeded"
    assert update.refund_id == case.refund_id
    assert update.gateway_refund_id == case.gateway_refund_id
    assert update.amount == Money(1000, "USD")
    assert update.event_id == "evt_rkRefundUpdatedSucceeded"


@pytest.mark.parametrize("previous", ["succeeded", "pending", None])
def test_a_refund_failed_reports_failed_whatever_it_was_before(previous: str | None) -> None:
    """The plugin reports the state the refund is in now; previous_attributes is not read
    (the kit turns a failure of a refund it holds as succeeded into a reversal)."""
    [update] = make_gateway().parse_webhook(*delivery("refund_failed_after_success"))
    assert update.status == "failed"
    assert update.failure_code == "expired_or_canceled_card"
    headers, body = signed_refund_delivery(
        "rf_1", "re_1", status="failed", previous_status=previous, event_type="refund.failed"
    )
    [update] = make_gateway().parse_webhook(headers, body)
    assert update.status == "failed"


@pytest.mark.parametrize("status", ["", "reversed", "in_transit"])
def test_a_status_the_plugin_cannot_classify_gives_no_update(status: object) -> None:
    """R-2.4: a status outside STATUS_TABLE moves nothing (held), never reads as pending."""
    headers, body = signed_refund_delivery("rf_1", "re_1", status=status)
    assert make_gateway().parse_webhook(headers, body) == []


@pytest.mark.parametrize("status", [None, 3])
def test_a_status_that_is_not_text_is_unprocessable(status: object) -> None:
    """Issue 14: an authentic event whose status is no status at all is malformed, not a new
    status: unprocessable (acknowledged and recorded), and nothing moves."""
    headers, body = signed_refund_delivery("rf_1", "re_1", status=status)
    with pytest.raises(WebhookUnprocessable):
        make_gateway().parse_webhook(headers, body)


def test_a_failure_of_a_pending_refund_is_failed() -> None:
    headers, body = signed_refund_delivery(
        "rf_1", "re_1", status="failed", previous_status="pending", event_type="refund.failed"
    )
    [update] = make_gateway().parse_webhook(headers, body)
    assert update.status == "failed"


@pytest.mark.parametrize(
    ("stripe_status", "status"),
    [("pending", "pending"), ("requires_action", "pending"), ("canceled", "failed")],
)
def test_charge_refund_updated_maps_every_status(stripe_status: str, status: str) -> None:
    headers, body = signed_refund_delivery(
        "rf_1", "re_1", status=stripe_status, event_type="charge.refund.updated"
    )
    [update] = make_gateway().parse_webhook(headers, body)
    assert update.status == status


def test_charge_refunded_gives_one_update_per_listed_refund() -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "refunds": {
            "object": "list",
            "data": [
                {"id": "re_a", "object": "refund", "amount": 500, "currency": "eur",
                 "status": "succeeded", "metadata": {"refundkit_refund_id": "rf_a"}},
                {"id": "re_b", "object": "refund", "amount": 250, "currency": "eur",
                 "status": "pending", "metadata": {}},
            ],
        },
    }  # fmt: skip
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "charge.refunded",
        "data": {"object": charge},
    }
    updates = make_gateway().parse_webhook(*signed(json.dumps(event).encode()))
    assert [(u.gateway_refund_id, u.refund_id, u.status) for u in updates] == [
        ("re_a", "rf_a", "succeeded"),
        ("re_b", None, "pending"),  # made outside refundkit: no refund id
    ]


@pytest.mark.parametrize(
    "refund",
    [
        {"id": "re_1", "object": "refund", "currency": "usd"},  # no amount
        {"id": "re_1", "object": "refund", "amount": 1.5, "currency": "usd"},  # a float
        {"id": "re_1", "object": "charge", "amount": 100, "currency": "usd"},
        {"object": "refund", "amount": 100, "currency": "usd"},  # no id
    ],
)
def test_a_signed_event_without_a_proper_refund_is_unprocessable(refund: dict[str, object]) -> None:
    """Issue 14: authentic but unreadable, so acknowledged and recorded (no retry cures it),
    not refused as if its signature were wrong."""
    event = {"id": "evt_3", "object": "event", "type": "refund.updated", "data": {"object": refund}}
    with pytest.raises(WebhookUnprocessable):
        make_gateway().parse_webhook(*signed(json.dumps(event).encode()))


def test_other_events_give_no_update() -> None:
    event = {"id": "evt_2", "object": "event", "type": "charge.succeeded", "data": {"object": {}}}
    assert make_gateway().parse_webhook(*signed(json.dumps(event).encode())) == []


def test_a_delivery_outside_the_tolerance_is_refused() -> None:
    """R-4.6, R-7.4: 300 s from the clock passes, 301 s fails."""
    headers, body = delivery("refund_updated_succeeded")
    late = make_gateway(clock=lambda: datetime.fromtimestamp(WEBHOOK_AT + 301, UTC))
    with pytest.raises(WebhookVerificationError, match="300 s"):
        late.parse_webhook(headers, body)
    just_in_time = make_gateway(clock=lambda: datetime.fromtimestamp(WEBHOOK_AT + 300, UTC))
    assert just_in_time.parse_webhook(headers, body)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "t=abc,v1=00",
        f"v1={sign(b'x', WEBHOOK_SECRET, WEBHOOK_AT)[-64:]}",  # no timestamp
        sign(b"{}", "whsec_another_secret", WEBHOOK_AT),  # another endpoint's secret
    ],
)
def test_bad_signatures_are_refused(header: str) -> None:
    _, body = delivery("refund_updated_succeeded")
    with pytest.raises(WebhookVerificationError):
        make_gateway().parse_webhook({"Stripe-Signature": header}, body)


# --- through a kit -----------------------------------------------------------------------------


@pytest.fixture
def stripe_kit(tmp_path: Path) -> Iterator[RefundKit]:
    config = {**WEBHOOK_CONFIG, "retry_delay": 0}
    kit = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}",
        autoload=False,
        plugins=[refundkit_stripe],
        gateways={"stripe": config},
        clock=WEBHOOK_CONFIG["clock"],
        retry_backoff=0,
    )
    yield kit
    kit.close()


def _pay(kit: RefundKit, name: str) -> str:
    case = CONFORMANCE[name]
    kit.record_payment(
        id=f"pay_{name}",
        customer_id="cus_1",
        amount=Money(case.amount, case.currency),
        gateway="stripe",
        gateway_payment_id=case.charge,
    )
    return f"pay_{name}"


def test_pending_then_refund_updated_succeeds_once(stripe_kit: RefundKit) -> None:
    """R-4.6: a repeated delivery changes nothing; a late, older state does not move the
    refund back."""
    payment_id = _pay(stripe_kit, "webhook_succeeded")
    with cassette(CASSETTES / "kit" / "pending_then_webhook.yaml"):
        refund = stripe_kit.refund(payment_id, Money(1000, "USD"))
    assert refund.status is RefundStatus.PENDING
    headers, body = delivery("refund_updated_succeeded")  # names Stripe's refund id
    for _ in range(2):  # Stripe delivers at least once
        [applied] = stripe_kit.handle_gateway_webhook("stripe", headers, body)
        assert applied.id == refund.id
        assert applied.status is RefundStatus.SUCCEEDED
    stale = signed_refund_delivery(
        refund.id,
        CONFORMANCE["webhook_succeeded"].gateway_refund_id,
        status="pending",
        event_type="charge.refund.updated",
        event_id="evt_rkStale",
    )
    [unmoved] = stripe_kit.handle_gateway_webhook("stripe", *stale)
    assert unmoved.status is RefundStatus.SUCCEEDED
    assert stripe_kit.payment(payment_id).refunded == Money(1000, "USD")
    assert [r.id for r in stripe_kit.refunds(payment_id)] == [refund.id]
    assert {line.kind for line in stripe_kit.journal(refund.id)} == {"refund"}


def _stripe_says(
    kit: RefundKit, monkeypatch: pytest.MonkeyPatch, status: str, amount: Money
) -> list[str]:
    """Stripe's refund as it stands, for the lookup the kit makes when an update contradicts
    what it holds; returns the list of refund ids looked up."""
    asked: list[str] = []

    def lookup(request: GatewayRefundRequest) -> GatewayRefundResult:
        asked.append(request.refund_id)
        return GatewayRefundResult(status, None, amount)  # type: ignore[arg-type]

    monkeypatch.setattr(kit.gateway("stripe"), "lookup_refund", lookup)
    return asked


def test_a_failure_delivered_before_its_success_fails_the_refund(
    stripe_kit: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: a pending refund succeeds, then fails at Stripe; the refund.failed (previous
    status succeeded) arrives before the refund.updated to succeeded. The refund ends failed,
    its amount released, and the stale success books nothing: no charge.refunded, no journal.
    The stale success contradicts the failure the kit holds, so Stripe is asked first."""
    asked = _stripe_says(stripe_kit, monkeypatch, "failed", Money(1000, "USD"))
    payment_id = _pay(stripe_kit, "webhook_succeeded")
    with cassette(CASSETTES / "kit" / "pending_then_webhook.yaml"):
        refund = stripe_kit.refund(payment_id, Money(1000, "USD"))
    assert refund.status is RefundStatus.PENDING
    assert stripe_kit.quote(payment_id).max_amount == Money(2000, "USD")
    [failed] = stripe_kit.handle_gateway_webhook(
        "stripe", *delivery("refund_failed_before_its_success")
    )
    assert failed.id == refund.id
    assert failed.status is RefundStatus.FAILED
    assert failed.failure_code == "declined"
    assert asked == []
    [late] = stripe_kit.handle_gateway_webhook("stripe", *delivery("refund_updated_succeeded"))
    assert late.status is RefundStatus.FAILED
    assert asked == [refund.id]
    assert stripe_kit.quote(payment_id).max_amount == Money(3000, "USD")
    assert stripe_kit.payment(payment_id).refunded == Money(0, "USD")
    assert stripe_kit.journal(refund.id) == []
    types = [e.type for e in stripe_kit.events()]
    assert "charge.refunded" not in types
    assert types == ["refund.pending", "refund.failed"]


def test_succeeded_then_refund_failed_is_reversed_with_its_journal(
    stripe_kit: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure of a refund the kit holds succeeded contradicts it: Stripe confirms the
    failure, and the refund is reversed with its journal."""
    asked = _stripe_says(stripe_kit, monkeypatch, "failed", Money(1000, "GBP"))
    payment_id = _pay(stripe_kit, "webhook_failed")
    with cassette(CASSETTES / "kit" / "succeeded_then_webhook.yaml"):
        refund = stripe_kit.refund(payment_id, Money(1000, "GBP"))
    assert refund.status is RefundStatus.SUCCEEDED
    assert stripe_kit.payment(payment_id).refunded == Money(1000, "GBP")
    [applied] = stripe_kit.handle_gateway_webhook(
        "stripe", *delivery("refund_failed_after_success")
    )
    assert applied.status is RefundStatus.REVERSED
    assert asked == [refund.id]
    assert stripe_kit.payment(payment_id).refunded == Money(0, "GBP")
    kinds = sorted(line.kind for line in stripe_kit.journal(refund.id))
    assert kinds == ["refund", "refund", "reversal", "reversal"]


def test_a_delivery_naming_the_kits_refund_id_finds_it(stripe_kit: RefundKit) -> None:
    payment_id = _pay(stripe_kit, "webhook_succeeded")
    with cassette(CASSETTES / "kit" / "pending_then_webhook.yaml"):
        refund = stripe_kit.refund(payment_id, Money(1000, "USD"))
    headers, body = signed_refund_delivery(
        refund.id, CONFORMANCE["webhook_succeeded"].gateway_refund_id
    )
    [applied] = stripe_kit.handle_gateway_webhook("stripe", headers, body)
    assert applied.id == refund.id
    assert applied.status is RefundStatus.SUCCEEDED

"""Event payloads, built from plain values (the kit writes them to the outbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._model import Payment, Refund, RefundStatus, iso, new_id

CHARGE_REFUNDED = "charge.refunded"
REFUND_PENDING = "refund.pending"
REFUND_FAILED = "refund.failed"
REFUND_REVERSED = "refund.reversed"
#: A refund made at the gateway without refundkit, found and recorded by reconciliation.
REFUND_EXTERNAL = "refund.external"

EVENT_TYPES = (CHARGE_REFUNDED, REFUND_PENDING, REFUND_FAILED, REFUND_REVERSED, REFUND_EXTERNAL)

_TYPE_FOR_STATUS = {
    RefundStatus.SUCCEEDED: CHARGE_REFUNDED,
    RefundStatus.PENDING: REFUND_PENDING,
    RefundStatus.FAILED: REFUND_FAILED,
    RefundStatus.REVERSED: REFUND_REVERSED,
}


def event_type_for(status: RefundStatus) -> str | None:
    """Which event a refund entering ``status`` announces (None: no event)."""
    return _TYPE_FOR_STATUS.get(status)


def new_event_id() -> str:
    return new_id("evt_")


def refund_event(
    event_type: str, refund: Refund, payment: Payment, now: datetime, *, event_id: str
) -> dict[str, Any]:
    """The payload of DESIGN.md: refund, payment (with amount refunded), customer, masked card."""
    refunded = payment.refunded.amount if payment.refunded else 0
    data: dict[str, Any] = {
        "refund": {
            "id": refund.id,
            "amount": refund.amount.amount,
            "currency": refund.amount.currency,
            "status": refund.status.value,
            "reason": refund.reason,
            "gateway_refund_id": refund.gateway_refund_id,
        },
        "payment": {
            "id": payment.id,
            "gateway": payment.gateway,
            "gateway_payment_id": payment.gateway_payment_id,
            "destination": payment.destination.value,
            "amount": payment.amount.amount,
            "amount_refunded": refunded,
        },
        "customer_id": payment.customer_id,
        "card": payment.card.to_dict() if payment.card else None,
    }
    if event_type == CHARGE_REFUNDED:
        data["refunded_at"] = iso(now)
    if refund.failure_code:
        data["refund"]["failure_code"] = refund.failure_code
    return {"id": event_id, "type": event_type, "created": iso(now), "data": data}

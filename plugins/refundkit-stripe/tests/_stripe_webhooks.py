"""Signed Stripe webhook deliveries for tests (and for the inbound endpoint's tests).

Usage::

    from _stripe_webhooks import WEBHOOK_CONFIG, signed_refund_delivery
    headers, body = signed_refund_delivery("rf_...", "re_...", status="succeeded")
    kit = RefundKit.open(..., gateways={"stripe": WEBHOOK_CONFIG})
    kit.handle_gateway_webhook("stripe", headers, body)

``WEBHOOK_CONFIG`` holds the signing secret and pins the gateway's clock to the signing time,
so the delivery is within Stripe's 300 s tolerance.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from _stripe_cassettes import CASSETTES, STRIPE_VERSION, WEBHOOK_AT, WEBHOOK_SECRET
from refundkit_stripe._webhooks import sign

#: Gateway configuration that accepts the deliveries below (the clock is the signing time).
WEBHOOK_CONFIG: Final[dict[str, Any]] = {
    "api_key": "sk_test_refundkit_placeholder",
    "webhook_secret": WEBHOOK_SECRET,
    "clock": lambda: datetime.fromtimestamp(WEBHOOK_AT, UTC),
}


def signed(body: bytes, timestamp: int = WEBHOOK_AT) -> tuple[dict[str, str], bytes]:
    return {"Stripe-Signature": sign(body, WEBHOOK_SECRET, timestamp)}, body


def delivery(name: str) -> tuple[dict[str, str], bytes]:
    """The built event ``cassettes/stripe/webhooks/<name>.json``, signed."""
    return signed((CASSETTES / "webhooks" / f"{name}.json").read_bytes())


def signed_refund_delivery(
    refund_id: str,
    gateway_refund_id: str,
    *,
    status: object = "succeeded",
    previous_status: str | None = "pending",
    amount: int = 1000,
    currency: str = "usd",
    event_type: str = "refund.updated",
    event_id: str = "evt_rkInbound",
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of a signed ``refund.updated`` (or ``event_type``) delivery."""
    event = {
        "id": event_id,
        "object": "event",
        "api_version": STRIPE_VERSION,
        "created": WEBHOOK_AT,
        "type": event_type,
        "livemode": False,
        "data": {
            "object": {
                "id": gateway_refund_id,
                "object": "refund",
                "amount": amount,
                "currency": currency,
                "created": WEBHOOK_AT,
                "metadata": {"refundkit_refund_id": refund_id},
                "status": status,
            },
            "previous_attributes": {"status": previous_status},
        },
    }
    return signed(json.dumps(event).encode())

"""Signed Adyen webhook deliveries for tests, built from ``cassettes/adyen/webhooks/*.json``.

For an inbound test of ``POST /webhooks/adyen``: configure the kit's ``adyen`` gateway with
``_adyen_cassettes.gateway_config()`` (test HMAC key and basic auth) and post the headers and
body of ``signed_refund_delivery(...)``; no clock is involved (Adyen signs no timestamp).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any, Final

from _adyen_cassettes import CASSETTES, HMAC_KEY, WEBHOOK_PASSWORD, WEBHOOK_USERNAME
from refundkit_adyen import sign_notification_item

WEBHOOKS: Final = CASSETTES / "webhooks"
#: Template per kind of delivery.
TEMPLATES: Final = {
    "success": "refund_success.json",
    "failure": "refund_failure.json",
    "refund_failed": "refund_failed.json",
    "reversed": "refunded_reversed.json",
    "cancel_or_refund": "cancel_or_refund.json",
    "authorisation": "authorisation.json",
}


def headers(*, auth: bool = True) -> dict[str, str]:
    out = {"Content-Type": "application/json"}
    if auth:
        token = base64.b64encode(f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD}".encode()).decode()
        out["Authorization"] = f"Basic {token}"
    return out


def notification(kind: str, **fields: Any) -> dict[str, Any]:
    """The template's body with ``fields`` set on its item (``value``/``currency`` go into
    ``amount``), not yet signed."""
    body: dict[str, Any] = json.loads((WEBHOOKS / TEMPLATES[kind]).read_text())
    item = body["notificationItems"][0]["NotificationRequestItem"]
    for name, value in fields.items():
        if name in ("value", "currency"):
            item["amount"][name] = value
        else:
            item[name] = value
    return body


def sign(body: dict[str, Any], key_hex: str = HMAC_KEY) -> dict[str, Any]:
    """Every item signed with ``key_hex`` as Adyen does."""
    signed = copy.deepcopy(body)
    key = bytes.fromhex(key_hex)
    for entry in signed["notificationItems"]:
        item = entry["NotificationRequestItem"]
        item.setdefault("additionalData", {})["hmacSignature"] = sign_notification_item(item, key)
    return signed


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def signed_refund_delivery(
    kind: str = "success",
    *,
    refund_id: str,
    gateway_refund_id: str,
    gateway_payment_id: str,
    value: int,
    currency: str,
    key_hex: str = HMAC_KEY,
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of a signed delivery announcing a refund outcome: ``kind`` is success,
    failure, refund_failed, reversed or cancel_or_refund; ``value`` in Adyen's minor units."""
    body = notification(
        kind,
        merchantReference=refund_id,
        pspReference=gateway_refund_id,
        originalReference=gateway_payment_id,
        value=value,
        currency=currency,
    )
    return headers(), encode(sign(body, key_hex))

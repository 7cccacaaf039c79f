"""Adyen standard notifications: HMAC of every item, then refund status updates. Pure: no I/O.

Adyen signs each ``NotificationRequestItem`` (HMAC-SHA256 over eight of its fields, the key in
hex, the signature base64 in ``additionalData.hmacSignature``); it may also send HTTP basic
auth, which is checked when configured. A delivery is accepted whole or refused whole: one
unsigned or wrongly signed item refuses it, and Adyen delivers it again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from refundkit import GatewayRefundStatus, GatewayRefundUpdate, Money, WebhookVerificationError

#: The signed fields, in Adyen's order (``Adyen.util.generate_notification_sig``).
_SIGNED: Final = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
)

#: Refund event codes this plugin applies; any other event is verified and ignored.
REFUND_EVENTS: Final = frozenset(
    {"REFUND", "REFUND_FAILED", "REFUNDED_REVERSED", "CANCEL_OR_REFUND"}
)

Amounts = Callable[[int, str], Money]


def hmac_key_bytes(hex_key: str) -> bytes:
    """The HMAC key as Adyen shows it (hex) → bytes; ValueError when it is not hex."""
    try:
        key = binascii.a2b_hex(hex_key)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            "the Adyen HMAC key must be the hex string from the Customer Area"
        ) from exc
    if not key:
        raise ValueError("the Adyen HMAC key is empty")
    return key


def signing_string(item: Mapping[str, Any]) -> str:
    amount = item.get("amount")
    amount = amount if isinstance(amount, Mapping) else {}
    fields = {**item, "value": amount.get("value", ""), "currency": amount.get("currency", "")}
    return ":".join(str(fields.get(name, "")) for name in _SIGNED)


def sign_notification_item(item: Mapping[str, Any], key: bytes) -> str:
    """The ``hmacSignature`` Adyen puts on ``item`` (for tests and for checking)."""
    digest = hmac.new(key, signing_string(item).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_basic_auth(headers: Mapping[str, str], username: str, password: str) -> None:
    """Checks the ``Authorization: Basic`` header Adyen sends when basic auth is set up."""
    wanted = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    given = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if not hmac.compare_digest(given.encode(), wanted.encode()):
        raise WebhookVerificationError(
            "Adyen webhook refused: missing or wrong basic auth (Authorization header)"
        )


def notification_items(body: bytes, key: bytes, *, live: bool) -> list[Mapping[str, Any]]:
    """The delivery's items, each with a valid HMAC signature; refuses the delivery otherwise."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError("Adyen webhook refused: the body is not JSON") from None
    raw = payload.get("notificationItems") if isinstance(payload, dict) else None
    if not isinstance(raw, list) or not raw:
        raise WebhookVerificationError("Adyen webhook refused: no notificationItems")
    if str(payload.get("live", "")).lower() != str(live).lower():
        raise WebhookVerificationError(
            f"Adyen webhook refused: live={payload.get('live')!r} does not match this"
            f" {'live' if live else 'test'} configuration"
        )
    items: list[Mapping[str, Any]] = []
    for entry in raw:
        item = entry.get("NotificationRequestItem") if isinstance(entry, dict) else None
        if not isinstance(item, dict):
            raise WebhookVerificationError("Adyen webhook refused: an item is not an object")
        _verify_item(item, key)
        items.append(item)
    return items


def _verify_item(item: Mapping[str, Any], key: bytes) -> None:
    data = item.get("additionalData")
    signature = data.get("hmacSignature") if isinstance(data, Mapping) else None
    name = f"{item.get('eventCode')} {item.get('pspReference')}"
    if not isinstance(signature, str) or not signature:
        raise WebhookVerificationError(f"Adyen webhook refused: item {name} is not signed")
    expected = sign_notification_item(item, key)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise WebhookVerificationError(
            f"Adyen webhook refused: item {name} has a wrong HMAC signature (wrong key, or"
            " the item was changed)"
        )


def refund_updates(item: Mapping[str, Any], amounts: Amounts) -> list[GatewayRefundUpdate]:
    """What one verified item says about a refund (nothing for other events).

    ``REFUNDED_REVERSED`` gives two updates, succeeded then reversed: a reversal proves the
    refund had succeeded, so a reversal delivered before its ``REFUND`` is not lost.
    """
    event = item.get("eventCode")
    if event not in REFUND_EVENTS:
        return []
    success = str(item.get("success", "")).lower() == "true"
    statuses: list[GatewayRefundStatus]
    if event == "REFUNDED_REVERSED":
        statuses = ["succeeded", "reversed"]
    elif event == "REFUND_FAILED":
        statuses = ["failed"]  # after a success the kit turns this into reversed
    else:
        statuses = ["succeeded" if success else "failed"]
    amount = _amount(item, amounts)
    psp = item.get("pspReference")
    reference = item.get("merchantReference")
    failed_code = None if statuses == ["succeeded"] else _failure_code(event, item)
    event_id = f"{psp}:{event}:{item.get('success')}"
    return [
        GatewayRefundUpdate(
            status=status,
            refund_id=reference if isinstance(reference, str) and reference else None,
            gateway_refund_id=psp if isinstance(psp, str) and psp else None,
            amount=amount,
            failure_code=failed_code if status != "succeeded" else None,
            event_id=event_id,
        )
        for status in statuses
    ]


def _failure_code(event: str, item: Mapping[str, Any]) -> str:
    reason = str(item.get("reason") or "").strip()
    code = event.lower()
    return f"{code}: {reason}"[:200] if reason else code


def _amount(item: Mapping[str, Any], amounts: Amounts) -> Money | None:
    amount = item.get("amount")
    if not isinstance(amount, Mapping):
        return None
    value, currency = amount.get("value"), amount.get("currency")
    if type(value) is not int or not isinstance(currency, str):
        return None
    return amounts(value, currency)

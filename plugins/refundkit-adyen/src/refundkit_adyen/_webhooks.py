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
from types import MappingProxyType
from typing import Any, Final, Literal

from refundkit import GatewayRefundUpdate, Money, WebhookVerificationError

#: What a gateway says a refund is in now: a refundkit status, or "unknown" (not classified:
#: the refund is held as it is).
StatusOutcome = Literal["succeeded", "pending", "failed", "reversed", "unknown"]

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

#: What a refund is in now, for each refund event code and ``success`` value: a refundkit status,
#: or "unknown" (the item says nothing the plugin can classify: no update, the refund is held
#: as it is). Keys are ``"<eventCode>:<success>"``. A ``REFUNDED_REVERSED`` that arrives before
#: its ``REFUND`` is kept: refundkit books the success it proves, then the reversal.
STATUS_TABLE: Final[Mapping[str, StatusOutcome]] = MappingProxyType(
    {
        "REFUND:true": "succeeded",
        "REFUND:false": "failed",  # Adyen did not refund; ``reason`` says why
        "REFUND_FAILED:true": "failed",  # the scheme rejected it (after a success: reversed)
        "REFUND_FAILED:false": "unknown",
        "REFUNDED_REVERSED:true": "reversed",
        "REFUNDED_REVERSED:false": "unknown",
        "CANCEL_OR_REFUND:true": "succeeded",
        "CANCEL_OR_REFUND:false": "failed",
        # Postponed until the payment is captured: it will still be made.
        "POSTPONED_REFUND:true": "pending",
        "POSTPONED_REFUND:false": "unknown",
        # A pending (POS) refund was cancelled: no money went back.
        "VOID_PENDING_REFUND:true": "failed",
        "VOID_PENDING_REFUND:false": "unknown",  # the cancel failed: the refund stands
    }
)

#: Refund event codes this plugin reads (any ``success`` value other than "true"/"false" is
#: "unknown" too).
REFUND_EVENTS: Final = frozenset(key.split(":")[0] for key in STATUS_TABLE)

#: Every other event code of Adyen's Webhooks API (the eventCode enum and the webhook names of
#: ``Webhooks-v1.json``): verified, then ignored; none says what happened to a refund refundkit
#: made. A test walks the spec, so a code a new spec adds fails until it is placed here or in
#: ``STATUS_TABLE``.
OTHER_EVENTS: Final = frozenset(
    {
        "ACH_NOTIFICATION_OF_CHANGE", "AUTHENTICATION", "AUTHORISATION",
        "AUTHORISATION_ADJUSTMENT", "AUTORESCUE", "CANCELLATION", "CANCEL_AUTORESCUE",
        "CAPTURE", "CAPTURE_FAILED", "CHARGEBACK", "CHARGEBACK_REVERSED",
        "DIRECT_DEBIT_NOTICE_OF_CHANGE_NOTIFICATION", "DISPUTE_DEFENSE_PERIOD_ENDED", "EXPIRE",
        "HANDLED_EXTERNALLY", "INFORMATION_SUPPLIED", "ISSUER_COMMENTS",
        "ISSUER_RESPONSE_TIMEFRAME_EXPIRED", "MANUAL_REVIEW_ACCEPT", "MANUAL_REVIEW_REJECT",
        "NOTIFICATION_OF_CHARGEBACK", "NOTIFICATION_OF_FRAUD", "OFFER_CLOSED", "ORDER_CLOSED",
        "ORDER_OPENED", "PAIDOUT_REVERSED", "PAYOUT_DECLINE", "PAYOUT_EXPIRE",
        "PAYOUT_THIRDPARTY", "PREARBITRATION_ACCEPTED", "PREARBITRATION_DECLINED",
        "PREARBITRATION_ISSUER_WITHDRAWN", "PREARBITRATION_LOST", "PREARBITRATION_OPEN",
        "PREARBITRATION_WON", "RECURRING_CONTRACT", "REPORT_AVAILABLE",
        "REQUEST_FOR_INFORMATION", "SCHEME_ARBITRATION", "SCHEME_ARBITRATION_LOST",
        "SCHEME_ARBITRATION_WON", "SECOND_CHARGEBACK", "TECHNICAL_CANCEL",
        # An unreferenced refund (Classic refundWithData): refundkit never sends one.
        "REFUND_WITH_DATA",
    }
)  # fmt: skip


def status_of(event: object, success: object) -> StatusOutcome | None:
    """What an item with this ``eventCode`` and ``success`` says of a refund: a status,
    "unknown" (no update), or None for an event that is not about refunds."""
    if event not in REFUND_EVENTS:
        return None
    return STATUS_TABLE.get(f"{event}:{str(success).lower()}", "unknown")


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
    """What one verified item says about a refund (nothing for other events): the state Adyen
    holds it in now, whatever came before."""
    event = item.get("eventCode")
    outcome = status_of(event, item.get("success"))
    if outcome is None or outcome == "unknown":
        return []
    amount = _amount(item, amounts)
    psp = item.get("pspReference")
    reference = item.get("merchantReference")
    failed_code = _failure_code(str(event), item)
    event_id = f"{psp}:{event}:{item.get('success')}"
    return [
        GatewayRefundUpdate(
            status=outcome,
            refund_id=reference if isinstance(reference, str) and reference else None,
            gateway_refund_id=psp if isinstance(psp, str) and psp else None,
            amount=amount,
            failure_code=failed_code if outcome in ("failed", "reversed") else None,
            event_id=event_id,
        )
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

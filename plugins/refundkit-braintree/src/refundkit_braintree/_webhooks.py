"""Braintree webhook notifications → refund updates, verified with the SDK.

Braintree POSTs ``application/x-www-form-urlencoded`` with two fields: ``bt_signature``
(``public_key|hmac-sha1``) and ``bt_payload`` (base64 XML). The SDK checks the signature
against the configured keys. Kinds read here:

* ``refund_failed``: a refund (credit) Braintree accepted failed later → ``failed`` (the kit
  turns a succeeded refund that fails into ``reversed``);
* ``transaction_settled`` / ``transaction_settlement_declined`` of a credit → ``succeeded`` /
  ``failed`` (Braintree sends these for bank-account payments);
* dispute kinds and everything else are verified and give no refund update.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

from refundkit import (
    GatewayRefundStatus,
    GatewayRefundUpdate,
    RefundkitError,
    WebhookVerificationError,
)

if TYPE_CHECKING:
    from ._gateway import BraintreeGateway

FORM: Final = "application/x-www-form-urlencoded"
#: Notification kind → the refund status it announces (for credit transactions).
KINDS: Final[Mapping[str, GatewayRefundStatus]] = {
    "refund_failed": "failed",
    "transaction_settled": "succeeded",
    "transaction_settlement_declined": "failed",
}
_MAX_BODY: Final = 1 << 20


def parse(
    gateway: BraintreeGateway, headers: Mapping[str, str], body: bytes
) -> list[GatewayRefundUpdate]:
    signature, payload = _fields(headers, body)
    try:
        notification = gateway.verified_notification(signature, payload)
    except WebhookVerificationError:
        raise
    except RefundkitError as exc:
        raise WebhookVerificationError(f"braintree webhook refused: {exc}") from exc
    status = KINDS.get(str(notification.kind))
    txn = getattr(notification, "transaction", None)
    if status is None or txn is None:
        return []
    if notification.kind != "refund_failed" and getattr(txn, "type", None) != "credit":
        return []  # a sale settling is no refund news
    return [_update(gateway, notification, txn, status, payload)]


def _fields(headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if content_type.split(";")[0].strip().lower() != FORM:
        raise WebhookVerificationError(f"a braintree webhook is a {FORM} POST")
    if len(body) > _MAX_BODY:
        raise WebhookVerificationError("braintree webhook body is too large")
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=4)
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError("braintree webhook body is not form data") from None
    signature, payload = fields.get("bt_signature", []), fields.get("bt_payload", [])
    if len(signature) != 1 or len(payload) != 1:
        raise WebhookVerificationError("braintree webhook needs bt_signature and bt_payload")
    return signature[0], payload[0]


def _update(
    gateway: BraintreeGateway,
    notification: Any,
    txn: Any,
    status: GatewayRefundStatus,
    payload: str,
) -> GatewayRefundUpdate:
    currency = getattr(txn, "currency_iso_code", None)
    amount = getattr(txn, "amount", None)
    try:
        money = gateway.from_wire(amount, currency) if currency and amount is not None else None
    except RefundkitError as exc:
        raise WebhookVerificationError(f"braintree webhook amount is malformed: {exc}") from None
    return GatewayRefundUpdate(
        status=status,
        refund_id=getattr(txn, "order_id", None) or None,
        gateway_refund_id=txn.id,
        amount=money,
        failure_code=str(notification.kind) if status == "failed" else None,
        # Braintree gives no notification id: the signed payload names it, repeats included.
        event_id="bt_" + hashlib.sha256(payload.encode()).hexdigest()[:32],
    )

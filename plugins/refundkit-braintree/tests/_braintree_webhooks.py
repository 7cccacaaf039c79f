"""Signed Braintree webhook deliveries for tests (also for the inbound endpoint's tests).

Usage::

    from _braintree_webhooks import WEBHOOK_GATEWAY_CONFIG, signed_refund_delivery
    headers, body = signed_refund_delivery("refund_failed", "rkcrwhno", "rf_1", Money(1000, "USD"))
    # configure [gateways.braintree] with WEBHOOK_GATEWAY_CONFIG, then
    # POST /webhooks/braintree with these headers and body

A delivery is what Braintree POSTs: ``application/x-www-form-urlencoded`` with
``bt_signature`` (``public_key|hex hmac-sha1``, keyed with sha1(private_key)) and
``bt_payload`` (base64 of the notification XML). The XML follows the SDK's own samples
(``braintree/webhook_testing_gateway.py``) for ``refund_failed`` and ``transaction_settled``,
without their card number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode

from _braintree_support import PRIVATE_KEY, PUBLIC_KEY, TEST_CONFIG

from refundkit import Money

#: The gateway configuration whose keys sign (and so verify) these deliveries.
WEBHOOK_GATEWAY_CONFIG: Final = dict(TEST_CONFIG)
#: Braintree sends no clock-dependent signature part, so no clock needs pinning.
RECORDED_AT: Final = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def notification_xml(
    kind: str,
    credit_id: str,
    refund_id: str | None,
    amount: Money,
    sale_id: str = "rkslwhno",
    status: str | None = None,
) -> bytes:
    txn_status = status or ("processor_declined" if kind == "refund_failed" else "settled")
    units = f"{amount.amount // 100}.{amount.amount % 100:02d}"
    order = f"<order-id>{refund_id}</order-id>" if refund_id else '<order-id nil="true"/>'
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<notification>
  <timestamp type="datetime">{RECORDED_AT:%Y-%m-%dT%H:%M:%SZ}</timestamp>
  <kind>{kind}</kind>
  <subject>
    <transaction>
      <id>{credit_id}</id>
      <type>credit</type>
      <amount>{units}</amount>
      <currency-iso-code>{amount.currency}</currency-iso-code>
      {order}
      <status>{txn_status}</status>
      <refunded-transaction-id>{sale_id}</refunded-transaction-id>
    </transaction>
  </subject>
</notification>
""".encode()


def sign(payload: bytes, private_key: str = PRIVATE_KEY, public_key: str = PUBLIC_KEY) -> str:
    """Braintree's ``bt_signature`` for ``payload`` (the base64 text)."""
    key = hashlib.sha1(private_key.encode()).digest()
    digest = hmac.new(key, payload, hashlib.sha1).hexdigest()
    return f"{public_key}|{digest}"


def delivery(xml: bytes, private_key: str = PRIVATE_KEY) -> tuple[dict[str, str], bytes]:
    """(headers, body) of the POST carrying the notification ``xml``, signed with the key."""
    payload = base64.encodebytes(xml)
    body = urlencode({"bt_signature": sign(payload, private_key), "bt_payload": payload})
    return {"Content-Type": "application/x-www-form-urlencoded"}, body.encode()


def signed_refund_delivery(
    kind: str,
    credit_id: str,
    refund_id: str | None,
    amount: Money,
    sale_id: str = "rkslwhno",
) -> tuple[dict[str, str], bytes]:
    """A signed ``refund_failed`` or ``transaction_settled`` delivery for one credit."""
    return delivery(notification_xml(kind, credit_id, refund_id, amount, sale_id))

"""Braintree webhook notifications: verified with the SDK, refund updates read from them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from _braintree_support import BRAINTREE_VCR, EXTRA, gateway, normalise_kit_ids
from _braintree_webhooks import (
    WEBHOOK_GATEWAY_CONFIG,
    delivery,
    notification_xml,
    signed_refund_delivery,
)

from refundkit import GatewayRefundResult, Money, RefundKit, WebhookVerificationError
from refundkit.testing import tamper_webhook


def test_refund_failed_announces_the_refund_failed() -> None:
    headers, body = signed_refund_delivery("refund_failed", "rkcr0001", "rf_1", Money(1000, "USD"))
    (update,) = gateway().parse_webhook(headers, body)
    assert update.status == "failed"
    assert (update.refund_id, update.gateway_refund_id) == ("rf_1", "rkcr0001")
    assert update.amount == Money(1000, "USD")
    assert update.failure_code == "refund_failed"
    assert update.event_id is not None
    # A repeated delivery is the same event (consumers dedupe on its id).
    assert gateway().parse_webhook(headers, body) == [update]


def test_a_settled_credit_announces_success_a_settled_sale_nothing() -> None:
    headers, body = signed_refund_delivery(
        "transaction_settled", "rkcr0002", "rf_2", Money(250, "USD")
    )
    (update,) = gateway().parse_webhook(headers, body)
    assert (update.status, update.refund_id) == ("succeeded", "rf_2")
    sale = notification_xml("transaction_settled", "rksl0002", None, Money(250, "USD"))
    sale = sale.replace(b"<type>credit</type>", b"<type>sale</type>")
    assert gateway().parse_webhook(*delivery(sale)) == []


def test_a_dispute_notification_is_verified_but_is_no_refund_update() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<notification><timestamp type="datetime">2026-11-22T10:00:00Z</timestamp>
<kind>dispute_opened</kind><subject><dispute><id>dp1</id><status>open</status>
<transaction><id>rksl0003</id><amount>10.00</amount></transaction></dispute></subject>
</notification>"""
    assert gateway().parse_webhook(*delivery(xml)) == []
    with pytest.raises(WebhookVerificationError):
        gateway().parse_webhook(*delivery(xml, private_key="someone_elses_key"))


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b"bt_signature=x&bt_payload=eA=="),
        ({"Content-Type": "application/json"}, b'{"bt_signature": "x"}'),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"bt_payload=eA=="),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"\xff\xfe"),
        (
            {"Content-Type": "application/x-www-form-urlencoded"},
            urlencode({"bt_signature": "rk_test_public_key|00", "bt_payload": "eA=="}).encode(),
        ),
    ],
)
def test_unsigned_or_malformed_deliveries_are_refused(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(WebhookVerificationError):
        gateway().parse_webhook(headers, body)


def test_a_delivery_signed_with_another_key_is_refused() -> None:
    xml = notification_xml("refund_failed", "rkcr0004", "rf_4", Money(100, "USD"))
    with pytest.raises(WebhookVerificationError, match=r"public key|modified"):
        gateway().parse_webhook(*delivery(xml, private_key="not_our_private_key"))


def test_through_the_kit_refund_failed_reverses_a_succeeded_refund(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbound path: kit.handle_gateway_webhook('braintree', headers, body) verifies the
    delivery and turns the succeeded refund into reversed (the money came back)."""
    kit = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}", gateways={"braintree": WEBHOOK_GATEWAY_CONFIG}
    )
    plan = EXTRA["kit_recover"]
    try:
        # The sale (GET) and the refund (POST) of this cassette; the searches are not needed.
        with BRAINTREE_VCR.use_cassette(
            "kit_timeout_then_recover.yaml", before_record_request=normalise_kit_ids
        ):
            kit.record_payment(
                id="pay_wh",
                customer_id="cus_1",
                amount=plan.amount,
                gateway="braintree",
                gateway_payment_id=plan.sale_id,
            )
            refund = kit.refund("pay_wh", amount=plan.refund_amount, idempotency_key="k-wh")
        assert (refund.status.value, refund.gateway_refund_id) == ("succeeded", "rkcrkitr")
        # The failure of a refund held succeeded is looked up before it is booked (issue 15):
        # Braintree's answer after refund_failed, until a cassette of that search exists.
        failed = GatewayRefundResult("failed", "rkcrkitr", plan.refund_amount, "refund_failed")
        monkeypatch.setattr(kit.gateway("braintree"), "lookup_refund", lambda _: failed)
        headers, body = signed_refund_delivery(
            "refund_failed", "rkcrkitr", refund.id, plan.refund_amount, plan.sale_id
        )
        (applied,) = kit.handle_gateway_webhook("braintree", headers, body)
        assert applied.status.value == "reversed"
        assert kit.quote("pay_wh").max_amount == plan.amount  # the money is refundable again
        # A repeated delivery changes nothing: no second reversing journal, no second event.
        journal, events = len(kit.journal(refund_id=refund.id)), len(kit.events())
        repeat = kit.handle_gateway_webhook("braintree", headers, body)
        assert [r.status.value for r in repeat] == ["reversed"]
        assert (len(kit.journal(refund_id=refund.id)), len(kit.events())) == (journal, events)
        with pytest.raises(WebhookVerificationError):
            kit.handle_gateway_webhook("braintree", *tamper_webhook((headers, body)))
    finally:
        kit.close()

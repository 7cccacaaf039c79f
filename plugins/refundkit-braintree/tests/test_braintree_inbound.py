"""Braintree's inbound webhooks through the ASGI app with httpx (R-1.8, R-4.4, R-4.6): the
checks of ``refundkit.testing.inbound`` on a refund made through the kit from the
``kit_timeout_then_recover`` cassette. Braintree refunds succeed at once, so the news a webhook
brings is ``refund_failed``: the succeeded refund becomes reversed. Braintree signs in the form
body (``bt_signature`` next to ``bt_payload``), and the plugin's ``parse_webhook`` verifies it
with the SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import refundkit_braintree
from _braintree_support import BRAINTREE_VCR, EXTRA, normalise_kit_ids
from _braintree_webhooks import WEBHOOK_GATEWAY_CONFIG, signed_refund_delivery

from refundkit import GatewayRefundResult, Money, RefundKit, RefundStatus
from refundkit.testing import WebhookDelivery
from refundkit.testing.inbound import (
    BAD_SIGNATURES,
    InboundCase,
    check_applied_once,
    check_refused,
    check_unknown_refund,
)


def without_bt_signature(delivery: WebhookDelivery) -> WebhookDelivery:
    """The form body without its ``bt_signature`` field; headers and payload kept."""
    headers, body = delivery
    fields = [(k, v) for k, v in parse_qsl(body.decode("ascii")) if k != "bt_signature"]
    return headers, urlencode(fields).encode()


def with_payload_of(signed: WebhookDelivery, other: WebhookDelivery) -> WebhookDelivery:
    """``signed``'s bt_signature on ``other``'s payload: a well-formed notification that was
    changed after signing (flipping a byte of the base64 would only garble the XML)."""
    headers, body = signed
    fields = dict(parse_qsl(body.decode("ascii")))
    fields["bt_payload"] = dict(parse_qsl(other[1].decode("ascii")))["bt_payload"]
    return headers, urlencode(fields).encode()


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[RefundKit]:
    k = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}",
        autoload=False,
        plugins=[refundkit_braintree],
        gateways={"braintree": WEBHOOK_GATEWAY_CONFIG},
        retry_backoff=0,
    )
    yield k
    k.close()


@pytest.fixture
def case(kit: RefundKit, monkeypatch: pytest.MonkeyPatch) -> InboundCase:
    plan = EXTRA["kit_recover"]
    # The sale (GET) and the refund (POST) of this cassette; its searches are not needed.
    with BRAINTREE_VCR.use_cassette(
        "kit_timeout_then_recover.yaml", before_record_request=normalise_kit_ids
    ) as cass:
        kit.record_payment(
            id="pay_1",
            customer_id="cus_1",
            amount=plan.amount,
            gateway="braintree",
            gateway_payment_id=plan.sale_id,
        )
        refund = kit.refund("pay_1", amount=plan.refund_amount, idempotency_key="k-inbound")
        assert cass.play_count == 2
    assert (refund.status, refund.gateway_refund_id) == (RefundStatus.SUCCEEDED, "rkcrkitr")
    # A failure of a refund the kit holds succeeded is looked up before it is booked (issue
    # 15): Braintree's answer after refund_failed, until a cassette of that search exists.
    failed_credit = GatewayRefundResult("failed", "rkcrkitr", plan.refund_amount, "refund_failed")
    monkeypatch.setattr(kit.gateway("braintree"), "lookup_refund", lambda _: failed_credit)
    failed = signed_refund_delivery(
        "refund_failed", "rkcrkitr", refund.id, plan.refund_amount, plan.sale_id
    )
    more = Money(plan.refund_amount.amount + 100, plan.refund_amount.currency)
    changed = signed_refund_delivery("refund_failed", "rkcrkitr", refund.id, more, plan.sale_id)
    unknown = signed_refund_delivery(
        "transaction_settled", "rkcrelse", "rf_made_elsewhere", Money(500, "USD"), "rkslelse"
    )
    return InboundCase(
        "braintree",
        refund.id,
        failed,
        RefundStatus.REVERSED,
        unknown,
        tampered=with_payload_of(failed, changed),
        strip_signature=without_bt_signature,
    )


def test_refund_failed_applies_once(kit: RefundKit, case: InboundCase) -> None:
    """R-1.8: 200, reversed (the money is refundable again); the same delivery again changes
    no row and adds no event."""
    check_applied_once(kit, case)
    assert kit.quote("pay_1").max_amount == EXTRA["kit_recover"].amount


@pytest.mark.parametrize("how", BAD_SIGNATURES)
def test_bad_signature_is_400_and_changes_nothing(
    kit: RefundKit, case: InboundCase, how: str
) -> None:
    """R-4.4: tampered, unsigned or without its bt_signature field."""
    check_refused(kit, case, how)
    assert kit.get_refund(case.refund_id).status is RefundStatus.SUCCEEDED


def test_unknown_refund_is_logged_and_acknowledged(kit: RefundKit, case: InboundCase) -> None:
    check_unknown_refund(kit, case)

"""Stripe's inbound webhooks through the ASGI app with httpx (R-1.8, R-4.4, R-4.6): the
checks of ``refundkit.testing.inbound`` on a pending refund made through the kit from the
``kit/pending_then_webhook`` cassette, settled by a ``refund.updated`` that Stripe signs in
its ``Stripe-Signature`` header and the plugin's ``parse_webhook`` verifies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import refundkit_stripe
from _stripe_cassettes import CASSETTES, CONFORMANCE
from _stripe_support import cassette
from _stripe_webhooks import WEBHOOK_CONFIG, delivery, signed_refund_delivery

from refundkit import Money, RefundKit, RefundStatus
from refundkit.testing.inbound import (
    BAD_SIGNATURES,
    InboundCase,
    check_applied_once,
    check_refused,
    check_unknown_refund,
)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[RefundKit]:
    k = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}",
        autoload=False,
        plugins=[refundkit_stripe],
        gateways={"stripe": {**WEBHOOK_CONFIG, "retry_delay": 0}},
        clock=WEBHOOK_CONFIG["clock"],
        retry_backoff=0,
    )
    yield k
    k.close()


@pytest.fixture
def case(kit: RefundKit) -> InboundCase:
    paid = CONFORMANCE["webhook_succeeded"]
    kit.record_payment(
        id="pay_1",
        customer_id="cus_1",
        amount=Money(paid.amount, paid.currency),
        gateway="stripe",
        gateway_payment_id=paid.charge,
    )
    with cassette(CASSETTES / "kit" / "pending_then_webhook.yaml"):
        refund = kit.refund("pay_1", Money(paid.refund_amount, paid.currency))
    assert refund.status is RefundStatus.PENDING
    assert refund.gateway_refund_id == paid.gateway_refund_id
    unknown = signed_refund_delivery(
        "rf_made_elsewhere", "re_rkMadeElsewhere", event_id="evt_rkMadeElsewhere"
    )
    return InboundCase(
        "stripe",
        refund.id,
        delivery("refund_updated_succeeded"),  # names Stripe's refund id
        RefundStatus.SUCCEEDED,
        unknown,
    )


def test_refund_updated_applies_once(kit: RefundKit, case: InboundCase) -> None:
    """R-1.8: 200, succeeded; the same delivery again changes no row and adds no event."""
    check_applied_once(kit, case)
    assert kit.payment("pay_1").refunded == Money(1000, "USD")


@pytest.mark.parametrize("how", BAD_SIGNATURES)
def test_bad_signature_is_400_and_changes_nothing(
    kit: RefundKit, case: InboundCase, how: str
) -> None:
    """R-4.4: tampered, unsigned or without its Stripe-Signature header."""
    check_refused(kit, case, how)
    assert kit.get_refund(case.refund_id).status is RefundStatus.PENDING


def test_unknown_refund_is_logged_and_acknowledged(kit: RefundKit, case: InboundCase) -> None:
    check_unknown_refund(kit, case)

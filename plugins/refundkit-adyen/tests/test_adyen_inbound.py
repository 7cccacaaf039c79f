"""Adyen's inbound webhooks through the ASGI app with httpx (R-1.8, R-4.4, R-4.6): the checks
of ``refundkit.testing.inbound`` on a refund made through the kit from the
``kit_refund_received`` cassette (Adyen answers "received": pending), settled by a ``REFUND``
success notification. Adyen signs each item (HMAC in ``additionalData.hmacSignature``) and
sends basic auth; the plugin's ``parse_webhook`` checks both."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import refundkit_adyen
from _adyen_cassettes import CASES, adyen_value, gateway_config, use
from _adyen_webhooks import signed_refund_delivery

from refundkit import Money, RefundKit, RefundStatus
from refundkit.testing import WebhookDelivery
from refundkit.testing.inbound import (
    BAD_SIGNATURES,
    InboundCase,
    check_applied_once,
    check_refused,
    check_unknown_refund,
)

CASE = CASES["kit_refund_received"]


def without_hmac(delivery: WebhookDelivery) -> WebhookDelivery:
    """Every item without its ``hmacSignature``; headers (basic auth) and all else kept."""
    headers, body = delivery
    payload = json.loads(body)
    for entry in payload["notificationItems"]:
        entry["NotificationRequestItem"]["additionalData"].pop("hmacSignature")
    return headers, json.dumps(payload).encode()


def with_value_changed(delivery: WebhookDelivery) -> WebhookDelivery:
    """A signed field (the amount) changed, the signature kept: Adyen signs eight fields only,
    so a changed byte elsewhere (``eventDate``) would not be tampering with what it signs."""
    headers, body = delivery
    payload = copy.deepcopy(json.loads(body))
    payload["notificationItems"][0]["NotificationRequestItem"]["amount"]["value"] += 1
    return headers, json.dumps(payload).encode()


def delivery(refund_id: str, refund_psp: str, payment_psp: str) -> WebhookDelivery:
    return signed_refund_delivery(
        "success",
        refund_id=refund_id,
        gateway_refund_id=refund_psp,
        gateway_payment_id=payment_psp,
        value=adyen_value(CASE, CASE.refund_amount),
        currency=CASE.currency,
    )


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[RefundKit]:
    k = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}",
        autoload=False,
        plugins=[refundkit_adyen],
        gateways={"adyen": gateway_config()},
        retry_backoff=0,
    )
    yield k
    k.close()


@pytest.fixture
def case(kit: RefundKit) -> InboundCase:
    kit.record_payment(
        id="pay_1",
        customer_id="cus_1",
        amount=Money(CASE.payment_amount, CASE.currency),
        gateway="adyen",
        gateway_payment_id=CASE.payment_psp,
    )
    with use(CASE, kit=True) as cassette:
        refund = kit.refund("pay_1", Money(CASE.refund_amount, CASE.currency))
        assert cassette.all_played
    assert (refund.status, refund.gateway_refund_id) == (RefundStatus.PENDING, CASE.refund_psp)
    settled = delivery(refund.id, CASE.refund_psp, CASE.payment_psp)
    unknown = delivery("rf_made_elsewhere", "RFNDPSPELSEWHERE", "QFQTPCQELSEWHERE")
    return InboundCase(
        "adyen",
        refund.id,
        settled,
        RefundStatus.SUCCEEDED,
        unknown,
        tampered=with_value_changed(settled),
        strip_signature=without_hmac,
    )


def test_refund_success_applies_once(kit: RefundKit, case: InboundCase) -> None:
    """R-1.8: 200, succeeded; the same delivery again changes no row and adds no event."""
    check_applied_once(kit, case)
    assert kit.payment("pay_1").refunded == Money(CASE.refund_amount, CASE.currency)


@pytest.mark.parametrize("how", BAD_SIGNATURES)
def test_bad_signature_is_400_and_changes_nothing(
    kit: RefundKit, case: InboundCase, how: str
) -> None:
    """R-4.4: a signed field changed; no HMAC and no basic auth; no HMAC (basic auth kept)."""
    check_refused(kit, case, how)
    assert kit.get_refund(case.refund_id).status is RefundStatus.PENDING


def test_unknown_refund_is_logged_and_acknowledged(kit: RefundKit, case: InboundCase) -> None:
    check_unknown_refund(kit, case)

"""The Adyen conformance harness: one cassette per scenario, webhooks signed with a test key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from _adyen_cassettes import CASES, Recorded, adyen_value, gateway_config, use
from _adyen_webhooks import encode, headers, notification, sign
from refundkit_adyen import AdyenGateway

from refundkit import Money
from refundkit.testing import ConformanceHarness, Scenario, ScenarioNotSupported

_WEBHOOK_KIND = {"webhook_succeeded": "success", "webhook_failed": "failure"}


class AdyenHarness(ConformanceHarness):
    """Adyen has no call to fetch a payment (its card is taken when the payment is recorded,
    tested in test_adyen_cards.py) and no refund lookup (recovery re-sends with the key)."""

    fetch_payment_supported = False

    def __init__(self) -> None:
        self._gateway = AdyenGateway(gateway_config())

    @property
    def gateway(self) -> AdyenGateway:
        return self._gateway

    @contextlib.contextmanager
    def scenario(self, name: str) -> Iterator[Scenario]:
        if name == "unknown_then_lookup":
            raise ScenarioNotSupported("Adyen has no refund lookup; a resend with the key is used")
        if name == "card_masking":
            raise ScenarioNotSupported("Adyen's Checkout API cannot fetch a payment")
        case = CASES[f"conformance/{name}"]
        # record_mode "none": a request the cassette does not hold fails loudly.
        with use(case):
            yield _scenario(name, case)


def _scenario(name: str, case: Recorded) -> Scenario:
    webhook = tampered = None
    if name in _WEBHOOK_KIND:
        fields: dict[str, Any] = {
            "merchantReference": case.refund_id,
            "pspReference": case.refund_psp,
            "originalReference": case.payment_psp,
            "currency": case.currency,
            "value": adyen_value(case, case.refund_amount),
        }
        body = sign(notification(_WEBHOOK_KIND[name], **fields))
        webhook = (headers(), encode(body))
        # Adyen signs eight fields only: change a signed one (the amount), keep the signature.
        changed = notification(_WEBHOOK_KIND[name], **{**fields, "value": fields["value"] + 1})
        item = changed["notificationItems"][0]["NotificationRequestItem"]
        item["additionalData"] = body["notificationItems"][0]["NotificationRequestItem"][
            "additionalData"
        ]
        tampered = (headers(), encode(changed))
    return Scenario(
        gateway_payment_id=case.payment_psp,
        payment_id=f"pay_{case.payment_psp}",
        amount=Money(case.payment_amount, case.currency),
        refund_amount=Money(case.refund_amount, case.currency),
        refund_id=case.refund_id,
        idempotency_key=case.key,
        reason=case.reason,
        webhook=webhook,
        tampered_webhook=tampered,
    )

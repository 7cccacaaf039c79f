"""refundkit gateway plugin for Adyen (Checkout API v72 refunds, HMAC-signed webhooks).

Importing this module is cheap: the Adyen SDK is imported only when a refund is sent.
"""

from __future__ import annotations

from refundkit import GatewayRegistry, hookimpl

from ._cards import card_from_additional_data, card_from_notification, card_from_payment_response
from ._gateway import (
    ADYEN_CAPABILITIES,
    ADYEN_EXPONENTS,
    STATUS_TABLE,
    AdyenGateway,
    server_error_body,
)
from ._scrub import scrub
from ._webhooks import OTHER_EVENTS, StatusOutcome, sign_notification_item

__version__ = "0.1.0"

__all__ = [
    "ADYEN_CAPABILITIES",
    "ADYEN_EXPONENTS",
    "OTHER_EVENTS",
    "STATUS_TABLE",
    "AdyenGateway",
    "StatusOutcome",
    "card_from_additional_data",
    "card_from_notification",
    "card_from_payment_response",
    "refundkit_register_gateways",
    "scrub",
    "server_error_body",
    "sign_notification_item",
]


@hookimpl
def refundkit_register_gateways(register: GatewayRegistry) -> None:
    register(AdyenGateway)

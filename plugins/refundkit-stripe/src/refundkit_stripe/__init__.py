"""refundkit gateway plugin for Stripe: refunds of charges and payment intents.

Loading this module (the ``refundkit`` entry point ``stripe``) does not import the Stripe SDK;
the gateway imports it on its first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refundkit import hookimpl

from ._gateway import (
    METADATA_KEY,
    STATUS_TABLE,
    StatusOutcome,
    StripeGateway,
    refund_status,
    server_error_body,
)

if TYPE_CHECKING:
    from refundkit import GatewayRegistry

__version__ = "0.1.0"

__all__ = [
    "METADATA_KEY",
    "STATUS_TABLE",
    "StatusOutcome",
    "StripeGateway",
    "refund_status",
    "server_error_body",
]


@hookimpl
def refundkit_register_gateways(register: GatewayRegistry) -> None:
    register(StripeGateway)

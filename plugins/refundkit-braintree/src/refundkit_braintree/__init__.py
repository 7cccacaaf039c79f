"""refundkit gateway plugin for Braintree (gateway name ``braintree``).

Importing this module is cheap: the ``braintree`` SDK is imported only when a gateway is
configured and used. See ``docs/braintree.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refundkit import hookimpl

from ._errors import server_error_body
from ._gateway import STATUS_TABLE, BraintreeGateway, StatusOutcome
from ._scrub import scrub

if TYPE_CHECKING:
    from refundkit import GatewayRegistry

__version__ = "0.1.0"

__all__ = [
    "STATUS_TABLE",
    "BraintreeGateway",
    "StatusOutcome",
    "refundkit_register_gateways",
    "scrub",
    "server_error_body",
]


@hookimpl
def refundkit_register_gateways(register: GatewayRegistry) -> None:
    """Announce the Braintree gateway (loaded through the ``refundkit`` entry point)."""
    register(BraintreeGateway)

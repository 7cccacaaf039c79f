"""refundkit gateway plugin for Braintree (gateway name ``braintree``).

Importing this module is cheap: the ``braintree`` SDK is imported only when a gateway is
configured and used. See ``docs/braintree.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refundkit import hookimpl

from ._gateway import BraintreeGateway
from ._scrub import scrub

if TYPE_CHECKING:
    from refundkit import GatewayRegistry

__version__ = "0.1.0"

__all__ = ["BraintreeGateway", "refundkit_register_gateways", "scrub"]


@hookimpl
def refundkit_register_gateways(register: GatewayRegistry) -> None:
    """Announce the Braintree gateway (loaded through the ``refundkit`` entry point)."""
    register(BraintreeGateway)

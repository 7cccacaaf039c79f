"""The built-in offline ``sandbox`` gateway: a fake remote gateway with fault injection.

It keeps its state (charges, refunds, idempotency keys, scripted outcomes) in its OWN SQLite
file, never in the kit's store, so that many processes can share one sandbox and a test can
script what another process's kit will see. Configuration::

    {"path": "sandbox.db",                      # required; ":memory:" works for one process
     "webhook_secret": "sandbox-webhook-secret",  # signs the webhooks it produces
     "clock": lambda: datetime.now(UTC)}          # aware UTC "now" (idempotency window, webhooks)

What a refund does is decided, in order, by the next scripted outcome for the charge
(``script(..., charge=...)``), the next global scripted outcome (``script(...)``), then the
cents of the amount (``amount % 100``): 91 decline, 92 pending then succeeded, 93 pending then
failed, 94 timeout after applying, 95 timeout before applying, 96 rate limited, 97 unavailable;
any other amount succeeds. ``script_http_error`` queues an HTTP error answer instead (a 5xx,
say, with any body, made before it was answered or not), which ``http_error`` reads the way
a plugin reads its SDK's errors: the status first.

The package: ``_gateway`` (the Gateway methods), ``_books`` (its SQLite file), ``_controls``
(what tests and the demo do to the remote side) and ``_signing`` (its webhooks' signatures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...hookspecs import hookimpl
from ._books import REFUND_STATUSES, STATUSES
from ._controls import OUTCOMES, PENDING_FAILURE_CODE, REVERSAL_CODE
from ._gateway import DEFAULT_CARD, ERROR_CODES, IDEMPOTENCY_WINDOW, MAGIC_CENTS, SandboxGateway
from ._signing import DEFAULT_WEBHOOK_SECRET, SIGNATURE_HEADER, WEBHOOK_TOLERANCE_SECONDS

if TYPE_CHECKING:
    from ..._registry import GatewayRegistry

# Reprs and the registry's "two gateways are named ..." message name the class where users
# import it from, as they did when the sandbox was one module.
SandboxGateway.__module__ = __name__

__all__ = [
    "DEFAULT_CARD",
    "DEFAULT_WEBHOOK_SECRET",
    "ERROR_CODES",
    "IDEMPOTENCY_WINDOW",
    "MAGIC_CENTS",
    "OUTCOMES",
    "PENDING_FAILURE_CODE",
    "REFUND_STATUSES",
    "REVERSAL_CODE",
    "SIGNATURE_HEADER",
    "STATUSES",
    "WEBHOOK_TOLERANCE_SECONDS",
    "SandboxGateway",
    "refundkit_register_gateways",
]


@hookimpl
def refundkit_register_gateways(register: GatewayRegistry) -> None:
    """Announce the sandbox gateway (the kit loads this module as a built-in plugin)."""
    register(SandboxGateway)

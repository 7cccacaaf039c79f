"""Inbound gateway webhooks: verified by the gateway's plugin, applied through the one
bookkeeping path, so duplicates and stale updates change nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .. import _store as st
from .._errors import (
    ConfigurationError,
    GatewayError,
    StoreUnavailable,
    WebhookUnprocessable,
    WebhookVerificationError,
)
from .._gateway import Gateway, GatewayRefundResult, GatewayRefundUpdate
from .._model import Refund
from . import outcomes, payments
from ._runtime import Runtime

log = logging.getLogger("refundkit")


def handle(rt: Runtime, gateway: str, headers: Mapping[str, str], body: bytes) -> list[Refund]:
    """Verify and apply a gateway's webhook; the refunds it moved (or found already moved)."""
    gw = rt.gateway(gateway)
    applied: list[Refund] = []
    for update in _parse(gw, headers, body):
        refund = _target(rt, gateway, update)
        if refund is None:
            log.warning(
                "webhook from %s for a refund refundkit does not know: %s",
                gateway,
                update.gateway_refund_id or update.refund_id,
            )
            continue
        payment = payments.get(rt, refund.payment_id)
        result = GatewayRefundResult(
            update.status, update.gateway_refund_id, update.amount, update.failure_code
        )
        applied.append(outcomes.apply_result(rt, refund, payment, result))
    return applied


#: What ``parse_webhook`` may raise as it is: a refusal of the delivery (not authentic), or a
#: fault on our side or the gateway's that a retry may cure.
_PASS_THROUGH = (
    WebhookVerificationError,
    WebhookUnprocessable,
    ConfigurationError,
    GatewayError,
    StoreUnavailable,
)


def _parse(gw: Gateway, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
    """The plugin's updates. A plugin verifies the signature before it reads the event (and
    refuses a bad one with ``WebhookVerificationError``), so anything else it raises is about
    an authentic body it cannot read: ``WebhookUnprocessable``, which no retry cures."""
    try:
        return gw.parse_webhook(headers, body)
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        what = " ".join(str(exc).split())[:200]
        raise WebhookUnprocessable(
            f"the {gw.name} webhook is signed but could not be read ({type(exc).__name__}: {what})"
        ) from exc


def _target(rt: Runtime, gateway: str, update: GatewayRefundUpdate) -> Refund | None:
    with rt.store.read() as tx:
        if update.refund_id:
            refund = st.get_refund(tx, update.refund_id)
            if refund is not None and refund.gateway == gateway:
                return refund if _same_gateway_refund(refund, update) else None
        if update.gateway_refund_id:
            return st.refund_by_gateway_id(tx, gateway, update.gateway_refund_id)
    return None


def _same_gateway_refund(refund: Refund, update: GatewayRefundUpdate) -> bool:
    """An update names our refund but another gateway refund: money may have moved twice.

    Applying it would let, say, a failure of that other refund reverse ours and reopen the
    balance. It is left for ``reconcile``, which imports a refund made outside refundkit.
    """
    theirs, ours = update.gateway_refund_id, refund.gateway_refund_id
    if theirs is None or ours is None or theirs == ours:
        return True
    log.warning(
        "webhook names refund %s but gateway refund %s, not %s: not applied; "
        "run reconcile to import it",
        refund.id,
        theirs,
        ours,
    )
    return False

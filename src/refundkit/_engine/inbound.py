"""Inbound gateway webhooks: verified by the gateway's plugin, applied through the one
bookkeeping path, so duplicates and stale updates change nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .. import _store as st
from .._gateway import GatewayRefundResult, GatewayRefundUpdate
from .._model import Refund
from . import outcomes, payments
from ._runtime import Runtime

log = logging.getLogger("refundkit")


def handle(rt: Runtime, gateway: str, headers: Mapping[str, str], body: bytes) -> list[Refund]:
    """Verify and apply a gateway's webhook; the refunds it moved (or found already moved)."""
    gw = rt.gateway(gateway)
    applied: list[Refund] = []
    for update in gw.parse_webhook(headers, body):
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

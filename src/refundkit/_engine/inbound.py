"""Inbound gateway webhooks: verified by the gateway's plugin, applied through the one
bookkeeping path, so that whatever order they arrive in they converge on the gateway's truth.

An update says the state the gateway holds the refund in now, and is booked as that state
(``outcomes.apply_result``; ``TRANSITIONS`` refuses moves backwards, so duplicates and stale
updates change nothing). An update that *contradicts* what the kit holds (the money went one
way in the kit and the other way in the report) is checked first: where the gateway can be
asked (``capabilities.lookup``) the kit looks the refund up and books that answer instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .. import _store as st
from .._errors import (
    CardDataRefused,
    ConfigurationError,
    GatewayError,
    StoreUnavailable,
    WebhookUnprocessable,
    WebhookVerificationError,
)
from .._gateway import Gateway, GatewayRefundResult, GatewayRefundStatus, GatewayRefundUpdate
from .._model import Refund, RefundStatus
from . import outcomes, payments, recovery
from ._runtime import Runtime

log = logging.getLogger("refundkit")
S = RefundStatus

#: Where the kit holds a refund's money (out: paid, or on its way; back: never paid or
#: returned) against where a report puts it. A report across the line is a contradiction.
_MONEY_BACK: frozenset[RefundStatus] = frozenset({S.FAILED, S.REVERSED})
_REPORTS_OUT: frozenset[str] = frozenset({"succeeded", "pending"})


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
        applied.append(apply_update(rt, gw, refund, update))
    return applied


def contradicts(held: RefundStatus, reported: GatewayRefundStatus) -> bool:
    """Does a report put the money on the other side from where the kit holds it?

    ``succeeded`` or ``pending`` for a refund held failed or reversed (the money is back), and
    ``failed`` for one held succeeded (paid out). Everything else is progress, a duplicate or
    old news, which ``TRANSITIONS`` sorts out: ``reversed`` after success moves forward,
    ``pending`` after success and anything after ``manual_review`` or in flight is booked as
    the move it allows.
    """
    if held in _MONEY_BACK:
        return reported in _REPORTS_OUT
    return held is S.SUCCEEDED and reported == "failed"


def apply_update(rt: Runtime, gw: Gateway, refund: Refund, update: GatewayRefundUpdate) -> Refund:
    """Book one update about ``refund``, or (for a contradiction) what a lookup says instead.

    A lookup that fails raises (nothing is booked; the gateway delivers the webhook again),
    and one that finds nothing books nothing.
    """
    payment = payments.get(rt, refund.payment_id)
    result = GatewayRefundResult(
        update.status, update.gateway_refund_id, update.amount, update.failure_code
    )
    if contradicts(refund.status, update.status) and gw.capabilities.lookup:
        found = gw.lookup_refund(recovery.request_for(rt, refund, payment))
        if found is None:
            log.warning(
                "webhook says refund %s is %s, refundkit holds it %s, and %s does not know"
                " it: nothing booked; run reconcile",
                refund.id,
                update.status,
                refund.status,
                gw.name,
            )
            return refund
        _warn_if_still_contradicted(gw, refund, found)
        result = found
    return outcomes.apply_result(rt, refund, payment, result)


def _warn_if_still_contradicted(gw: Gateway, refund: Refund, found: GatewayRefundResult) -> None:
    # The gateway itself says the money went out while the kit released it: a failed refund is
    # never revived here (its amount may be refunded again already); reconcile flags it.
    if refund.status in _MONEY_BACK and found.status in _REPORTS_OUT:
        log.warning(
            "%s says refund %s is %s, but refundkit holds it %s: not revived; run reconcile",
            gw.name,
            refund.id,
            found.status,
            refund.status,
        )


#: What ``parse_webhook`` may raise as it is: a refusal of the delivery (not authentic), or a
#: fault on our side or the gateway's that a retry may cure.
_PASS_THROUGH = (
    CardDataRefused,  # refused (400) before anything is applied, never recorded
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

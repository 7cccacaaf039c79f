"""Manual review: a person decides a refund the machines could not, checked against the
gateway first where it can be asked."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .. import _store as st
from .._errors import GatewayDisagrees, InvalidInput, ResolutionRefused
from .._gateway import GatewayRefundResult
from .._model import Payment, Refund, RefundStatus, check_id, iso
from .._validate import check_text, need
from . import payments, recovery, refunds
from ._runtime import Runtime
from .transitions import Transition, attempt

S = RefundStatus
DECISIONS = ("succeeded", "failed")


def resolve(
    rt: Runtime,
    refund_id: str,
    status: str,
    *,
    actor: str,
    note: str,
    gateway_refund_id: str | None,
    force: bool,
) -> Refund:
    """Book a person's decision (``succeeded`` or ``failed``) on a refund in manual review.

    The check that it is still in manual review and the move are one conditional update under
    the payment's lock: if a webhook or recovery settled it meanwhile, ``ResolutionRefused``
    and nothing is written. A decision is never turned into another move (a reversal)."""
    refund = refunds.get(rt, refund_id)
    if status not in DECISIONS:
        raise InvalidInput("a refund in manual review is resolved as succeeded or failed")
    actor = need(check_text(actor, "actor"), "actor")
    note = need(check_text(note, "note"), "note")
    if gateway_refund_id is not None:
        check_id(gateway_refund_id, "gateway refund id")
    if refund.status is not S.MANUAL_REVIEW:
        raise ResolutionRefused(
            f"refund {refund.id} is {refund.status}, not in manual review: only a refund in "
            "manual review is decided by a person"
        )
    payment = payments.get(rt, refund.payment_id)
    checked, seen = (False, None) if force else gateway_view(rt, refund, payment)
    _check_agrees(refund, status, checked, seen)
    grid = gateway_refund_id or (seen.gateway_refund_id if seen else None)

    def record(tx: st.Tx, now: datetime) -> Mapping[str, Any]:
        st.insert_resolution(tx, refund.id, status, actor, note, now, checked=checked)
        return {"resolution": {"by": actor, "note": note, "at": iso(now), "status": status}}

    to = S(status)
    failed = to is S.FAILED
    decision = Transition(
        to,
        gateway_refund_id=grid,
        failure_code="resolved_by_person" if failed else None,
        failure_message=f"{actor}: {note}" if failed else None,
        also=record,
        froms=(S.MANUAL_REVIEW,),
    )
    rt.checkpoint("decided")  # checked, not written yet: a webhook may come first
    moved, decided = attempt(rt, refund, payment, decision)
    if not decided:
        raise ResolutionRefused(
            f"refund {refund.id} moved to {moved.status} meanwhile (not by this decision); "
            "nothing was changed"
        )
    return moved


def _check_agrees(
    refund: Refund, status: str, checked: bool, seen: GatewayRefundResult | None
) -> None:
    """Nothing is written when the gateway says otherwise (a refund it does not know may be
    decided failed)."""
    says = seen.status if seen is not None else "unknown to it" if checked else status
    if says != status and not (says == "unknown to it" and status == "failed"):
        raise GatewayDisagrees(
            f"{refund.gateway} says refund {refund.id} is {says}"
            + (f" (gateway refund {seen.gateway_refund_id})" if seen else "")
            + f", not {status}; nothing was changed. Decide with force only if the "
            "gateway is wrong."
        )


def resolution(rt: Runtime, refund_id: str) -> dict[str, Any] | None:
    """The person's decision about a refund that was in manual review, if any."""
    with rt.store.read() as tx:
        return st.get_resolution(tx, check_id(refund_id, "refund id"))


def gateway_view(
    rt: Runtime, refund: Refund, payment: Payment
) -> tuple[bool, GatewayRefundResult | None]:
    """(could the gateway be asked, what it says about ``refund``: None if it does not know
    it). Gateway errors are raised."""
    gw = rt.gateway(refund.gateway)
    if refund.imported or not gw.capabilities.lookup:
        return recovery.listed(gw, payment, refund)
    return True, gw.lookup_refund(recovery.request_for(rt, refund, payment))

"""Reconciliation applied: each payment's refunds at its gateway against the local record,
through the one bookkeeping path (the comparison itself is pure: ``refundkit._reconcile``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from .. import _reconcile as drift
from .. import _store as st
from .._errors import RefundkitError
from .._events import REFUND_EXTERNAL, new_event_id, refund_event
from .._gateway import GatewayRefund, GatewayRefundResult
from .._ledger import refund_journal
from .._model import Destination, Payment, Refund, RefundStatus, new_id
from .._money import Money
from .._reconcile import (
    IMPORTABLE,
    Finding,
    Found,
    Pair,
    ReconcileReport,
    disagree,
    duplicate,
    external_refund,
    flag,
    flag_changes,
    mismatch,
    missing,
)
from .._validate import check_since
from . import outbox, outcomes, payments, refunds
from ._runtime import Runtime

S = RefundStatus


def reconcile(
    rt: Runtime, payment_id: str | None, gateway: str | None, since: datetime | None
) -> ReconcileReport:
    """Compare one payment, a gateway's payments, or those captured ``since``."""
    if payment_id is not None:
        payments.get(rt, payment_id)  # PaymentNotFound for a mistyped id
    if gateway is not None:
        rt.plugins.gateways.get(gateway)  # unknown gateway: a typed error
    check_since(since)
    with rt.store.connect() as conn:
        picked = st.payments_to_reconcile(conn, payment_id=payment_id, gateway=gateway, since=since)
    findings: list[Finding] = []
    for payment in picked:
        findings.extend(_payment(rt, payment))
    outbox.dispatch(rt)
    return ReconcileReport(len(picked), tuple(findings))


def _payment(rt: Runtime, payment: Payment) -> list[Finding]:
    gw = rt.gateway(payment.gateway)
    try:
        remote_payment = gw.fetch_payment(payment.gateway_payment_id)
        listed = gw.list_refunds(payment.gateway_payment_id)
    except RefundkitError as exc:
        return [flag(payment, "gateway_error", f"could not read the gateway: {exc}")]
    if remote_payment.amount != payment.amount:
        return [
            flag(
                payment,
                "payment_mismatch",
                f"the gateway holds {remote_payment.amount} for this payment, "
                f"refundkit {payment.amount}; its refunds were not compared",
            )
        ]
    flags = flag_changes(payment, remote_payment)
    payment = payments.store_flags(rt, payment, remote_payment.settled, remote_payment.disputed)
    local = refunds.listing(rt, payment.id, None)
    if listed is None:
        return flags + _by_total(rt, payment, local, remote_payment.refunded)
    found = drift.compare(local, listed)
    out: list[Finding | None] = [*flags]
    out += [_pair(rt, payment, p) for p in found.pairs]
    out += [_import(rt, payment, gr) for gr in found.external]
    out += [duplicate(payment, p) for p in found.duplicates]
    out += [missing(payment, r) for r in found.missing]
    return [f for f in out if f is not None]


def _pair(rt: Runtime, payment: Payment, pair: Pair) -> Finding | None:
    local, remote = pair.local, pair.remote
    code = mismatch(pair)
    if code is None and local.status.value == remote.status:
        return None
    if code is not None and local.status is S.MANUAL_REVIEW:
        return None  # already with a person
    before = local.status
    reported = GatewayRefundResult(remote.status, remote.gateway_refund_id, remote.amount)
    moved = outcomes.apply_result(rt, local, payment, reported)
    found = Found(payment, local, remote)
    if code is not None:
        if moved.status is S.MANUAL_REVIEW:
            return found(code, "manual_review", disagree(local, remote))
        return found(code, "flagged", disagree(local, remote) + f"; the refund is {before}")
    if moved.status.value == remote.status or (
        remote.status == "failed" and moved.status is S.REVERSED
    ):
        return found("status_changed", "resolved", f"{before} -> {moved.status} (gateway)")
    return found(
        "status_mismatch",
        "flagged",
        f"refundkit says {moved.status}, the gateway says {remote.status}",
    )


def _import(rt: Runtime, payment: Payment, remote: GatewayRefund) -> Finding | None:
    if remote.status not in IMPORTABLE:
        return None  # failed or reversed outside refundkit: no money moved
    found = Found(payment, None, remote)
    if remote.amount.currency != payment.amount.currency:
        return found(
            "currency_mismatch",
            "manual_review",
            f"a refund in {remote.amount.currency} on a {payment.amount.currency} payment",
        )
    now = rt.clock()
    with rt.store.write() as tx:
        if st.refund_by_gateway_id(tx, payment.gateway, remote.gateway_refund_id):
            return None  # another reconciler imported it meanwhile
        locked = st.get_payment(tx, payment.id, lock=True)
        assert locked is not None  # payments are never deleted
        why = _no_room(tx, locked, remote.amount)
        if why:
            return found("over_cap", "manual_review", why)
        refund = external_refund(locked, remote, now)
        _write_import(tx, refund, locked, now)
    made = found("imported", "imported", "made at the gateway, not through refundkit")
    return attrs.evolve(made, refund_id=refund.id)


def _by_total(
    rt: Runtime, payment: Payment, local: Sequence[Refund], refunded: Money
) -> list[Finding]:
    """A gateway that cannot list refunds: compare its refunded total with ours."""
    ours = payment.refunded or Money.zero(payment.amount.currency)
    if refunded.currency != ours.currency:
        return [flag(payment, "currency_mismatch", f"the gateway refunded {refunded}")]
    diff = refunded.amount - ours.amount
    if diff == 0:
        return []
    if diff < 0 or any(r.status.in_flight for r in local):
        return [
            flag(
                payment,
                "total_mismatch",
                f"the gateway refunded {refunded}, refundkit {ours}; "
                + ("run recover first" if diff > 0 else "a local refund is not at the gateway"),
            )
        ]
    gone = Money(diff, ours.currency)
    remote = GatewayRefund(gateway_refund_id=new_id("total-"), amount=gone, status="succeeded")
    return [f for f in [_import(rt, payment, remote)] if f is not None]


def _no_room(tx: st.Tx, payment: Payment, amount: Money) -> str | None:
    """Why the refundable balance cannot take an outside refund of ``amount``, or None."""
    held = payment.held.amount if payment.held else 0
    credited = payment.credited.amount if payment.credited else 0
    room = payment.amount.amount - held - credited
    if amount.amount > room:
        return (
            f"an outside refund of {amount} exceeds what refundkit still holds refundable "
            f"({Money(room, amount.currency)}); a person must decide"
        )
    if payment.destination is Destination.CUSTOMER_BALANCE:
        lot = st.lot_for_payment(tx, payment.id)
        if lot is not None and lot.remaining.amount < amount.amount:
            return (
                f"an outside refund of {amount}, but only "
                f"{lot.remaining} of the top-up is still in the "
                "customer balance; a person must decide"
            )
    return None


def _write_import(tx: st.Tx, refund: Refund, payment: Payment, now: datetime) -> None:
    """The refund, its hold, its lot movement, journal and event: one transaction."""
    amt = refund.amount.amount
    lot = None
    if payment.destination is Destination.CUSTOMER_BALANCE:
        lot = st.lot_for_payment(tx, payment.id)
        if lot is not None:
            refund = attrs.evolve(refund, lot_id=lot.id)
    st.insert_refund(tx, refund, f"external:{refund.gateway_refund_id}", void=False)
    st.update_refund(tx, refund.id, {"gateway_refund_id": refund.gateway_refund_id})
    st.add_held(tx, payment.id, amt)
    if lot is not None:
        st.move_lot(tx, lot.id, -amt, kind="refund", now=now, refund_id=refund.id)
    if refund.status is S.SUCCEEDED:
        refunded = st.add_refunded(tx, payment.id, amt)
        payment = attrs.evolve(payment, refunded=Money(refunded, refund.amount.currency))
        st.insert_journal(tx, refund_journal(refund, payment, now, lot is not None))
    event = refund_event(REFUND_EXTERNAL, refund, payment, now, event_id=new_event_id())
    st.insert_event(tx, event, refund.id)

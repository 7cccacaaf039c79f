"""The refund flow, read top to bottom: ``run`` reserves, then submits (R-2.1).

1. *reserve* — payment row locked; idempotency check; quote from current state; the refund is
   written ``reserved`` with a gateway key derived from its id; its amount is held at once.
   It returns a ``Reservation``, a ``Replay`` of the same key, or what must happen first.
2. *submit* — marked ``submitted`` (a conditional move from ``reserved``: the fence), then the
   gateway is called outside any transaction, only if that move committed.
3. *confirm* — the outcome (``outcomes``) is applied through ``transitions.apply``: a
   conditional update with its journal and outbox event in the same transaction.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import attrs

from .. import _store as st
from .._balances import BalanceLot
from .._errors import (
    GatewayDeclined,
    GatewayError,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyConflict,
    PaymentNotFound,
    RefundkitError,
    RefundNotFound,
    RefundReleased,
    RequestInProgress,
)
from .._gateway import Gateway, GatewayRefundRequest, GatewayRefundResult
from .._model import Payment, Refund, RefundStatus, check_id, new_id
from .._money import Money
from .._policy import check_amount, check_request
from .._policy import quote as make_quote
from . import facts, outcomes, payments, recovery
from ._runtime import Runtime
from .gateways import refund_request
from .transitions import SOURCES, apply

log = logging.getLogger("refundkit")
S = RefundStatus


@attrs.frozen
class Ask:
    """One refund as the caller asked for it: what its idempotency key stands for."""

    payment_id: str
    amount: Money | None
    reason: str | None
    key: str | None
    actor: str | None
    lot_id: str | None = None
    #: A plan's leg keeps its key even when the gateway was unreachable (see planning).
    keep_key: bool = False

    @property
    def fingerprint(self) -> str:
        amount = self.amount
        return "|".join(
            [
                self.payment_id,
                str(amount.amount) if amount else "default",
                amount.currency if amount else "",
                self.reason or "",
                self.lot_id or "",
            ]
        )


@attrs.frozen
class Reservation:
    """A refund written ``reserved`` with its amount held: ready to submit."""

    refund: Refund
    payment: Payment
    void: bool
    keep_key: bool


@attrs.frozen
class Replay:
    """The same key was used before: its refund, as it stands."""

    refund: Refund


@attrs.frozen
class NeedsRecovery:
    """Refunds in doubt on this payment must be looked up first (R-2.9)."""


@attrs.frozen
class NeedsRefresh:
    """The payment is stored unsettled: ask its gateway whether it has settled since."""


Reserved = Reservation | Replay | NeedsRecovery | NeedsRefresh


def run(rt: Runtime, ask: Ask) -> Refund:
    """Refund ``ask`` exactly once: reserve, do what must come first, submit."""
    recovered = refreshed = False
    while True:
        match reserve(rt, ask, ignore_unknown=recovered, refreshed=refreshed):
            case Reservation() as reservation:
                return submit(rt, reservation)
            case Replay(refund):
                return refund
            case NeedsRecovery():
                # Whatever stays unknown after the lookup still counts against the cap.
                recovery.look_up(rt, ask.payment_id)
                recovered = True
            case NeedsRefresh():
                payments.refresh_unsettled(rt, ask.payment_id)
                refreshed = True


def get(rt: Runtime, refund_id: str) -> Refund:
    with rt.store.read() as tx:
        refund = st.get_refund(tx, check_id(refund_id, "refund id"))
    if refund is None:
        raise RefundNotFound(f"no refund {refund_id!r}")
    return refund


def listing(rt: Runtime, payment_id: str | None, status: str | None) -> list[Refund]:
    statuses = [RefundStatus(status).value] if status else None
    with rt.store.connect() as conn:
        return st.list_refunds(conn, payment_id=payment_id, statuses=statuses)


def reserve(rt: Runtime, ask: Ask, *, ignore_unknown: bool, refreshed: bool) -> Reserved:
    """Transaction 1: the refund written ``reserved`` and its amount held, or a replay, or
    what must happen first. Refused requests never reach recovery or a gateway."""
    try:
        with rt.store.write() as tx:
            found = st.refund_by_key(tx, ask.key) if ask.key is not None else None
            if found is not None:
                return Replay(replay(rt, tx, *found, ask.fingerprint))
            reserved = _reserve_in(rt, tx, ask, ignore_unknown=ignore_unknown, refreshed=refreshed)
    except rt.store.integrity_errors:
        # A concurrent request with the same key won the insert: replay it.
        if ask.key is None:
            raise
        with rt.store.read() as tx:
            found = st.refund_by_key(tx, ask.key)
            if found is None:
                raise
            return Replay(replay(rt, tx, *found, ask.fingerprint))
    if isinstance(reserved, Reservation):
        rt.checkpoint("reserved")
    return reserved


def _reserve_in(
    rt: Runtime, tx: st.Tx, ask: Ask, *, ignore_unknown: bool, refreshed: bool
) -> Reserved:
    payment = st.get_payment(tx, ask.payment_id, lock=True)
    if payment is None:
        raise PaymentNotFound(f"no payment {ask.payment_id!r}")
    if ask.amount is not None:
        check_request(payment.amount.currency, ask.amount)
    lot = facts.source_lot(tx, payment, ask.lot_id)
    if not payment.settled and not refreshed:
        return NeedsRefresh()
    ctx, unknown = facts.context(rt, tx, payment, lot)
    if unknown and not ignore_unknown:
        return NeedsRecovery()
    q = make_quote(ctx, rt.rules)
    amount = ask.amount if ask.amount is not None else q.default_amount
    check_amount(q, amount)
    # Unrepresentable amounts are refused before anything is written.
    rt.gateway(payment.gateway).to_gateway_amount(amount)
    refund = new_refund(payment, amount, ask.reason, ask.actor, ask.key, rt.clock(), lot)
    # Stamped by the database's clock, the one recovery judges a stalled worker by.
    stamp = rt.db_stamp()
    if stamp is not None:
        refund = attrs.evolve(refund, updated_at=stamp)
    void = q.full_only and not payment.settled
    st.insert_refund(tx, refund, ask.fingerprint, void=void, stamp_by_db=stamp is None)
    _hold(tx, refund, payment, lot)
    return Reservation(refund, payment, void, ask.keep_key)


def _hold(tx: st.Tx, refund: Refund, payment: Payment, lot: BalanceLot | None) -> None:
    """Hold the refund's amount on its payment (and take it out of its lot) at once."""
    amt = refund.amount.amount
    if lot is not None and lot.kind == "credit":
        # Credit goes back to the card: credited becomes held, the lot shrinks.
        st.add_credited(tx, payment.id, -amt, held_delta=amt)
    else:
        st.add_held(tx, payment.id, amt)
    if lot is not None:
        st.move_lot(tx, lot.id, -amt, kind="refund", now=refund.created_at, refund_id=refund.id)


def replay(
    rt: Runtime, tx: st.Tx, refund: Refund, stored_fingerprint: str, fingerprint: str
) -> Refund:
    """Same key: the stored outcome, or a conflict if the parameters differ (R-1.2, R-1.3)."""
    if stored_fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"idempotency key {refund.idempotency_key!r} was used for a different refund "
            f"({refund.amount} of {refund.payment_id}); use a new key"
        )
    if refund.status in (S.RESERVED, S.SUBMITTED) and not rt.in_flight_stale(
        refund.updated_at, rt.db_now(tx)
    ):
        raise RequestInProgress(f"refund {refund.id} is still being executed; retry shortly")
    if refund.status is S.FAILED and refund.failure_code == recovery.NOT_SUBMITTED:
        raise released(refund)
    if refund.status is S.FAILED:
        raise GatewayDeclined(
            refund.failure_message or "the gateway declined this refund",
            gateway_code=refund.failure_code,
            refund=refund,
        )
    return refund


def submit(rt: Runtime, reservation: Reservation) -> Refund:
    """Transactions 2 and 3: mark it submitted, call the gateway, apply what it said.

    The mark is the fence (DESIGN "Fencing"): a conditional move from ``reserved``, committed
    durably before the call. If recovery or a person moved the refund first (this worker
    stalled), the gateway is not called; the refund is answered as it now stands."""
    refund, payment = reservation.refund, reservation.payment
    with rt.store.write() as tx:
        submitted = {"status": S.SUBMITTED.value, "updated_at": rt.db_stamp()}
        fenced = not st.transition_refund(tx, refund.id, SOURCES[S.SUBMITTED], submitted)
        now = st.get_refund(tx, refund.id) if fenced else None
    if now is not None:
        return _fenced_off(now)
    refund = attrs.evolve(refund, status=S.SUBMITTED)
    rt.checkpoint("submitted")
    gw = rt.gateway(payment.gateway)
    request = refund_request(refund, payment, reservation.void)
    try:
        result = call_gateway(rt, gw, request)
    except Exception as exc:
        rt.checkpoint("gateway_returned")
        if not isinstance(exc, RefundkitError):
            log.exception("gateway %s raised an unexpected error", gw.name)
        moved = apply(
            rt, refund, payment, outcomes.of_error(rt, exc, keep_key=reservation.keep_key)
        )
        return _answer(exc, moved, gw)
    rt.checkpoint("gateway_returned")
    return outcomes.apply_result(rt, refund, payment, result)


def _fenced_off(refund: Refund) -> Refund:
    """Someone moved the refund off ``reserved`` before this worker marked it: it was never
    sent by this worker and never will be. Released: ``RefundReleased``; otherwise (recovery
    holds it as unknown and settles it, with the same gateway key) the refund as it stands."""
    log.warning("refund %s is %s before its worker sent it: not sent", refund.id, refund.status)
    if refund.status in (S.FAILED, S.REVERSED):
        raise released(refund)
    return refund


def released(refund: Refund) -> RefundReleased:
    return RefundReleased(
        f"refund {refund.id} was released before it reached the gateway "
        f"({refund.failure_message or refund.status}); nothing was refunded: refund again "
        "with a new idempotency key",
        gateway_code=refund.failure_code,
        refund=refund,
    )


def _answer(exc: Exception, refund: Refund, gw: Gateway) -> Refund:
    """What the caller gets after a failed call was applied: a timeout returns the refund
    held as unknown; a gateway error carries the recorded refund (``error.refund``)."""
    if isinstance(exc, GatewayTimeout):
        return refund
    if isinstance(exc, GatewayError):
        exc.refund = refund
        raise exc
    if isinstance(exc, RefundkitError):
        raise exc
    raise GatewayError(
        f"gateway {gw.name} failed unexpectedly; refund {refund.id} is unknown "
        "until recover() looks it up",
        refund=refund,
    ) from exc


def call_gateway(rt: Runtime, gw: Gateway, request: GatewayRefundRequest) -> GatewayRefundResult:
    """Call the gateway; retry (same key) only errors that certainly had no effect."""
    for attempt in range(rt.submit_retries + 1):
        try:
            return gw.refund(request)
        except (GatewayRateLimited, GatewayUnavailable):
            if attempt == rt.submit_retries:
                raise
            time.sleep(rt.retry_backoff * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def new_refund(
    payment: Payment,
    amount: Money,
    reason: str | None,
    actor: str | None,
    key: str | None,
    now: datetime,
    lot: BalanceLot | None = None,
) -> Refund:
    """A refund of ``payment`` as reserved, before it is written."""
    refund_id = new_id("rf_")
    return Refund(
        id=refund_id,
        payment_id=payment.id,
        amount=amount,
        status=S.RESERVED,
        reason=reason,
        actor=actor,
        idempotency_key=key,
        gateway=payment.gateway,
        # Derived from the refund id and committed before the call.
        gateway_idempotency_key=f"refundkit-{refund_id}",
        gateway_refund_id=None,
        created_at=now,
        updated_at=now,
        lot_id=lot.id if lot is not None else None,
    )

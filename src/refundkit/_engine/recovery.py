"""Recovery: refunds whose outcome is not known are looked up at their gateway on a schedule.

Each worker claims the due ones first (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several
recovery workers never look the same refund up twice for one attempt (R-2.6). A refund is
re-sent (with its original key) only when the lookup finds nothing and the gateway's
idempotency window still covers the key; after the last attempt it goes to ``manual_review``.

A ``reserved`` or ``submitted`` refund is looked at only once its worker is taken for dead: not
touched for ``in_flight_timeout`` by the database's clock (never this machine's against
another's). A ``reserved`` one is then released by a move from ``reserved`` only, so a worker
that was merely stalled finds it moved and never sends it (the fence, ``refunds.submit``).

The look-ups made on the way to a new refund (``look_up``, R-2.9) use no attempt of the
schedule: only scheduled passes (and ``recover(force=True)``, a person's) count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import attrs

from .. import _store as st
from .._errors import GatewayDeclined, GatewayTimeout, RefundkitError
from .._gateway import Gateway, GatewayRefundRequest, GatewayRefundResult
from .._model import IN_FLIGHT_STATUSES, Payment, Refund, RefundStatus
from . import outbox, outcomes, payments
from ._runtime import Runtime
from .gateways import refund_request
from .transitions import Transition, apply

S = RefundStatus
#: What a look-up that settled nothing does: ``schedule_retry``, or nothing (``_no_attempt``).
Retry = Callable[[Runtime, Refund, Payment, str], Refund]


@attrs.frozen
class RecoveryReport:
    """What one ``recover()`` pass did, refund by refund."""

    resolved: tuple[Refund, ...] = ()
    still_unknown: tuple[Refund, ...] = ()
    manual_review: tuple[Refund, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolved": [r.to_dict() for r in self.resolved],
            "still_unknown": [r.to_dict() for r in self.still_unknown],
            "manual_review": [r.to_dict() for r in self.manual_review],
        }


#: The failure code of a ``reserved`` refund released because its worker was taken for dead.
NOT_SUBMITTED = "not_submitted"
#: That release: from ``reserved`` only (once ``submitted``, the worker may be sending it).
NEVER_SENT = Transition(
    S.FAILED,
    failure_code=NOT_SUBMITTED,
    failure_message="the refund never reached the gateway",
    froms=(S.RESERVED,),
)


def look_up(rt: Runtime, payment_id: str) -> RecoveryReport:
    """Every in-flight refund of a payment looked up before a new refund on it (R-2.9); these
    look-ups use no attempt of the refunds' schedules."""
    return recover(rt, payment_id, force=True, counts=False)


def recover(
    rt: Runtime, payment_id: str | None = None, *, force: bool = False, counts: bool = True
) -> RecoveryReport:
    """One pass over the due in-flight refunds (all of them with ``force``). With ``counts``
    each look-up that settles nothing is one attempt of the refund's schedule."""
    now = rt.clock()
    resolved: list[Refund] = []
    unknown: list[Refund] = []
    review: list[Refund] = []
    for refund in candidates(rt, payment_id, now, force=force):
        outcome = recover_one(rt, refund, now, counts=counts)
        if outcome.status is S.MANUAL_REVIEW:
            review.append(outcome)
        elif outcome.status.in_flight and outcome.status is not S.PENDING:
            unknown.append(outcome)
        elif outcome.status is not refund.status or outcome.status.final:
            resolved.append(outcome)
    outbox.dispatch(rt)
    return RecoveryReport(tuple(resolved), tuple(unknown), tuple(review))


def candidates(
    rt: Runtime, payment_id: str | None, now: datetime, *, force: bool
) -> Iterator[Refund]:
    if force:
        # Read them all first: the connection is back in the pool before any lookup.
        with rt.store.connect() as conn:
            listed = st.list_refunds(conn, payment_id=payment_id, statuses=IN_FLIGHT_STATUSES)
        yield from listed
        return
    seen: set[str] = set()
    while True:
        batch = [r for r in claim_due(rt, payment_id, now) if r.id not in seen]
        if not batch:
            return
        seen.update(r.id for r in batch)
        yield from batch


def claim_due(rt: Runtime, payment_id: str | None, now: datetime) -> list[Refund]:
    """Claim a batch of due refunds, leased for the in-flight timeout (R-2.6). Abandoned
    ``reserved``/``submitted`` ones by the database's clock, the one they were stamped with."""
    with rt.store.write() as tx:
        return st.claim_due(
            tx,
            now,
            rt.db_now(tx) - rt.in_flight_timeout,
            now + rt.in_flight_timeout,
            batch=rt.recovery_batch,
            payment_id=payment_id,
        )


def due(rt: Runtime) -> list[tuple[Refund, datetime]]:
    """Every in-flight refund with the time recovery will next look at it, soonest first."""
    with rt.store.connect() as conn:
        rows = st.in_flight_with_next_attempt(conn)
    out = []
    for refund, nxt in rows:
        if refund.status in (S.RESERVED, S.SUBMITTED):
            abandoned = refund.updated_at + rt.in_flight_timeout
            nxt = max(nxt, abandoned) if nxt else abandoned
        out.append((refund, nxt or refund.updated_at))
    return sorted(out, key=lambda pair: (pair[1], pair[0].id))


def recover_one(rt: Runtime, refund: Refund, now: datetime, *, counts: bool = True) -> Refund:
    payment = payments.get(rt, refund.payment_id)
    gw = rt.gateway(refund.gateway)
    retry = schedule_retry if counts else _no_attempt
    if refund.imported:
        return _recover_imported(rt, refund, payment, gw, retry)
    request = request_for(rt, refund, payment)
    try:
        found = gw.lookup_refund(request) if gw.capabilities.lookup else None
    except RefundkitError as exc:
        return retry(rt, refund, payment, f"lookup failed: {exc}")
    if found is not None:
        return settle_found(rt, refund, payment, found, retry)
    if not _given_up(rt, refund, now):
        return refund  # its worker may still be sending it: only a found result counts
    if refund.status is S.RESERVED:
        return apply(rt, refund, payment, NEVER_SENT)
    if refund.status is S.PENDING:
        return retry(rt, refund, payment, "pending refund not found by lookup")
    window = gw.capabilities.idempotency_window_hours
    if gw.capabilities.idempotency_keys and (
        window is None or now - refund.created_at < timedelta(hours=window)
    ):
        return _resend(rt, refund, payment, gw, request, retry)
    return retry(rt, refund, payment, "not found at the gateway")


def _given_up(rt: Runtime, refund: Refund, now: datetime) -> bool:
    """May recovery act on a refund the gateway does not know? A ``reserved``/``submitted``
    one only once its worker is taken for dead, by the database's clock; any other once it
    has rested for the in-flight timeout (no release follows from that)."""
    if refund.status in (S.RESERVED, S.SUBMITTED):
        with rt.store.read() as tx:
            db_now = rt.db_now(tx)
        return rt.in_flight_stale(refund.updated_at, db_now)
    return now - refund.updated_at >= rt.in_flight_timeout


def _resend(
    rt: Runtime,
    refund: Refund,
    payment: Payment,
    gw: Gateway,
    request: GatewayRefundRequest,
    retry: Retry,
) -> Refund:
    """Same key, inside the gateway's window: the gateway deduplicates it (R-1.4)."""
    try:
        result = gw.refund(request)
    except GatewayTimeout as exc:
        return retry(rt, refund, payment, str(exc))
    except GatewayDeclined as exc:
        declined = Transition(
            S.FAILED, failure_code=exc.gateway_code or exc.code, failure_message=str(exc)
        )
        return apply(rt, refund, payment, declined)
    except RefundkitError as exc:
        return retry(rt, refund, payment, str(exc))
    return outcomes.apply_result(rt, refund, payment, result)


def _recover_imported(
    rt: Runtime, refund: Refund, payment: Payment, gw: Gateway, retry: Retry
) -> Refund:
    """An imported refund never carried our id to the gateway, so ``lookup_refund`` cannot
    find it; the gateway's refund list can, by its gateway refund id. Without a list the next
    ``reconcile`` settles it. Never sent, so never re-sent."""
    try:
        listable, found = listed(gw, payment, refund)
    except RefundkitError as exc:
        return retry(rt, refund, payment, f"listing refunds failed: {exc}")
    if found is None:
        why = "imported refund not listed by the gateway" if listable else "run reconcile"
        return retry(rt, refund, payment, why)
    return settle_found(rt, refund, payment, found, retry)


def settle_found(
    rt: Runtime,
    refund: Refund,
    payment: Payment,
    found: GatewayRefundResult,
    retry: Retry,
) -> Refund:
    outcome = outcomes.apply_result(rt, refund, payment, found)
    if outcome.status is S.PENDING:
        # Each scheduled lookup that finds it still pending is one attempt, so a refund the
        # gateway never settles reaches manual_review instead of being looked up
        # forever; a later webhook still settles it from there.
        return retry(rt, outcome, payment, "still pending at the gateway")
    return outcome


def listed(
    gw: Gateway, payment: Payment, refund: Refund
) -> tuple[bool, GatewayRefundResult | None]:
    """``refund`` in the gateway's refund list, found by its gateway refund id: (could the
    list tell, what it says; None when it is not there). Gateway errors are raised."""
    listing = gw.list_refunds(payment.gateway_payment_id)
    ours = refund.gateway_refund_id
    if listing is None or ours is None:
        return False, None
    match = next((r for r in listing if r.gateway_refund_id == ours), None)
    if match is None:
        return True, None
    return True, GatewayRefundResult(match.status, match.gateway_refund_id, match.amount)


def request_for(rt: Runtime, refund: Refund, payment: Payment) -> GatewayRefundRequest:
    """The gateway request of a refund already recorded (a void keeps being a void)."""
    with rt.store.read() as tx:
        void = st.refund_is_void(tx, refund.id)
    return refund_request(refund, payment, void)


def _no_attempt(rt: Runtime, refund: Refund, payment: Payment, why: str) -> Refund:
    """A look-up on the way to a new refund that settled nothing: it changes nothing, and
    uses no attempt of the schedule (only scheduled passes do)."""
    return refund


def schedule_retry(rt: Runtime, refund: Refund, payment: Payment, why: str) -> Refund:
    """One more attempt used: look again later, or hand it to a person after the last."""
    attempts = refund.attempts + 1
    if attempts >= len(rt.retry_schedule):
        unresolved = Transition(
            S.MANUAL_REVIEW, failure_code="unresolved", failure_message=why, attempts=attempts
        )
        return apply(rt, refund, payment, unresolved)
    target = S.UNKNOWN if refund.status in (S.RESERVED, S.SUBMITTED) else refund.status
    nxt = rt.clock() + rt.retry_schedule[attempts]
    if target is not refund.status:
        later = Transition(
            target,
            failure_code="timeout",
            failure_message=why,
            next_attempt_at=nxt,
            attempts=attempts,
        )
        return apply(rt, refund, payment, later)
    with rt.store.write() as tx:
        st.update_refund(
            tx, refund.id, {"attempts": attempts, "next_attempt_at": nxt, "failure_message": why}
        )
    return attrs.evolve(refund, attempts=attempts, failure_message=why)

"""The one bookkeeping path: a refund moves to a new status with its balances, journal and
outbox event in the same transaction, once, however many paths (the refund itself, recovery,
a webhook, reconciliation, a person) report the same outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from .. import _store as st
from .._errors import RefundNotFound
from .._events import event_type_for, new_event_id, refund_event
from .._ledger import refund_journal, reversal_journal
from .._model import TRANSITIONS, Payment, Refund, RefundStatus
from .._money import Money
from . import outbox
from ._runtime import Runtime

log = logging.getLogger("refundkit")
S = RefundStatus

#: The allowed sources of each target, as the store matches them.
SOURCES = {to: tuple(s.value for s in froms) for to, froms in TRANSITIONS.items()}


@attrs.frozen
class Transition:
    """A move of a refund to ``to`` and what the move records."""

    to: RefundStatus
    gateway_refund_id: str | None = None
    # A refund that ends well forgets the failure (a timeout, say) that came before.
    failure_code: str | None = None
    failure_message: str | None = None
    #: Not applied at the gateway: the caller may retry with the same key later.
    forget_key: bool = False
    next_attempt_at: datetime | None = None
    attempts: int | None = None
    #: Writes more in the same transaction when the move happens, and returns what the
    #: event's ``data`` gains (a person's decision, say).
    also: Callable[[st.Tx, datetime], Mapping[str, Any]] | None = None
    #: Only from these states (some of those ``TRANSITIONS`` allows), e.g. recovery releases
    #: a refund only while it is still ``reserved``, a person decides only ``manual_review``.
    froms: tuple[RefundStatus, ...] | None = None
    #: A gateway's report that the refund failed: if it had succeeded meanwhile, the money
    #: came back (``reversed``). Nothing else (a person, recovery, a refused send) reverses.
    reverses: bool = False

    def __attrs_post_init__(self) -> None:
        if self.froms is not None and not set(self.froms) <= set(TRANSITIONS[self.to]):
            raise ValueError(f"no move to {self.to} from {self.froms}")

    @property
    def sources(self) -> tuple[str, ...]:
        """The states the store moves the refund from, as it matches them."""
        return SOURCES[self.to] if self.froms is None else tuple(s.value for s in self.froms)

    def columns(self, now: datetime) -> dict[str, Any]:
        values: dict[str, Any] = {"status": self.to.value, "updated_at": now}
        if self.gateway_refund_id:
            values["gateway_refund_id"] = self.gateway_refund_id
        values["failure_code"] = self.failure_code
        values["failure_message"] = self.failure_message
        if self.forget_key:
            values["idempotency_key"] = None
        values["next_attempt_at"] = self.next_attempt_at
        if self.attempts is not None:
            values["attempts"] = self.attempts
        return values

    def moved(self, refund: Refund, now: datetime) -> Refund:
        """``refund`` as it stands after the move."""
        return attrs.evolve(
            refund,
            status=self.to,
            updated_at=now,
            gateway_refund_id=self.gateway_refund_id or refund.gateway_refund_id,
            failure_code=self.failure_code,
            failure_message=self.failure_message,
            idempotency_key=None if self.forget_key else refund.idempotency_key,
        )


def apply(rt: Runtime, refund: Refund, payment: Payment, t: Transition) -> Refund:
    """Move ``refund`` as ``t`` says, with its bookkeeping, once; the refund as it now stands."""
    return attempt(rt, refund, payment, t)[0]


def attempt(rt: Runtime, refund: Refund, payment: Payment, t: Transition) -> tuple[Refund, bool]:
    """``apply``, and whether this call made the move. When it did not (someone moved the
    refund first), it wrote nothing, ``t.also`` included, unless ``t`` reverses a success."""
    now = rt.clock()
    announced = False
    with rt.store.write() as tx:
        st.lock_payment_row(tx, payment.id)
        if st.transition_refund(tx, refund.id, t.sources, t.columns(now)):
            updated = t.moved(refund, now)
            announced = _record(tx, updated, payment, t, now)
            moved = None
        else:
            moved = st.get_refund(tx, refund.id)
            if moved is None:  # pragma: no cover - refunds are never deleted
                raise RefundNotFound(f"no refund {refund.id!r}")
    if moved is not None:
        return _moved_first(rt, refund, payment, t, moved), False
    rt.checkpoint("confirmed")  # committed, before the outbox relay runs
    if announced and rt.listeners:
        outbox.dispatch(rt)
    return updated, True


def _record(tx: st.Tx, refund: Refund, payment: Payment, t: Transition, now: datetime) -> bool:
    """Balances, journal and event of a move that happened; whether an event was written."""
    # They commit with the status change, or not at all.
    payment = _book(tx, refund, payment, t.to, now)
    more = t.also(tx, now) if t.also is not None else {}
    etype = event_type_for(t.to)
    if etype is None:
        return False
    event = refund_event(etype, refund, payment, now, event_id=new_event_id())
    event["data"].update(more)
    st.insert_event(tx, event, refund.id)
    return True


def _moved_first(
    rt: Runtime, refund: Refund, payment: Payment, t: Transition, moved: Refund
) -> Refund:
    """Someone else (recovery, a webhook) moved it first, or the move goes backwards."""
    if t.reverses and t.to is S.FAILED and moved.status is S.SUCCEEDED:
        # A refund that fails after it succeeded was reversed: the money came back.
        reversal = Transition(
            S.REVERSED, failure_code=t.failure_code, failure_message=t.failure_message
        )
        return apply(rt, moved, payment, reversal)
    if moved.status is not t.to:
        log.info("refund %s is %s; not moving it to %s", refund.id, moved.status, t.to)
    return moved


def _book(tx: st.Tx, refund: Refund, payment: Payment, to: RefundStatus, now: datetime) -> Payment:
    """Balances and journal for a move to ``to``; returns the payment as it now stands."""
    amt = refund.amount.amount
    cur = refund.amount.currency
    from_balance = refund.lot_id is not None
    if to is S.SUCCEEDED:
        refunded = st.add_refunded(tx, payment.id, amt)
        st.insert_journal(tx, refund_journal(refund, payment, now, from_balance))
        return attrs.evolve(payment, refunded=Money(refunded, cur))
    if to not in (S.FAILED, S.REVERSED):
        return payment
    # The money is back: release what the refund held, to the lot it came from.
    reversed_ = to is S.REVERSED
    lot = st.get_lot(tx, refund.lot_id) if refund.lot_id else None
    credit = lot is not None and lot.kind == "credit"
    refunded = st.add_refunded(tx, payment.id, -amt if reversed_ else 0, 0 if credit else -amt)
    if credit:
        st.add_credited(tx, payment.id, amt, held_delta=-amt)
    if lot is not None:
        st.move_lot(tx, lot.id, amt, kind=f"refund_{to.value}", now=now, refund_id=refund.id)
    if reversed_:
        st.insert_journal(tx, reversal_journal(refund, payment, now, from_balance))
    return attrs.evolve(payment, refunded=Money(refunded, cur))

"""Refund approvals (docs/dashboard.md): asked, claimed by one approver, decided. Every move is
conditional on the approval's status, so of two approvers only one decision wins."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from .._approval_state import Approval
from .._money import Money
from .._planner import Plan
from .._schema import refund_approvals as t
from ._rows import value_from_row

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row


class ApprovalChanges(TypedDict, total=False):
    """What a move may set besides the status: the decision, what it made, the claimed plan."""

    decided_by: str
    decided_at: datetime
    decision_note: str | None
    refund_id: str
    refund_ids: Sequence[str]
    plan: Plan


def _from_row(r: Row[Any]) -> Approval:
    return value_from_row(
        Approval,
        r,
        amount=Money(r.amount, r.currency),
        plan=Plan.from_dict(json.loads(r.plan)) if r.plan else None,
        refund_ids=tuple(json.loads(r.refund_ids)) if r.refund_ids else (),
    )


def _plan_json(plan: Plan) -> str:
    # The stored plan is also compared as text when it is given back (unclaim_approval).
    return json.dumps(plan.to_dict())


def insert_approval(conn: Connection, approval: Approval) -> None:
    """Store a new (pending) approval: who asked, for what; nothing decided yet."""
    conn.execute(
        t.insert().values(
            id=approval.id,
            currency=approval.amount.currency,
            amount=approval.amount.amount,
            reason=approval.reason,
            status=approval.status,
            requested_by=approval.requested_by,
            requested_at=approval.requested_at,
            kind=approval.kind,
            payment_id=approval.payment_id,
            customer_id=approval.customer_id,
            strategy=approval.strategy,
        )
    )


def get_approval(conn: Connection, approval_id: str) -> Approval | None:
    row = conn.execute(t.select().where(t.c.id == approval_id)).first()
    return None if row is None else _from_row(row)


def find_approvals(
    conn: Connection,
    *,
    payment_id: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
) -> list[Approval]:
    """Approvals, newest first, of a payment, of a customer's balance, and/or in a status."""
    query = t.select().order_by(t.c.requested_at.desc(), t.c.id)
    if payment_id is not None:
        query = query.where(t.c.payment_id == payment_id)
    if customer_id is not None:
        query = query.where(t.c.customer_id == customer_id)
    if status is not None:
        query = query.where(t.c.status == status)
    return [_from_row(r) for r in conn.execute(query)]


def move_approval(
    conn: Connection,
    approval_id: str,
    froms: Sequence[str],
    to: str,
    **changes: Unpack[ApprovalChanges],
) -> bool:
    """Move an approval to ``to`` (setting ``changes``) only if it is still in one of
    ``froms``; False if it was not (someone else moved it first)."""
    values: dict[str, Any] = {**changes, "status": to}
    if "plan" in changes:
        values["plan"] = _plan_json(changes["plan"])
    if "refund_ids" in changes:
        values["refund_ids"] = json.dumps(list(changes["refund_ids"]))
    done = conn.execute(
        t.update().where(t.c.id == approval_id, t.c.status.in_(froms)).values(**values)
    ).rowcount
    return bool(done)


def unclaim_approval(conn: Connection, approval_id: str, plan: Plan) -> None:
    """Put an approval claimed with ``plan`` back to pending, without a plan. Nothing if
    another approver's claim (another plan) holds it meanwhile."""
    conn.execute(
        t.update()
        .where(t.c.id == approval_id, t.c.status == "approving", t.c.plan == _plan_json(plan))
        .values(status="pending", plan=None)
    )

"""Refund approvals: a refund above the asker's limit waits for a second person (four eyes).

A pending approval holds nothing. Approving runs the refund through the kit at that moment,
with an idempotency key derived from the approval's id, so the caps are checked then (no
over-refund, however many refunds happened meanwhile) and a double click, two approvers at
once or a retry after a crash make one refund. Every decision is kept: who asked and when,
who decided, when and why.

States: ``pending`` → ``approving`` (claimed by one approver, the refund under way) →
``approved`` (with its refund id); ``pending`` → ``rejected``. A refusal by the policy puts the
approval back to ``pending`` with nothing written, so it can still be rejected.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import (
    ApprovalRefused,
    GatewayError,
    InvalidInput,
    NotFound,
    RefundkitError,
    RequestInProgress,
)
from ._model import Refund, check_id, iso, new_id
from ._money import Money
from ._policy import check_amount
from ._schema import refund_approvals as t

if TYPE_CHECKING:
    from ._kit import RefundKit


@attrs.frozen
class Approval:
    id: str
    payment_id: str
    amount: Money
    reason: str
    status: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    refund_id: str | None = None

    @property
    def idempotency_key(self) -> str:
        """The refund's key: approving twice replays the same refund."""
        return f"approval-{self.id}"

    def sentence(self) -> str:
        """The pending approval in plain words, next to the quote it does not hold."""
        return (
            f"{self.amount} awaits approval (asked by {self.requested_by}); it is not held: "
            "the limits are checked again when it is approved."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "payment_id": self.payment_id,
            **self.amount.to_dict(),
            "reason": self.reason,
            "status": self.status,
            "requested_by": self.requested_by,
            "requested_at": iso(self.requested_at),
            "decided_by": self.decided_by,
            "decided_at": iso(self.decided_at) if self.decided_at else None,
            "decision_note": self.decision_note,
            "refund_id": self.refund_id,
        }


def _from_row(r: Any) -> Approval:
    return Approval(
        id=r.id,
        payment_id=r.payment_id,
        amount=Money(r.amount, r.currency),
        reason=r.reason,
        status=r.status,
        requested_by=r.requested_by,
        requested_at=r.requested_at,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        decision_note=r.decision_note,
        refund_id=r.refund_id,
    )


class Approvals:
    """Refund approvals over a kit: ask, list, approve (runs the refund), reject."""

    def __init__(self, kit: RefundKit) -> None:
        self.kit = kit

    def request(
        self, payment_id: str, amount: Money, *, reason: str, requested_by: str
    ) -> Approval:
        """Ask for a refund to be approved. Refused now (nothing written) when the quote
        already forbids it, with the limit's sentence."""
        from ._kit import _check_money, _check_text

        check_id(payment_id, "payment id")
        _check_money(amount, "amount")
        reason = _need_text(_check_text(reason, "reason"), "reason")
        requested_by = _need_text(_check_text(requested_by, "requester"), "requester")
        check_amount(self.kit.quote(payment_id), amount)
        approval = Approval(
            id=new_id("apr_"),
            payment_id=payment_id,
            amount=amount,
            reason=reason,
            status="pending",
            requested_by=requested_by,
            requested_at=self.kit.clock(),
        )
        with self.kit.store.connect() as conn:
            conn.execute(
                t.insert().values(
                    id=approval.id,
                    payment_id=payment_id,
                    currency=amount.currency,
                    amount=amount.amount,
                    reason=reason,
                    status="pending",
                    requested_by=requested_by,
                    requested_at=approval.requested_at,
                )
            )
        return approval

    def get(self, approval_id: str) -> Approval:
        check_id(approval_id, "approval id")
        with self.kit.store.connect() as conn:
            row = conn.execute(t.select().where(t.c.id == approval_id)).first()
        if row is None:
            raise NotFound(f"no approval {approval_id!r}")
        return _from_row(row)

    def find(self, *, payment_id: str | None = None, status: str | None = None) -> list[Approval]:
        """Approvals, newest first."""
        query = t.select().order_by(t.c.requested_at.desc(), t.c.id)
        if payment_id is not None:
            query = query.where(t.c.payment_id == payment_id)
        if status is not None:
            query = query.where(t.c.status == status)
        with self.kit.store.connect() as conn:
            return [_from_row(r) for r in conn.execute(query)]

    def approve(self, approval_id: str, *, approver: str, note: str | None = None) -> Refund:
        """Run the approved refund through the kit now (caps checked now). Raises the kit's
        refusal (the approval stays pending) or a gateway error (the approval is decided;
        the failed refund is kept and shown)."""
        from ._kit import _check_text

        approver = _need_text(_check_text(approver, "approver"), "approver")
        note = _check_text(note or None, "note")
        approval = self._claim(approval_id, approver, frm=("pending", "approving"), to="approving")
        try:
            refund = self.kit.refund(
                approval.payment_id,
                approval.amount,
                reason=approval.reason,
                idempotency_key=approval.idempotency_key,
                actor=f"{approval.requested_by}, approved by {approver}"[:200],
            )
        except RequestInProgress:
            raise  # another approver's refund is under way: theirs decides
        except GatewayError as exc:
            if exc.refund is None:
                self._set(approval_id, ("approving",), status="pending")
                raise
            self._decide(approval_id, approver, note, exc.refund.id)
            raise
        except RefundkitError:
            self._set(approval_id, ("approving",), status="pending")
            raise
        self._decide(approval_id, approver, note, refund.id)
        return refund

    def reject(self, approval_id: str, *, approver: str, note: str) -> Approval:
        from ._kit import _check_text

        approver = _need_text(_check_text(approver, "approver"), "approver")
        note = _need_text(_check_text(note, "note"), "the reason for rejecting")
        self._claim(
            approval_id,
            approver,
            frm=("pending",),
            to="rejected",
            decided_by=approver,
            decided_at=self.kit.clock(),
            decision_note=note,
        )
        return self.get(approval_id)

    # --- state changes: conditional updates, so only one decision wins ---------------------

    def _claim(
        self, approval_id: str, approver: str, *, frm: tuple[str, ...], to: str, **values: Any
    ) -> Approval:
        approval = self.get(approval_id)
        if approval.requested_by == approver:
            raise ApprovalRefused(
                f"{approver} asked for this refund; another person must approve or reject it "
                "(four eyes)"
            )
        with self.kit.store.connect() as conn:
            done = conn.execute(
                t.update()
                .where(t.c.id == approval_id, t.c.status.in_(frm))
                .values(status=to, **values)
            ).rowcount
        if not done:
            now = self.get(approval_id)
            who = f" by {now.decided_by}" if now.decided_by else ""
            raise ApprovalRefused(f"approval {approval_id} is already {now.status}{who}")
        return approval

    def _set(self, approval_id: str, frm: tuple[str, ...], **values: Any) -> None:
        with self.kit.store.connect() as conn:
            conn.execute(
                t.update().where(t.c.id == approval_id, t.c.status.in_(frm)).values(**values)
            )

    def _decide(self, approval_id: str, approver: str, note: str | None, refund_id: str) -> None:
        # The refund exists: the approval is approved, whatever moved it meanwhile (short of
        # a rejection, which only a pending approval can get).
        self._set(
            approval_id,
            ("approving", "pending"),
            status="approved",
            decided_by=approver,
            decided_at=self.kit.clock(),
            decision_note=note,
            refund_id=refund_id,
        )


def _need_text(value: str | None, what: str) -> str:
    if not value:
        raise InvalidInput(f"{what} is required")
    return value


__all__ = ["Approval", "ApprovalRefused", "Approvals"]

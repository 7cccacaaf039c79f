"""An approval as it stands: who asked for which refund and who decided it (docs/dashboard.md).

The value the store reads back (``_store.approvals``) and the approval workflow
(``_approvals.Approvals``) decides on. It lives apart from the workflow because the workflow
imports the store: the store could not import it from there without an import cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from ._model import iso
from ._money import Money
from ._planner import Plan


@attrs.frozen
class Approval:
    id: str
    #: The payment to refund (a payment approval), or None for a balance approval.
    payment_id: str | None
    amount: Money
    reason: str
    status: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    refund_id: str | None = None
    kind: str = "payment"
    #: A balance approval's customer, the strategy asked for, and the plan fixed when claimed.
    customer_id: str | None = None
    strategy: str | None = None
    plan: Plan | None = None
    #: The refunds a balance approval made (its plan's legs).
    refund_ids: tuple[str, ...] = ()

    @property
    def idempotency_key(self) -> str:
        """The refund's key: approving twice replays the same refund."""
        return f"approval-{self.id}"

    @property
    def plan_id(self) -> str | None:
        return self.plan.id if self.plan else None

    def sentence(self) -> str:
        """The pending approval in plain words, next to the quote (or balance) it does not hold."""
        if self.kind == "balance":
            return (
                f"{self.amount} of {self.customer_id}'s balance awaits approval (asked by "
                f"{self.requested_by}); it is not held: the balance is planned and checked "
                "again when it is approved."
            )
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
            "kind": self.kind,
            "customer_id": self.customer_id,
            "strategy": self.strategy,
            "plan_id": self.plan_id,
            "refund_ids": list(self.refund_ids),
        }

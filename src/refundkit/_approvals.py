"""Refund approvals: a refund above the asker's limit waits for a second person (four eyes).

A pending approval holds nothing. Approving runs the refund through the kit at that moment,
with an idempotency key derived from the approval's id, so the caps are checked then (no
over-refund, however many refunds happened meanwhile) and a double click, two approvers at
once or a retry after a crash make one refund. Every decision is kept: who asked and when,
who decided, when and why.

A balance approval (``kind="balance"``) waits for a refund of a customer's balance to the
cards that funded it. Approving plans it then (``scope="balance"``, the strategy asked for) and
stores that plan on the approval as it claims it; the plan's legs run with keys derived from the
plan id, so a retry after a crash, a double click or a second approver re-executes the SAME
stored plan and its legs replay (``RefundKit.execute``).

What a person may refund without approval (``Allowance``) counts what they refunded already:
of one payment, ever, and of one customer's payments in the last 24 hours, so a limit of 20.00
cannot be walked round as ten refunds of 20.00 (``Approvals.over_allowance``).

States: ``pending`` → ``approving`` (claimed by one approver, the refund under way) →
``approved`` (with its refund id, or a balance approval's refund ids); ``pending`` →
``rejected``. A refusal by the policy (or the planner) puts the approval back to ``pending``
with nothing written, so it can still be rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Unpack

import attrs

from . import _store as st
from ._approval_state import Approval
from ._errors import (
    ApprovalRefused,
    GatewayError,
    InsufficientRefundableBalance,
    InvalidInput,
    NotFound,
    RefundkitError,
    RefundNotAllowed,
    RequestInProgress,
    StalePlan,
)
from ._model import Refund, RefundStatus, check_id, new_id
from ._money import Money
from ._planner import STRATEGIES, Plan, PlanResult
from ._policy import check_amount
from ._validate import check_money, check_text, need

if TYPE_CHECKING:
    from ._kit import RefundKit


#: Refunds that count against a person's allowance: all but those that gave nothing back.
COUNTED = tuple(
    s.value for s in RefundStatus if s not in (RefundStatus.FAILED, RefundStatus.REVERSED)
)
#: The window of the per-customer allowance.
DAY = timedelta(hours=24)


@attrs.frozen
class Allowance:
    """What one person may refund without approval, in one currency (None: no limit): of one
    payment, all their refunds of it together; of one customer, in any 24 hours."""

    per_payment: Money | None
    per_customer_day: Money | None


class Approvals:
    """Refund approvals over a kit: ask, list, approve (runs the refund), reject."""

    def __init__(self, kit: RefundKit) -> None:
        self.kit = kit

    def over_allowance(
        self,
        actor: str,
        customer_id: str,
        refunds: Sequence[tuple[str, Money]],
        allowance: Allowance,
    ) -> str | None:
        """Why ``refunds`` (payment id, amount; of one customer, in one currency) asked by
        ``actor`` need approval, in a sentence; None when they fit the allowance together
        with what ``actor`` refunded already (refunds approved by another person aside)."""
        if not refunds:
            return None
        cur = refunds[0][1].currency
        per_payment: dict[str, int] = {}
        for payment_id, amount in refunds:
            per_payment[payment_id] = per_payment.get(payment_id, 0) + amount.amount
        with self.kit.store.connect() as conn:
            if allowance.per_payment is not None:
                for payment_id, asked in per_payment.items():
                    done = st.refunded_by(conn, actor, cur, statuses=COUNTED, payment_id=payment_id)
                    if done + asked > allowance.per_payment.amount:
                        return _over(actor, Money(done + asked, cur), f"of {payment_id}",
                                     allowance.per_payment)  # fmt: skip
            if allowance.per_customer_day is not None:
                since = self.kit.clock() - DAY
                done = st.refunded_by(conn, actor, cur, statuses=COUNTED,
                                      customer_id=customer_id, since=since)  # fmt: skip
                total = done + sum(per_payment.values())
                if total > allowance.per_customer_day.amount:
                    return _over(actor, Money(total, cur), f"of {customer_id} in 24 hours",
                                 allowance.per_customer_day)  # fmt: skip
        return None

    def request(
        self, payment_id: str, amount: Money, *, reason: str, requested_by: str
    ) -> Approval:
        """Ask for a refund to be approved. Refused now (nothing written) when the quote
        already forbids it, with the limit's sentence."""
        check_id(payment_id, "payment id")
        check_money(amount, "amount")
        reason = need(check_text(reason, "reason"), "reason")
        requested_by = need(check_text(requested_by, "requester"), "requester")
        check_amount(self.kit.quote(payment_id), amount)
        return self._ask(amount, reason, requested_by, kind="payment", payment_id=payment_id)

    def request_balance(
        self,
        customer_id: str,
        amount: Money,
        *,
        reason: str,
        requested_by: str,
        strategy: str = "newest_first",
    ) -> Approval:
        """Ask for ``amount`` of the customer's balance to go back to the cards that funded it.
        Refused now (nothing written) when the balance cannot cover it, with the planner's
        sentence; nothing is held meanwhile."""
        check_id(customer_id, "customer id")
        check_money(amount, "amount")
        if strategy not in STRATEGIES:
            raise InvalidInput(f"strategy must be one of {', '.join(STRATEGIES)}")
        reason = need(check_text(reason, "reason"), "reason")
        requested_by = need(check_text(requested_by, "requester"), "requester")
        self._plan(customer_id, amount, strategy)  # the planner's refusal, before writing
        return self._ask(
            amount,
            reason,
            requested_by,
            kind="balance",
            payment_id=None,
            customer_id=customer_id,
            strategy=strategy,
        )

    def _ask(self, amount: Money, reason: str, requested_by: str, **what: Any) -> Approval:
        """Store a new pending approval; ``what``: its kind and what it is for."""
        approval = Approval(
            id=new_id("apr_"),
            amount=amount,
            reason=reason,
            status="pending",
            requested_by=requested_by,
            requested_at=self.kit.clock(),
            **what,
        )
        with self.kit.store.connect() as conn:
            st.insert_approval(conn, approval)
        return approval

    def _plan(self, customer_id: str, amount: Money, strategy: str) -> Plan:
        """The balance plan now, or the planner's refusal when the balance cannot cover it."""
        plan = self.kit.plan_refund(customer_id, amount, strategy=strategy, scope="balance")
        if plan.unrefundable:
            raise InsufficientRefundableBalance(plan.reason or "the balance cannot cover it")
        return plan

    def get(self, approval_id: str) -> Approval:
        check_id(approval_id, "approval id")
        with self.kit.store.connect() as conn:
            approval = st.get_approval(conn, approval_id)
        if approval is None:
            raise NotFound(f"no approval {approval_id!r}")
        return approval

    def find(
        self,
        *,
        payment_id: str | None = None,
        customer_id: str | None = None,
        status: str | None = None,
    ) -> list[Approval]:
        """Approvals, newest first (``customer_id`` finds that customer's balance approvals)."""
        with self.kit.store.connect() as conn:
            return st.find_approvals(
                conn, payment_id=payment_id, customer_id=customer_id, status=status
            )

    def approve(self, approval_id: str, *, approver: str, note: str | None = None) -> Refund:
        """Run the approved refund through the kit now (caps checked now). Raises the kit's
        refusal (the approval stays pending) or a gateway error (the approval is decided;
        the failed refund is kept and shown)."""
        approver = need(check_text(approver, "approver"), "approver")
        note = check_text(note or None, "note")
        if self._checked(approval_id, approver).payment_id is None:
            raise InvalidInput(f"approval {approval_id} is a balance refund: use approve_balance")
        approval = self._claim(approval_id, approver, frm=("pending", "approving"), to="approving")
        assert approval.payment_id is not None
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

    def approve_balance(
        self, approval_id: str, *, approver: str, note: str | None = None
    ) -> PlanResult:
        """Plan the balance refund now (caps and lots as they are now), store that plan on the
        approval as it is claimed, then execute it. An approval already ``approving`` (a crash,
        a second approver) executes its stored plan again: the legs replay, no new refunds.
        Raises the planner's refusal (stays pending, nothing written)."""
        approver = need(check_text(approver, "approver"), "approver")
        note = check_text(note or None, "note")
        approval = self._checked(approval_id, approver)
        if approval.kind != "balance":
            raise InvalidInput(f"approval {approval_id} is a payment refund: use approve")
        if approval.status == "pending":
            approval = self._claim_with_plan(approval)
        if approval.status != "approving" or approval.plan is None:
            raise _already(approval)
        return self._execute(approval, approval.plan, approver, note)

    def _claim_with_plan(self, approval: Approval) -> Approval:
        """Plan now and claim the pending approval with that plan; if another approver claimed
        it first, theirs is the plan (read back)."""
        assert approval.customer_id is not None
        assert approval.strategy is not None
        plan = self._plan(approval.customer_id, approval.amount, approval.strategy)
        with self.kit.store.connect() as conn:
            done = st.move_approval(conn, approval.id, ("pending",), "approving", plan=plan)
        return (
            attrs.evolve(approval, status="approving", plan=plan) if done else self.get(approval.id)
        )

    def _execute(
        self, approval: Approval, plan: Plan, approver: str, note: str | None
    ) -> PlanResult:
        actor = f"{approval.requested_by}, approved by {approver}"[:200]
        try:
            result = self.kit.execute(plan, reason=approval.reason, actor=actor)
        except StalePlan as exc:
            raise self._stale(approval, plan, exc) from None
        made = tuple(leg.refund_id for leg in result.legs if leg.refund_id)
        codes = [leg.error["code"] for leg in result.legs if leg.error]
        if "request_in_progress" in codes:
            # Another approver is executing this plan: theirs decides.
            raise RequestInProgress(f"approval {approval.id} is being approved by someone else")
        if not made:
            # Every leg refused by the policy: nothing written, so it waits again.
            self._unclaim(approval.id, plan)
            first = next(leg.error for leg in result.legs if leg.error)
            raise RefundNotAllowed(str(first["message"]))
        self._set(
            approval.id,
            ("approving",),
            status="approved",
            decided_by=approver,
            decided_at=self.kit.clock(),
            decision_note=note,
            refund_ids=made,
        )
        return result

    def _stale(self, approval: Approval, plan: Plan, exc: StalePlan) -> StalePlan:
        """The stored plan's sources changed before all its legs ran. If none ran, nothing
        was written: the approval waits again (approving plans anew). Otherwise it stays
        ``approving`` for a person to look at: a new plan could refund twice."""
        if not self._any_leg_ran(plan):
            self._unclaim(approval.id, plan)
            return StalePlan(
                f"the balance changed since approval {approval.id} was claimed; nothing was "
                "refunded and it is pending again"
            )
        return StalePlan(f"approval {approval.id} ran part of its plan, then: {exc}")

    def _any_leg_ran(self, plan: Plan) -> bool:
        with self.kit.store.read() as tx:
            return any(st.refund_by_key(tx, plan.leg_key(i)) for i in range(len(plan.legs)))

    def _unclaim(self, approval_id: str, plan: Plan) -> None:
        with self.kit.store.connect() as conn:
            st.unclaim_approval(conn, approval_id, plan)

    def reject(self, approval_id: str, *, approver: str, note: str) -> Approval:
        approver = need(check_text(approver, "approver"), "approver")
        note = need(check_text(note, "note"), "the reason for rejecting")
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

    def _checked(self, approval_id: str, approver: str) -> Approval:
        """The approval, if ``approver`` may decide it (four eyes)."""
        approval = self.get(approval_id)
        if approval.requested_by == approver:
            raise ApprovalRefused(
                f"{approver} asked for this refund; another person must approve or reject it "
                "(four eyes)"
            )
        return approval

    def _claim(
        self,
        approval_id: str,
        approver: str,
        *,
        frm: tuple[str, ...],
        to: str,
        **values: Unpack[st.ApprovalChanges],
    ) -> Approval:
        approval = self._checked(approval_id, approver)
        with self.kit.store.connect() as conn:
            done = st.move_approval(conn, approval_id, frm, to, **values)
        if not done:
            raise _already(self.get(approval_id))
        return approval

    def _set(
        self,
        approval_id: str,
        frm: tuple[str, ...],
        status: str,
        **values: Unpack[st.ApprovalChanges],
    ) -> None:
        with self.kit.store.connect() as conn:
            st.move_approval(conn, approval_id, frm, status, **values)

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


def _over(actor: str, total: Money, what: str, limit: Money) -> str:
    return (
        f"With this, {actor} would have refunded {total} {what}, more than the {limit} "
        "allowed without approval."
    )


def _already(approval: Approval) -> ApprovalRefused:
    who = f" by {approval.decided_by}" if approval.decided_by else ""
    return ApprovalRefused(f"approval {approval.id} is already {approval.status}{who}")


__all__ = ["Allowance", "Approval", "ApprovalRefused", "Approvals"]

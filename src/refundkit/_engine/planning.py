"""Planning: spreading a wanted total over a customer's payments (or an invoice, or the
balance's lots), and executing a plan one refund per leg, each exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .. import _store as st
from .._balances import BalanceLot
from .._errors import (
    GatewayError,
    InsufficientRefundableBalance,
    InvalidInput,
    InvalidPlan,
    RefundkitError,
    StalePlan,
)
from .._model import Payment, check_id, iso, new_id
from .._money import Money
from .._planner import (
    STRATEGIES,
    Leg,
    LegResult,
    Plan,
    PlanResult,
    Source,
    allocate,
    candidate_order,
    uses_cover_candidates,
)
from .._validate import check_money, check_text
from . import facts, refunds
from ._runtime import Runtime

#: How many sources a single_source refusal names (the rest are counted).
LISTED = 10


def plan_refund(
    rt: Runtime, customer_id: str, total: Money, strategy: str, scope: str | None
) -> Plan:
    """Preview how ``total`` would go back to the customer's cards; writes nothing."""
    check_id(customer_id, "customer id")
    check_money(total, "total")
    if scope is not None and scope != "balance":
        check_id(scope, "scope")
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy must be one of {', '.join(STRATEGIES)}")
    with rt.store.read() as tx:
        planner = Candidates(rt, tx, customer_id, total, scope)
        allocation = allocate(
            total,
            strategy,
            planner.candidates(strategy),
            cover_candidates=planner.covers(strategy) if uses_cover_candidates(strategy) else None,
            listed_totals=planner.listed_totals(strategy),
        )
        basis = planner.basis(allocation.legs)
    return Plan(
        id=new_id("pln_"),
        customer_id=customer_id,
        strategy=strategy,
        scope=scope,
        allocation=allocation,
        basis=basis,
        created=iso(rt.clock()),
    )


def execute(
    rt: Runtime,
    plan: Plan | Mapping[str, Any],
    reason: str | None = None,
    actor: str | None = None,
) -> PlanResult:
    """Run a plan's legs, each a refund with a key derived from the plan id and the leg.

    Refused before any leg runs (nothing written): ``InvalidPlan`` for what is not a plan or
    a leg outside the plan's customer and scope, ``StalePlan`` for sources that changed."""
    if not isinstance(plan, Plan):
        plan = Plan.read(plan)
    reason = check_text(reason, "reason")
    actor = check_text(actor, "actor")
    _check_fresh(rt, plan)
    results = [_run_leg(rt, plan, i, leg, reason, actor) for i, leg in enumerate(plan.legs)]
    return PlanResult(plan.id, tuple(results))


def refund_balance(
    rt: Runtime, customer_id: str, amount: Money, strategy: str, **kw: Any
) -> PlanResult:
    """Plan over the balance's lots, then execute: one refund per funding payment."""
    plan = plan_refund(rt, customer_id, amount, strategy, "balance")
    if plan.unrefundable:
        raise InsufficientRefundableBalance(plan.reason or "the balance cannot cover it")
    return execute(rt, plan, **kw)


def _check_fresh(rt: Runtime, plan: Plan) -> None:
    with rt.store.read() as tx:
        for i, leg in enumerate(plan.legs):
            _check_leg(tx, plan, i, leg)
            if st.refund_by_key(tx, plan.leg_key(i)) is not None:
                continue  # already executed: its replay is checked by the idempotency key
            for name, then in leg_basis(tx, leg).items():
                if plan.basis.get(name) != then:
                    raise StalePlan(
                        f"plan {plan.id} is stale: {leg.payment_id} changed since it was "
                        "made (another refund or credit); make a new plan"
                    )


def _check_leg(tx: st.Tx, plan: Plan, i: int, leg: Leg) -> None:
    """A leg refunds a payment of the plan's customer, within the plan's scope: on its
    invoice, or (a ``balance`` plan) from a balance lot that payment funded. ``plan_refund``
    makes no other; a plan edited by hand to reach further is refused as a whole."""
    where = f"leg {i} of plan {plan.id}"
    payment = st.get_payment(tx, leg.payment_id)
    if payment is None or payment.customer_id != plan.customer_id:
        raise InvalidPlan(
            f"{where} refunds {leg.payment_id}, which is not a payment of {plan.customer_id}"
        )
    if plan.scope == "balance":
        lot = st.get_lot(tx, leg.lot_id) if leg.lot_id is not None else None
        if lot is None or lot.funding_payment_id != payment.id:
            raise InvalidPlan(
                f"{where} refunds {leg.payment_id} outside the customer balance: a balance "
                "plan refunds only balance lots, each to the payment that funded it"
            )
    elif plan.scope is not None and payment.invoice_id != plan.scope:
        raise InvalidPlan(f"{where} refunds {leg.payment_id}, which is not on {plan.scope}")


def _run_leg(
    rt: Runtime, plan: Plan, i: int, leg: Leg, reason: str | None, actor: str | None
) -> LegResult:
    try:
        ask = refunds.Ask(leg.payment_id, leg.amount, reason, plan.leg_key(i), actor,
                          leg.lot_id, keep_key=True)  # fmt: skip
        refund = refunds.run(rt, ask)
    except GatewayError as exc:
        rid = exc.refund.id if exc.refund else None
        status: Any = exc.refund.status.value if exc.refund else "failed"
        return LegResult(i, leg, status, rid, exc.to_dict())
    except RefundkitError as exc:
        return LegResult(i, leg, "refused", None, exc.to_dict())
    status = refund.status.value
    if status in ("reserved", "submitted"):
        status = "unknown"
    return LegResult(i, leg, status, refund.id)


def leg_basis(tx: st.Tx, leg: Leg) -> dict[str, int]:
    """What a leg relies on: its lot's remainder, or its payment's held + credited total."""
    if leg.lot_id is not None:
        lot = st.get_lot(tx, leg.lot_id)
        return {f"lot:{leg.lot_id}": lot.remaining.amount if lot else -1}
    payment = st.get_payment(tx, leg.payment_id)
    if payment is None:
        return {f"payment:{leg.payment_id}": -1}
    return {f"payment:{leg.payment_id}": payment.amount.amount - payment.refundable.amount}


class Candidates:
    """Planner sources, streamed from the store in the order a strategy needs. Each source's
    ``available`` is its full quote now (only for sources the planner actually reads)."""

    def __init__(
        self, rt: Runtime, tx: st.Tx, customer_id: str, total: Money, scope: str | None
    ) -> None:
        self.rt, self.tx, self.cid, self.total, self.scope = rt, tx, customer_id, total, scope
        self.cur = total.currency
        self._top: list[Source] | None = None

    def candidates(self, strategy: str) -> Iterator[Source]:
        order = candidate_order(strategy)
        if strategy == "single_source" and self.scope != "balance":
            return self._listing()  # only named in a refusal: refundable balances suffice
        return self._sources(order)

    def covers(self, strategy: str) -> Iterator[Source]:
        if strategy == "single_source" and self.scope is None:
            top = self._top_listed()
            if not top or top[0].available < self.total:
                # The largest refundable balance bounds every quote: no payment covers the
                # total, so the full covering-payment scan is skipped.
                return
        yield from self._sources("cover")

    def _top_listed(self) -> list[Source]:
        if self._top is None:
            self._top = st.largest_refundable(self.tx, self.cid, self.cur, LISTED)
        return self._top

    def _sources(self, order: str) -> Iterator[Source]:
        if self.scope == "balance":
            for lot_id in st.candidate_ids(self.tx, order, self.cid, self.total, lots=True):
                yield self._lot_source(lot_id)
        elif self.scope is not None:
            for payment in self._invoice_payments(order):
                yield self._payment_source(payment)
        else:
            for pid in st.candidate_ids(self.tx, order, self.cid, self.total):
                found = st.get_payment(self.tx, pid)
                assert found is not None
                yield self._payment_source(found)

    def _invoice_payments(self, order: str) -> list[Payment]:
        payments = [p for p in st.invoice_payments(self.tx, str(self.scope))
                    if p.customer_id == self.cid and p.amount.currency == self.cur]  # fmt: skip
        if order == "oldest":
            payments.reverse()
        elif order == "largest":
            payments.sort(key=lambda p: -p.refundable.amount)
        elif order == "cover":  # newest first, as for a customer's payments
            payments = [p for p in payments if p.refundable >= self.total]
        return payments

    def _payment_source(self, payment: Payment) -> Source:
        return self._source(payment, facts.source_lot(self.tx, payment, None, lock=False))

    def _lot_source(self, lot_id: str) -> Source:
        lot = st.get_lot(self.tx, lot_id)
        assert lot is not None
        assert lot.funding_payment_id is not None  # every lot has a funding payment
        payment = st.get_payment(self.tx, lot.funding_payment_id)
        assert payment is not None
        return self._source(payment, lot)

    def _source(self, payment: Payment, lot: BalanceLot | None) -> Source:
        q = facts.quote(self.rt, self.tx, payment, lot)
        return Source(
            payment_id=payment.id,
            gateway=payment.gateway,
            captured_at=payment.captured_at,
            available=q.max_amount,
            invoice_id=payment.invoice_id,
            lot_id=lot.id if lot is not None else None,
            card=payment.card,
            limits=q.limits,
        )

    def _listing(self) -> Iterator[Source]:
        """The largest refundable balances, for a single_source refusal to name."""
        if self.scope is not None:
            yield from (self._payment_source(p) for p in self._invoice_payments("largest"))
            return
        yield from self._top_listed()

    def listed_totals(self, strategy: str) -> Callable[[], tuple[int, Money]] | None:
        """Count and sum of every payment's refundable balance, for a single_source refusal
        (the listing holds only the largest few). Queried only if the plan is refused."""
        if strategy != "single_source" or self.scope is not None:
            return None

        return lambda: st.refundable_totals(self.tx, self.cid, self.cur)

    def basis(self, legs: Sequence[Leg]) -> dict[str, int]:
        out: dict[str, int] = {}
        for leg in legs:
            out |= leg_basis(self.tx, leg)
        return out

"""Issue 3, point 5 (Hypothesis): for random payments, credits, redemptions and plans, no leg
exceeds its source's refundable balance, legs sum to min(total, what is refundable), and
executing a plan twice equals executing it once."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refundkit import Destination, Money, RefundKit, RefundkitError

from .conftest import FakeClock, row_counts

payments = st.lists(
    st.tuples(st.integers(100, 10_000), st.sampled_from(list(Destination))),
    min_size=1,
    max_size=6,
)
credits = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 5_000)), max_size=4)
redemptions = st.lists(st.integers(1, 6_000), max_size=3)


def available_by_source(kit: RefundKit, scope: str | None) -> dict[tuple[str, str | None], int]:
    """An oracle independent of the planner: each source's refundable amount now."""
    if scope == "balance":
        out: dict[tuple[str, str | None], int] = {}
        for lot in kit.balance("cus_1").lots:
            if not lot.remaining or lot.funding_payment_id is None:
                continue
            amount = lot.remaining.amount
            if lot.kind == "top_up":  # also bounded by the top-up's own quote
                amount = min(amount, kit.quote(lot.funding_payment_id).max_amount.amount)
            out[(lot.funding_payment_id, lot.id)] = amount
        return out
    result = {}
    for p in kit.payments("cus_1"):
        lot_id = None
        if p.destination is Destination.CUSTOMER_BALANCE:
            lot_id = next(x.id for x in kit.balance("cus_1").lots if x.funding_payment_id == p.id)
        result[(p.id, lot_id)] = kit.quote(p.id).max_amount.amount
    return result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payments=payments,
    credits=credits,
    redemptions=redemptions,
    total=st.integers(1, 30_000),
    strategy=st.sampled_from(["newest_first", "oldest_first", "fewest_refunds"]),
    scope=st.sampled_from([None, "balance"]),
)
def test_plans_respect_every_source_and_execute_once(
    payments: list[tuple[int, Destination]],
    credits: list[tuple[int, int]],
    redemptions: list[int],
    total: int,
    strategy: str,
    scope: str | None,
) -> None:
    clock = FakeClock()
    kit = RefundKit.open("sqlite://", autoload=False, clock=clock, retry_backoff=0)
    try:
        for i, (amount, destination) in enumerate(payments):
            clock.advance(minutes=1)
            kit.record_payment(
                id=f"pay_{i}", customer_id="cus_1", amount=Money(amount, "USD"),
                gateway="sandbox", gateway_payment_id=f"sbx_{i}", destination=destination,
                invoice_id=f"inv_{i}" if destination is Destination.INVOICE else None,
            )  # fmt: skip
        for index, amount in credits:
            with contextlib.suppress(RefundkitError):  # too much, or from a top-up: refused
                kit.issue_credit(f"pay_{index % len(payments)}", Money(amount, "USD"))
        for amount in redemptions:
            with contextlib.suppress(RefundkitError):
                kit.redeem_balance("cus_1", Money(amount, "USD"), reference="inv_x")
        available = available_by_source(kit, scope)
        plan = kit.plan_refund("cus_1", Money(total, "USD"), strategy=strategy, scope=scope)

        for leg in plan.legs:  # no leg exceeds its source's refundable balance
            assert 0 < leg.amount.amount <= available[(leg.payment_id, leg.lot_id)]
        planned = sum(leg.amount.amount for leg in plan.legs)
        assert planned == min(total, sum(available.values()))
        assert plan.unrefundable.amount == total - planned

        first = kit.execute(plan)
        after_once = row_counts(kit)
        second = kit.execute(plan)  # executing twice equals executing once
        assert row_counts(kit) == after_once
        # The same refunds; a status may only have moved on (an unknown leg resolved since).
        assert _refunds(second.to_dict()) == _refunds(first.to_dict())
        # Legs may fail: the sandbox declines amounts ending in .91 etc. (docs/sandbox.md).
        assert {r.status for r in first.legs} <= {"succeeded", "pending", "failed", "unknown"}
        for p in kit.payments("cus_1"):
            assert p.refundable.amount >= 0
    finally:
        kit.close()


def _refunds(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(leg["index"], leg["refund_id"]) for leg in result["legs"]]

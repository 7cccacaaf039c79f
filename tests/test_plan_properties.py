"""Issue 3, point 5 (Hypothesis): for random payments, credits, redemptions and plans, no leg
exceeds its source's refundable balance, legs sum to min(total, what is refundable), and
executing a plan twice equals executing it once. After it, no payment is refunded past its
amount (R-6, the cap), no balance lot is negative, and every succeeded refund has exactly one
balanced journal. A credit or redemption is refused exactly when there is not enough for it,
and enough legs are planned and succeed that a kit refusing everything fails the property."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from refundkit import Destination, Money, RefundKit, RefundkitError

from ._invariants import check_every_journal, refuse_by_rule, refuse_in_the_amount_check
from .conftest import FakeClock, row_counts

payments = st.lists(
    st.tuples(st.integers(100, 10_000), st.sampled_from(list(Destination))),
    min_size=1,
    max_size=6,
)
credits = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 5_000)), max_size=4)
redemptions = st.lists(st.integers(1, 6_000), max_size=3)


@dataclass
class Tally:
    """What the examples came to, across all of them."""

    examples: int = 0
    legs: int = 0  # legs planned
    succeeded: int = 0  # legs that succeeded when the plan was executed

    def assert_enough_went_through(self) -> None:
        """A kit that refuses everything fails here. Measured: about two legs per example, and
        nearly all succeed (the sandbox declines a few magic amounts, docs/sandbox.md)."""
        assert self.legs >= self.examples // 2, f"too few legs were planned: {self}"
        assert self.succeeded >= self.legs // 2, f"too few legs succeeded: {self}"


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


def issue_credit(kit: RefundKit, payment_id: str, amount: int) -> None:
    """Refused exactly when the payment paid into the balance or has too little left."""
    payment = kit.payment(payment_id)
    fits = payment.destination is Destination.INVOICE and amount <= payment.refundable.amount
    refused = _refusal(lambda: kit.issue_credit(payment_id, Money(amount, "USD")))
    assert (refused is None) == fits, (
        f"credit of {amount} from {payment_id} ({payment.refundable} left): refused by {refused!r}"
    )


def redeem(kit: RefundKit, amount: int) -> None:
    """Refused exactly when the customer's balance holds less than ``amount``."""
    held = kit.balance("cus_1").totals.get("USD", Money.zero("USD")).amount
    refused = _refusal(lambda: kit.redeem_balance("cus_1", Money(amount, "USD"), reference="inv"))
    assert (refused is None) == (amount <= held), (
        f"redemption of {amount} from a balance of {held}: refused by {refused!r}"
    )


def _refusal(call: Callable[[], object]) -> RefundkitError | None:
    try:
        call()
    except RefundkitError as exc:
        return exc
    return None


def check_after(kit: RefundKit) -> None:
    """Caps never exceeded, lots never negative, one balanced journal per succeeded refund."""
    for p in kit.payments("cus_1"):
        assert p.refundable.amount >= 0
        assert p.held is not None
        assert p.refunded is not None
        assert p.refunded.amount <= p.held.amount <= p.amount.amount
    for lot in kit.balance("cus_1").lots:
        assert 0 <= lot.remaining.amount <= lot.amount.amount, lot
    check_every_journal(kit)


def record_payments(
    kit: RefundKit, clock: FakeClock, payments: list[tuple[int, Destination]]
) -> None:
    for i, (amount, destination) in enumerate(payments):
        clock.advance(minutes=1)
        kit.record_payment(
            id=f"pay_{i}", customer_id="cus_1", amount=Money(amount, "USD"),
            gateway="sandbox", gateway_payment_id=f"sbx_{i}", destination=destination,
            invoice_id=f"inv_{i}" if destination is Destination.INVOICE else None,
        )  # fmt: skip


def plan_and_execute(kit: RefundKit, total: int, strategy: str, scope: str | None,
                     tally: Tally) -> None:  # fmt: skip
    available = available_by_source(kit, scope)
    plan = kit.plan_refund("cus_1", Money(total, "USD"), strategy=strategy, scope=scope)

    for leg in plan.legs:  # no leg exceeds its source's refundable balance
        assert 0 < leg.amount.amount <= available[(leg.payment_id, leg.lot_id)]
    planned = sum(leg.amount.amount for leg in plan.legs)
    assert planned == min(total, sum(available.values())), f"planned {planned}, of {available}"
    assert plan.unrefundable.amount == total - planned

    first = kit.execute(plan)
    after_once = row_counts(kit)
    second = kit.execute(plan)  # executing twice equals executing once
    assert row_counts(kit) == after_once
    # The same refunds; a status may only have moved on (an unknown leg resolved since).
    assert _refunds(second.to_dict()) == _refunds(first.to_dict())
    # Legs may fail: the sandbox declines amounts ending in .91 etc. (docs/sandbox.md).
    statuses = {r.status for r in first.legs}
    assert statuses <= {"succeeded", "pending", "failed", "unknown"}, f"legs ended {statuses}"
    tally.legs += len(plan.legs)
    tally.succeeded += len(first.by_status("succeeded"))


def check_the_kit(examples: int, *, plugins: Sequence[object] = (), shrink: bool = True) -> None:
    """The property over ``examples`` random customers, then the share of legs that went
    through. ``shrink=False`` (the tests that show it can fail) skips shrinking."""
    tally = Tally()
    quick = {"phases": (Phase.explicit, Phase.generate), "database": None}

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        report_multiple_bugs=False,
        **({} if shrink else quick),  # type: ignore[arg-type]
    )
    @given(
        payments=payments,
        credits=credits,
        redemptions=redemptions,
        total=st.integers(1, 30_000),
        strategy=st.sampled_from(["newest_first", "oldest_first", "fewest_refunds"]),
        scope=st.sampled_from([None, "balance"]),
    )
    def customers(
        payments: list[tuple[int, Destination]],
        credits: list[tuple[int, int]],
        redemptions: list[int],
        total: int,
        strategy: str,
        scope: str | None,
    ) -> None:
        tally.examples += 1
        clock = FakeClock()
        kit = RefundKit.open(
            "sqlite://", autoload=False, clock=clock, retry_backoff=0, plugins=list(plugins)
        )
        try:
            record_payments(kit, clock, payments)
            for index, amount in credits:
                issue_credit(kit, f"pay_{index % len(payments)}", amount)
            for amount in redemptions:
                redeem(kit, amount)
            plan_and_execute(kit, total, strategy, scope, tally)
            check_after(kit)
        finally:
            kit.close()

    customers()
    tally.assert_enough_went_through()


def test_plans_respect_every_source_and_execute_once() -> None:
    check_the_kit(60)


def _refunds(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(leg["index"], leg["refund_id"]) for leg in result["legs"]]


@pytest.mark.parametrize(
    ("refuse", "failure"),
    [
        # Or the oracle sees a credit lot the planner (rightly) did not draw on: a policy rule
        # binds a refund from a credit lot too, and the oracle does not quote lots.
        (refuse_by_rule, "too few legs were planned|planned 0, of"),
        (refuse_in_the_amount_check, "refused"),
    ],
    ids=["a policy rule allows nothing", "the amount check refuses every refund"],
)
def test_the_property_fails_when_the_kit_refuses_every_refund(
    monkeypatch: pytest.MonkeyPatch,
    refuse: Callable[[pytest.MonkeyPatch], list[object]],
    failure: str,
) -> None:
    """Planned legs that sum to what is refundable (nothing) and no leg past its source (none)
    hold for a kit that refunds nothing; the share of legs planned and succeeded does not."""
    plugins = refuse(monkeypatch)
    with pytest.raises(AssertionError, match=failure):
        check_the_kit(20, plugins=plugins, shrink=False)

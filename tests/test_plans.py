"""Planning a wanted total across payments, invoices and balance lots, and executing it."""

from __future__ import annotations

import json

import pytest

from refundkit import (
    Destination,
    InsufficientRefundableBalance,
    RefundKit,
    RefundStatus,
    StalePlan,
)
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, record, row_counts, usd


@pytest.fixture
def invoices(kit: RefundKit, clock: FakeClock) -> RefundKit:
    """Issue 3, point 4: inv_1 100.00 (30.00 of it credited and spent on inv_9), inv_2 50.00."""
    record(kit, "pay_1", "100.00", invoice_id="inv_1")
    clock.advance(days=1)
    record(kit, "pay_2", "50.00", invoice_id="inv_2")
    kit.issue_credit("inv_1", usd("30.00"))
    kit.redeem_balance("cus_1", usd("30.00"), reference="inv_9")
    return kit


def test_done_4_credit_then_single_source_refusal_names_every_balance(
    invoices: RefundKit,
) -> None:
    kit = invoices
    assert kit.invoice("inv_1").refundable == usd("70.00")
    before = row_counts(kit)
    plan = kit.plan_refund("cus_1", usd("90.00"), strategy="single_source")
    assert plan.legs == ()
    assert plan.unrefundable == usd("90.00")
    assert plan.reason is not None
    assert "pay_1 (inv_1) has 70.00 USD refundable" in plan.reason
    assert "pay_2 (inv_2) has 50.00 USD" in plan.reason
    assert row_counts(kit) == before  # a plan is a preview


def test_done_4_fewest_refunds_makes_two(invoices: RefundKit, sandbox: SandboxGateway) -> None:
    kit = invoices
    plan = kit.plan_refund("cus_1", usd("90.00"), strategy="fewest_refunds")
    assert [(leg.payment_id, leg.amount) for leg in plan.legs] == [
        ("pay_1", usd("70.00")),
        ("pay_2", usd("20.00")),
    ]
    assert plan.unrefundable == usd("0.00")
    result = kit.execute(plan)
    assert [r.status for r in result.legs] == ["succeeded", "succeeded"]
    assert sandbox.refund_count() == 2
    assert kit.invoice("inv_1").refundable == usd("0.00")
    assert kit.invoice("inv_2").refundable == usd("30.00")


def test_a_plan_that_falls_short_says_what_to_refund_elsewhere(invoices: RefundKit) -> None:
    plan = invoices.plan_refund("cus_1", usd("150.00"), strategy="newest_first")
    assert [(leg.payment_id, leg.amount) for leg in plan.legs] == [
        ("pay_2", usd("50.00")),
        ("pay_1", usd("70.00")),
    ]
    assert plan.unrefundable == usd("30.00")
    assert plan.reason is not None
    assert "30.00 USD" in plan.reason
    assert "issued as customer credit" in plan.reason


def test_executing_a_plan_twice_changes_nothing(invoices: RefundKit) -> None:
    kit = invoices
    plan = kit.plan_refund("cus_1", usd("60.00"), strategy="oldest_first")
    first = kit.execute(plan)
    before = row_counts(kit)
    again = kit.execute(plan)
    assert row_counts(kit) == before
    assert [r.refund_id for r in again.legs] == [r.refund_id for r in first.legs]


def test_a_plan_survives_json_and_executes_from_it(invoices: RefundKit) -> None:
    kit = invoices
    plan = kit.plan_refund("cus_1", usd("10.00"))
    result = kit.execute(json.loads(json.dumps(plan.to_dict())))
    assert [r.status for r in result.legs] == ["succeeded"]
    assert result.legs[0].leg.payment_id == "pay_2"  # newest first


def test_a_stale_plan_is_refused_not_over_refunded(invoices: RefundKit) -> None:
    kit = invoices
    plan = kit.plan_refund("cus_1", usd("60.00"), strategy="single_source")
    assert [leg.payment_id for leg in plan.legs] == ["pay_1"]  # only inv_1 covers 60.00
    kit.refund("pay_1", usd("5.00"))  # a newer refund on the same payment
    before = row_counts(kit)
    with pytest.raises(StalePlan):
        kit.execute(plan)
    assert row_counts(kit) == before


def test_a_failed_leg_leaves_the_others_and_is_reported(
    invoices: RefundKit, sandbox: SandboxGateway
) -> None:
    kit = invoices
    plan = kit.plan_refund("cus_1", usd("90.00"), strategy="fewest_refunds")
    sandbox.script("decline", charge="sbx_ch_pay_2")
    result = kit.execute(plan)
    assert [(r.leg.payment_id, r.status) for r in result.legs] == [
        ("pay_1", "succeeded"),
        ("pay_2", "failed"),
    ]
    assert result.legs[1].error is not None
    assert result.legs[1].error["code"] == "gateway_declined"
    assert kit.get_refund(result.legs[0].refund_id or "").status is RefundStatus.SUCCEEDED


def test_refund_balance_returns_lots_to_the_cards_that_funded_them(
    kit: RefundKit, clock: FakeClock, sandbox: SandboxGateway
) -> None:
    """Newest lot first, one refund per funding payment, each within its own caps."""
    record(kit, "pay_t1", "40.00", destination=Destination.CUSTOMER_BALANCE)
    clock.advance(minutes=1)
    record(kit, "pay_inv", "100.00", invoice_id="inv_1")
    kit.issue_credit("pay_inv", usd("25.00"))  # a credit lot funded by the invoice payment
    result = kit.refund_balance("cus_1", usd("50.00"))
    assert [(r.leg.payment_id, r.leg.amount, r.status) for r in result.legs] == [
        ("pay_inv", usd("25.00"), "succeeded"),
        ("pay_t1", usd("25.00"), "succeeded"),
    ]
    assert kit.balance("cus_1").totals == {"USD": usd("15.00")}
    payment = kit.payment("pay_inv")
    # The credit went back to the card: no longer credited, now refunded.
    assert (payment.credited, payment.refunded) == (usd("0.00"), usd("25.00"))
    assert kit.quote("pay_inv").max_amount == usd("75.00")
    for r in result.legs:
        lines = kit.journal(r.refund_id)
        assert lines[0].account == "customer_balance:cus_1"
    with pytest.raises(InsufficientRefundableBalance):
        kit.refund_balance("cus_1", usd("15.01"))


def test_refund_balance_of_a_failed_credit_refund_restores_the_credit(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit, "pay_inv", "100.00", invoice_id="inv_1")
    kit.issue_credit("pay_inv", usd("25.00"))
    sandbox.script("decline")
    result = kit.refund_balance("cus_1", usd("25.00"))
    assert [r.status for r in result.legs] == ["failed"]
    payment = kit.payment("pay_inv")
    assert (payment.credited, payment.held) == (usd("25.00"), usd("0.00"))
    assert kit.balance("cus_1").totals == {"USD": usd("25.00")}


def test_single_source_refusal_names_the_largest_and_counts_the_rest(
    kit: RefundKit, clock: FakeClock
) -> None:
    """The store hands over only the largest balances; the count and sum come from SQL."""
    for i in range(12):
        clock.advance(minutes=1)
        record(kit, f"pay_{i:02d}", f"{10 + i}.00", invoice_id=f"inv_{i:02d}")
    record(kit, "pay_disputed", "99.00", disputed=True)
    plan = kit.plan_refund("cus_1", usd("30.00"), strategy="single_source")
    assert plan.legs == ()
    assert plan.reason is not None
    assert plan.reason.startswith(
        "No single payment can refund 30.00 USD: pay_11 (inv_11) has 21.00 USD refundable, "
        "pay_10 (inv_10) has 20.00 USD"
    )
    assert "and 2 more." in plan.reason  # 12 with something refundable, 10 named
    assert "pay_disputed" not in plan.reason  # disputed: nothing refundable
    assert "Together they hold 186.00 USD" in plan.reason

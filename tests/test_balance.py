"""Customer-balance refunds with provenance, credits, and refundable balances per invoice."""

from __future__ import annotations

import pytest

from refundkit import (
    Destination,
    GatewayDeclined,
    InsufficientRefundableBalance,
    InvalidInput,
    RefundKit,
    RefundNotAllowed,
    RefundStatus,
)
from refundkit._ledger import is_balanced
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, record, row_counts, usd

BALANCE = Destination.CUSTOMER_BALANCE


def test_done_1_balance_payment_refunds_like_any_other_and_never_above_the_charge(
    kit: RefundKit,
) -> None:
    """Issue 3, point 1: default = the charge; a bigger balance does not raise the maximum."""
    record(kit, destination=BALANCE)
    q = kit.quote("pay_1")
    assert (q.refundable, q.default_amount) == (True, usd("50.00"))
    record(kit, "pay_2", "30.00", destination=BALANCE)
    assert kit.balance("cus_1").totals == {"USD": usd("80.00")}
    assert kit.quote("pay_1").max_amount == usd("50.00")
    before = row_counts(kit)
    with pytest.raises(InsufficientRefundableBalance) as info:
        kit.refund("pay_1", usd("60.00"))
    assert [lim.code for lim in info.value.limits] == ["payment_cap"]
    assert row_counts(kit) == before


def test_done_2_spent_balance_limits_the_refund_of_its_top_up(kit: RefundKit) -> None:
    """Issue 3, point 2."""
    record(kit, destination=BALANCE)
    record(kit, "pay_2", "30.00", destination=BALANCE)
    kit.redeem_balance("cus_1", usd("20.00"), reference="inv_7")  # oldest lot first: pay_1's
    q = kit.quote("pay_1")
    assert q.max_amount == usd("30.00")
    assert [lim.code for lim in q.limits] == ["customer_balance"]
    assert "20.00 USD was spent on inv_7" in q.limits[0].message
    assert kit.refund("pay_1", usd("10.00")).status is RefundStatus.SUCCEEDED
    assert kit.refund("pay_1", usd("20.00")).status is RefundStatus.SUCCEEDED
    with pytest.raises(RefundNotAllowed):
        kit.refund("pay_1", usd("0.01"))
    lots = {lot.funding_payment_id: lot for lot in kit.balance("cus_1").lots}
    assert lots["pay_1"].remaining == usd("0.00")
    assert lots["pay_2"].remaining == usd("30.00")  # the other top-up is untouched


def test_done_3_balance_refund_event_and_journal(kit: RefundKit) -> None:
    """Issue 3, point 3: the event names amount, customer, masked card, both ids, a time."""
    record(kit, destination=BALANCE)
    refund = kit.refund("pay_1", usd("12.00"))
    [event] = kit.events()
    data = event.data
    assert event.type == "charge.refunded"
    assert data["refund"]["amount"] == 1200
    assert data["refund"]["id"] == refund.id
    assert data["refund"]["gateway_refund_id"] == refund.gateway_refund_id
    assert data["payment"]["id"] == "pay_1"
    assert data["payment"]["destination"] == "customer_balance"
    assert data["customer_id"] == "cus_1"
    assert data["card"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}
    assert data["refunded_at"] == "2026-11-22T10:00:00Z"
    lines = kit.journal(refund.id)
    assert is_balanced(lines)
    assert [(x.account, x.side) for x in lines] == [
        ("customer_balance:cus_1", "debit"),
        ("gateway_clearing:sandbox", "credit"),
    ]


def test_a_failed_balance_refund_gives_the_money_back_to_the_lot(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit, destination=BALANCE)
    sandbox.script("decline")
    with pytest.raises(GatewayDeclined):
        kit.refund("pay_1", usd("15.00"))
    assert kit.balance("cus_1").totals == {"USD": usd("50.00")}
    assert kit.quote("pay_1").max_amount == usd("50.00")


def test_credit_consumes_the_refundable_balance_and_explains_where_it_went(
    kit: RefundKit,
) -> None:
    record(kit, "pay_1", "100.00", invoice_id="inv_1")
    [lot] = kit.issue_credit("pay_1", usd("30.00"))
    assert (lot.kind, lot.funding_payment_id, lot.remaining) == ("credit", "pay_1", usd("30.00"))
    kit.redeem_balance("cus_1", usd("30.00"), reference="inv_9")
    q = kit.quote("pay_1")
    assert q.max_amount == usd("70.00")
    assert [lim.code for lim in q.limits] == ["credit_issued"]
    assert q.limits[0].message == (
        "30.00 USD of this payment was issued as customer credit and 30.00 USD of it was "
        "spent on inv_9, so at most 70.00 USD can go back to the card."
    )
    inv = kit.invoice("inv_1")
    assert (inv.total, inv.refundable, inv.credited) == (
        usd("100.00"), usd("70.00"), usd("30.00"))  # fmt: skip
    with pytest.raises(InsufficientRefundableBalance):
        kit.refund("pay_1", usd("70.01"))


def test_credit_from_an_invoice_spreads_over_its_payments_newest_first(
    kit: RefundKit, clock: FakeClock
) -> None:
    record(kit, "pay_a", "40.00", invoice_id="inv_1")
    clock.advance(minutes=1)
    record(kit, "pay_b", "25.00", invoice_id="inv_1")  # split tender
    lots = kit.issue_credit("inv_1", usd("30.00"))
    assert [(x.funding_payment_id, x.amount) for x in lots] == [
        ("pay_b", usd("25.00")),
        ("pay_a", usd("5.00")),
    ]
    assert kit.invoice("inv_1").refundable == usd("35.00")
    before = row_counts(kit)
    with pytest.raises(InsufficientRefundableBalance, match=r"pay_a has 35\.00 USD"):
        kit.issue_credit("inv_1", usd("35.01"))
    assert row_counts(kit) == before


def test_no_credit_from_a_top_up_or_a_disputed_payment(kit: RefundKit) -> None:
    record(kit, destination=BALANCE)
    record(kit, "pay_2", disputed=True)
    before = row_counts(kit)
    with pytest.raises(InvalidInput):
        kit.issue_credit("pay_1", usd("1.00"))
    with pytest.raises(RefundNotAllowed):
        kit.issue_credit("pay_2", usd("1.00"))
    assert row_counts(kit) == before


def test_redeem_order_is_configurable(kit: RefundKit, clock: FakeClock) -> None:
    record(kit, "pay_1", "10.00", destination=BALANCE)
    clock.advance(minutes=1)
    record(kit, "pay_2", "10.00", destination=BALANCE)
    kit.redeem_balance("cus_1", usd("4.00"), reference="inv_1", order="newest_first")
    remaining = {x.funding_payment_id: x.remaining for x in kit.balance("cus_1").lots}
    assert remaining == {"pay_1": usd("10.00"), "pay_2": usd("6.00")}

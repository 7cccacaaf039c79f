"""Gaps issue 24's mutation run found outside the pure core's own test files: each test here
fails against the change its docstring names (the pure-core ones are in test_policy_rules.py,
test_ledger.py, test_planner.py, test_money.py and test_transitions.py)."""

from __future__ import annotations

import pytest

from refundkit import (
    CurrencyMismatch,
    Destination,
    InvalidMoney,
    Money,
    RefundKit,
    RefundNotAllowed,
)
from refundkit._approvals import Approvals
from refundkit._money import MAX_AMOUNT

from .conftest import record, row_counts


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (Money(0, "USD"), RefundNotAllowed),
        (Money(-100, "USD"), RefundNotAllowed),
        (Money(100, "EUR"), CurrencyMismatch),
    ],
    ids=["zero", "negative", "another currency"],
)
def test_an_approval_is_not_asked_for_a_refund_no_one_could_make(
    kit: RefundKit, amount: Money, error: type[Exception]
) -> None:
    """R-6.7 on the approvals path, which checks a request only with ``_policy.check_amount``:
    a zero, negative or wrong-currency amount is refused there and no approval is stored.
    Fails when ``check_amount`` no longer calls ``check_request`` (the issue's mutant)."""
    record(kit)
    approvals = Approvals(kit)
    with pytest.raises(error):
        approvals.request("pay_1", amount, reason="customer asked", requested_by="alice")
    assert approvals.find() == []


def top_up(kit: RefundKit, id: str, amount: Money) -> None:
    kit.record_payment(
        id=id, customer_id="cus_1", amount=amount, gateway="sandbox",
        gateway_payment_id=f"sbx_{id}", destination=Destination.CUSTOMER_BALANCE,
    )  # fmt: skip


def test_r6_8_a_top_up_that_would_overflow_the_customers_balance_is_refused(
    kit: RefundKit,
) -> None:
    """R-6.8 (2**63 is refused, never wrapped): with ``MAX_AMOUNT`` already in the customer's
    balance, one more top-up is refused with ``InvalidMoney`` and nothing is written; the
    balance still reads. The test in test_bad_inputs.py accepts either outcome; this one fails
    when the room check (``_engine.balances.check_room``) is removed or lets it through."""
    top_up(kit, "pay_1", Money(MAX_AMOUNT, "USD"))
    before = row_counts(kit)
    with pytest.raises(InvalidMoney, match="past the largest storable amount"):
        top_up(kit, "pay_2", Money(1, "USD"))
    assert row_counts(kit) == before
    assert kit.balance("cus_1").totals == {"USD": Money(MAX_AMOUNT, "USD")}
    top_up(kit, "pay_3", Money(1, "EUR"))  # each currency has its own room
    assert kit.balance("cus_1").totals["EUR"] == Money(1, "EUR")

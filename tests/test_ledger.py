"""The journal shapes and the balance check (``src/refundkit/_ledger.py``), as pure functions.

Issue 24: every test used to hand ``is_balanced`` a balanced journal, so removing its loop,
flipping the sign of debits or turning ``+`` into ``-`` went unnoticed. Each test names the
mutant (``tools/mutate.py``) it kills."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from refundkit import Destination, JournalLine, Money, Payment, Refund, RefundStatus
from refundkit._ledger import (
    clearing_account,
    debit_account,
    is_balanced,
    refund_journal,
    reversal_journal,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def line(side: str, minor: int, journal: str = "jr_1", currency: str = "USD") -> JournalLine:
    return JournalLine(journal, "rf_1", "refund", f"acct_{side}", side,  # type: ignore[arg-type]
                       Money(minor, currency), T0)  # fmt: skip


def payment(destination: Destination = Destination.INVOICE) -> Payment:
    return Payment("pay_1", "cus_1", Money(5000, "USD"), "sandbox", "sbx_1", destination, T0)


def refund(minor: int = 1250) -> Refund:
    return Refund("rf_1", "pay_1", Money(minor, "USD"), RefundStatus.SUCCEEDED, None, None, None,
                  "sandbox", "gk_1", "re_1", T0, T0)  # fmt: skip


# --- the balance check ------------------------------------------------------------------------


def test_a_debit_and_an_equal_credit_balance() -> None:
    assert is_balanced([line("debit", 100), line("credit", 100)])
    assert is_balanced([])  # nothing posted: nothing out of balance


@pytest.mark.parametrize(
    "lines",
    [
        [line("debit", 100), line("credit", 90)],
        [line("debit", 100)],
        [line("credit", 100)],
        [line("debit", 100), line("debit", 100)],
        [line("credit", 100), line("credit", 100)],
        [line("debit", 100), line("credit", 50), line("credit", 49)],
    ],
    ids=["short credit", "debit only", "credit only", "two debits", "two credits", "one short"],
)
def test_a_journal_whose_debits_and_credits_differ_is_not_balanced(
    lines: list[JournalLine],
) -> None:
    """Kills, in ``is_balanced``: the loop removed (everything balanced), the sign of debits
    or credits forced (``1`` → ``0``, ``-1`` → ``-0``, the ``if`` forced), ``*`` → ``//``,
    the start ``0`` → ``1``, and ``v == 0`` → ``v != 0`` / ``v == 1``. Flipping the sign of
    *every* line (``== 'debit'`` → ``!=``) or summing with ``-`` instead of ``+`` negates each
    total, and a total is zero exactly when its negation is: those two are equivalent
    (docs/testing.md)."""
    assert not is_balanced(lines)


def test_each_journal_balances_on_its_own() -> None:
    """Two journals that cancel out together are still each out of balance."""
    assert not is_balanced([line("debit", 100, "jr_1"), line("credit", 100, "jr_2")])
    assert is_balanced([line("debit", 100, "jr_1"), line("credit", 100, "jr_1"),
                        line("debit", 7, "jr_2"), line("credit", 7, "jr_2")])  # fmt: skip


def test_each_currency_balances_on_its_own() -> None:
    """100 USD against 100 EUR is not balanced, however equal the numbers."""
    assert not is_balanced([line("debit", 100), line("credit", 100, currency="EUR")])


# --- the journal shapes -----------------------------------------------------------------------


def test_a_refund_of_an_invoice_payment_debits_refunds_and_credits_the_gateway() -> None:
    """Kills the ``if`` in ``debit_account`` forced true."""
    lines = refund_journal(refund(), payment(), T0)
    assert [(x.journal_id, x.refund_id, x.kind, x.account, x.side, x.amount) for x in lines] == [
        ("jr_rf_1", "rf_1", "refund", "refunds", "debit", Money(1250, "USD")),
        ("jr_rf_1", "rf_1", "refund", "gateway_clearing:sandbox", "credit", Money(1250, "USD")),
    ]
    assert {x.posted_at for x in lines} == {T0}
    assert is_balanced(lines)


@pytest.mark.parametrize(
    ("destination", "from_balance"),
    [(Destination.CUSTOMER_BALANCE, False), (Destination.INVOICE, True)],
    ids=["a top-up", "credit issued earlier"],
)
def test_money_out_of_the_customer_balance_debits_the_balance(
    destination: Destination, from_balance: bool
) -> None:
    """Kills ``or`` → ``and`` and ``is`` → ``is not`` in ``debit_account``, and its body
    removed."""
    assert debit_account(payment(destination), from_balance) == "customer_balance:cus_1"
    [debit, credit] = refund_journal(refund(), payment(destination), T0, from_balance)
    assert (debit.account, debit.side) == ("customer_balance:cus_1", "debit")
    assert (credit.account, credit.side) == ("gateway_clearing:sandbox", "credit")


def test_a_reversal_is_the_mirror_image() -> None:
    lines = reversal_journal(refund(), payment(), T0)
    assert [(x.journal_id, x.kind, x.account, x.side, x.amount) for x in lines] == [
        ("jv_rf_1", "reversal", "gateway_clearing:sandbox", "debit", Money(1250, "USD")),
        ("jv_rf_1", "reversal", "refunds", "credit", Money(1250, "USD")),
    ]
    assert is_balanced(lines)


def test_a_reversal_of_balance_money_credits_the_balance_back() -> None:
    [_, credit] = reversal_journal(refund(), payment(Destination.CUSTOMER_BALANCE), T0)
    assert (credit.account, credit.side) == ("customer_balance:cus_1", "credit")
    [_, credit] = reversal_journal(refund(), payment(), T0, from_balance=True)
    assert credit.account == "customer_balance:cus_1"


def test_money_of_an_invoice_payment_comes_from_refunds_unless_said_otherwise() -> None:
    """``from_balance`` defaults to false. Kills its default ``False`` → ``True``."""
    assert debit_account(payment()) == "refunds"
    assert debit_account(payment(), from_balance=True) == "customer_balance:cus_1"


def test_the_clearing_account_names_the_gateway() -> None:
    assert clearing_account(payment()) == "gateway_clearing:sandbox"

"""Accounting: a balanced journal per refund, the same shape for both destinations."""

from __future__ import annotations

from datetime import datetime

from ._model import Destination, JournalLine, Payment, Refund


def debit_account(payment: Payment, from_balance: bool = False) -> str:
    """Contra revenue for invoice payments; the customer's balance (a liability) when the
    money comes out of it (a top-up, or credit issued earlier)."""
    if from_balance or payment.destination is Destination.CUSTOMER_BALANCE:
        return f"customer_balance:{payment.customer_id}"
    return "refunds"


def clearing_account(payment: Payment) -> str:
    return f"gateway_clearing:{payment.gateway}"


def refund_journal(
    refund: Refund, payment: Payment, posted_at: datetime, from_balance: bool = False
) -> list[JournalLine]:
    """Debit refunds (or the customer balance), credit the gateway's clearing account."""
    jid = f"jr_{refund.id}"
    return [
        JournalLine(
            jid,
            refund.id,
            "refund",
            debit_account(payment, from_balance),
            "debit",
            refund.amount,
            posted_at,
        ),
        JournalLine(
            jid, refund.id, "refund", clearing_account(payment), "credit", refund.amount, posted_at
        ),
    ]


def reversal_journal(
    refund: Refund, payment: Payment, posted_at: datetime, from_balance: bool = False
) -> list[JournalLine]:
    """The mirror image, for a refund that succeeded and later failed at the gateway."""
    jid = f"jv_{refund.id}"
    return [
        JournalLine(
            jid, refund.id, "reversal", clearing_account(payment), "debit", refund.amount, posted_at
        ),
        JournalLine(
            jid,
            refund.id,
            "reversal",
            debit_account(payment, from_balance),
            "credit",
            refund.amount,
            posted_at,
        ),
    ]


def is_balanced(lines: list[JournalLine]) -> bool:
    """Debits equal credits per journal and currency."""
    totals: dict[tuple[str, str], int] = {}
    for line in lines:
        key = (line.journal_id, line.amount.currency)
        sign = 1 if line.side == "debit" else -1
        totals[key] = totals.get(key, 0) + sign * line.amount.amount
    return all(v == 0 for v in totals.values())

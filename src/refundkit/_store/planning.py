"""The planner's read model: candidate payments and lots in each strategy's order, and the
refundable balances a refusal lists (``_engine.planning`` reads them through the functions
below; the ids stream, so a planner that stops early reads little)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .._money import Money
from .._planner import Source
from .._schema import from_db_time
from ._tx import stream

if TYPE_CHECKING:
    from ._tx import Tx

# A payment's refundable balance for listings: its own, bounded by what is left of a top-up's
# lot, and zero when disputed (the built-in rules that apply to every payment).
_LISTED_REFUNDABLE = (
    "CASE WHEN p.disputed = 1 THEN 0"
    " WHEN p.destination = 'customer_balance' AND l.remaining < p.amount - p.held - p.credited"
    " THEN l.remaining ELSE p.amount - p.held - p.credited END"
)
_LISTED_FROM = (
    "FROM payments p LEFT JOIN balance_lots l ON p.destination = 'customer_balance'"
    " AND l.funding_payment_id = p.id AND l.kind = 'top_up'"
    " WHERE p.customer_id = :cid AND p.currency = :cur"
)

SQL: dict[str, str] = {
    # Planner candidates: ids in strategy order, streamed (see RefundKit.plan_refund).
    "plan_newest": (
        "SELECT id FROM payments WHERE customer_id = :cid AND currency = :cur"
        " ORDER BY captured_at DESC, id DESC"
    ),
    "plan_oldest": (
        "SELECT id FROM payments WHERE customer_id = :cid AND currency = :cur"
        " ORDER BY captured_at, id"
    ),
    "plan_largest": (
        "SELECT id FROM payments WHERE customer_id = :cid AND currency = :cur"
        " ORDER BY amount - held - credited DESC, captured_at DESC, id DESC"
    ),
    "plan_cover": (
        "SELECT id FROM payments WHERE customer_id = :cid AND currency = :cur"
        " AND amount - held - credited >= :total ORDER BY captured_at DESC, id DESC"
    ),
    # The largest refundable balances, and their count and sum, for a single_source refusal.
    "plan_refundable": (
        f"SELECT p.id, p.invoice_id, p.gateway, p.captured_at, {_LISTED_REFUNDABLE} AS refundable"
        f" {_LISTED_FROM} AND {_LISTED_REFUNDABLE} > 0 ORDER BY refundable DESC, p.id LIMIT :top"
    ),
    "plan_refundable_totals": (
        f"SELECT count(*), coalesce(sum(r), 0) FROM (SELECT {_LISTED_REFUNDABLE} AS r"
        f" {_LISTED_FROM}) AS t WHERE r > 0"
    ),
    "plan_lots_newest": (
        "SELECT id FROM balance_lots WHERE customer_id = :cid AND currency = :cur"
        " AND remaining > 0 ORDER BY seq DESC"
    ),
    "plan_lots_oldest": (
        "SELECT id FROM balance_lots WHERE customer_id = :cid AND currency = :cur"
        " AND remaining > 0 ORDER BY seq"
    ),
    "plan_lots_largest": (
        "SELECT id FROM balance_lots WHERE customer_id = :cid AND currency = :cur"
        " AND remaining > 0 ORDER BY remaining DESC, seq DESC"
    ),
    "plan_lots_cover": (
        "SELECT id FROM balance_lots WHERE customer_id = :cid AND currency = :cur"
        " AND remaining >= :total ORDER BY seq DESC"
    ),
}


def candidate_ids(
    tx: Tx, order: str, customer_id: str, total: Money, *, lots: bool = False
) -> Iterator[str]:
    """The customer's payment ids (or balance lot ids) in ``order``: ``newest``, ``oldest``,
    ``largest``, or ``cover`` (those that alone hold ``total``)."""
    values: dict[str, object] = {"cid": customer_id, "cur": total.currency}
    if order == "cover":
        values["total"] = total.amount
    name = f"plan_lots_{order}" if lots else f"plan_{order}"
    for (found,) in stream(tx, name, **values):
        yield found


def largest_refundable(tx: Tx, customer_id: str, currency: str, top: int) -> list[Source]:
    """The ``top`` largest refundable balances of the customer's payments, largest first."""
    rows = tx.run("plan_refundable", cid=customer_id, cur=currency, top=top).fetchall()
    return [
        Source(
            payment_id=pid,
            gateway=gateway,
            captured_at=from_db_time(captured),
            available=Money(refundable, currency),
            invoice_id=invoice_id,
        )
        for pid, invoice_id, gateway, captured, refundable in rows
    ]


def refundable_totals(tx: Tx, customer_id: str, currency: str) -> tuple[int, Money]:
    """How many of the customer's payments have a refundable balance, and its sum."""
    row = tx.run("plan_refundable_totals", cid=customer_id, cur=currency).fetchone()
    return int(row[0]), Money(int(row[1]), currency)

"""Balance lots: what a top-up or a credit put in a customer's balance, what is left of it,
and every movement in or out (docs/balances.md). A lot comes back as a ``BalanceLot``.

A path that spends a lot reads it with ``lock=True`` (``FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), after the payment's lock when it has one: the
lock order is payment, invoice, customer balance. ``move_lot`` never takes a lot below zero: a
lot that no longer holds the amount is ``InsufficientBalance`` (nothing of the transaction is
written), never the database's CHECK violation.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, Unpack

from .._balances import BalanceLot
from .._errors import InsufficientBalance
from .._model import Payment
from .._money import Money
from .._schema import from_db_time, to_db_time
from ._rows import dicts
from ._tx import insert_sql

if TYPE_CHECKING:
    from ._tx import Tx

_LOT_COLUMNS = "id, customer_id, currency, kind, funding_payment_id, amount, remaining, created_at"

SQL: dict[str, str] = {
    "lot_for_payment": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots"
        " WHERE funding_payment_id = :pid AND kind = 'top_up'"
    ),
    "lock_lot_for_payment": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots"
        " WHERE funding_payment_id = :pid AND kind = 'top_up' FOR UPDATE"
    ),
    "get_lot": f"SELECT {_LOT_COLUMNS} FROM balance_lots WHERE id = :id",
    "lock_lot": f"SELECT {_LOT_COLUMNS} FROM balance_lots WHERE id = :id FOR UPDATE",
    "credit_lots_of_payment": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots"
        " WHERE funding_payment_id = :pid AND kind = 'credit' ORDER BY seq"
    ),
    "lot_spent_on": (
        "SELECT reference FROM balance_movements "
        "WHERE lot_id = :lot AND kind = 'redemption' ORDER BY id"
    ),
    "insert_lot": insert_sql("balance_lots", _LOT_COLUMNS),
    # Conditional, so a lot spent meanwhile is refused here rather than by the CHECK.
    "move_lot": (
        "UPDATE balance_lots SET remaining = remaining + :delta"
        " WHERE id = :lot AND remaining + :delta >= 0"
    ),
    "insert_movement": insert_sql(
        "balance_movements", "lot_id, kind, amount, reference, refund_id, created_at"
    ),
    "customer_lots": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots WHERE customer_id = :cid ORDER BY seq"
    ),
    # In one order (creation), so two workers spending one balance never deadlock.
    "lock_customer_lots": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots WHERE customer_id = :cid ORDER BY seq FOR UPDATE"
    ),
}


def lot_from_row(r: dict[str, Any]) -> BalanceLot:
    cur = r["currency"]
    created = r["created_at"]
    return BalanceLot(
        id=r["id"],
        kind=r["kind"],
        amount=Money(r["amount"], cur),
        remaining=Money(r["remaining"], cur),
        funding_payment_id=r["funding_payment_id"],
        created_at=from_db_time(created) if isinstance(created, str) else created,
    )


def _maybe_lot(row: dict[str, Any] | None) -> BalanceLot | None:
    return lot_from_row(row) if row is not None else None


def lot_for_payment(tx: Tx, payment_id: str, *, lock: bool = False) -> BalanceLot | None:
    """The top-up lot a customer-balance payment created (``lock``: to spend it)."""
    name = "lock_lot_for_payment" if lock else "lot_for_payment"
    return _maybe_lot(tx.first(name, pid=payment_id))


def get_lot(tx: Tx, lot_id: str, *, lock: bool = False) -> BalanceLot | None:
    return _maybe_lot(tx.first("lock_lot" if lock else "get_lot", id=lot_id))


def credit_lots_of_payment(tx: Tx, payment_id: str) -> list[BalanceLot]:
    return [lot_from_row(r) for r in dicts(tx.run("credit_lots_of_payment", pid=payment_id))]


def lot_spent_on(tx: Tx, lot_id: str) -> list[str]:
    return [r[0] for r in tx.all("lot_spent_on", lot=lot_id) if r[0]]


def insert_lot(
    tx: Tx, payment: Payment, lot_id: str, now: datetime, *, kind: str, amount: int
) -> None:
    tx.run(
        "insert_lot",
        id=lot_id,
        customer_id=payment.customer_id,
        currency=payment.amount.currency,
        kind=kind,
        funding_payment_id=payment.id,
        amount=amount,
        remaining=amount,
        created_at=to_db_time(now),
    )


class Movement(TypedDict):
    """Why a lot moved: what kind of movement, when, and what it was for (``move_lot`` passes
    it on to ``record_movement`` as it is)."""

    kind: str
    now: datetime
    reference: NotRequired[str | None]
    refund_id: NotRequired[str | None]


def record_movement(
    tx: Tx,
    lot_id: str,
    amount: int,
    *,
    kind: str,
    now: datetime,
    reference: str | None = None,
    refund_id: str | None = None,
) -> None:
    tx.run(
        "insert_movement",
        lot_id=lot_id,
        kind=kind,
        amount=amount,
        reference=reference,
        refund_id=refund_id,
        created_at=to_db_time(now),
    )


def move_lot(tx: Tx, lot_id: str, delta: int, **why: Unpack[Movement]) -> None:
    """Change a lot's remaining amount and record why (negative consumes). A lot that does
    not hold ``-delta`` any more (spent by another worker) raises ``InsufficientBalance``."""
    tx.run("move_lot", lot=lot_id, delta=delta)
    if tx.rowcount() != 1:
        raise InsufficientBalance(
            f"the customer balance no longer holds what this needs: balance lot {lot_id} "
            "was spent meanwhile; nothing was written"
        )
    record_movement(tx, lot_id, delta, **why)


def customer_lots(tx: Tx, customer_id: str, *, lock: bool = False) -> list[BalanceLot]:
    """The customer's lots, oldest first (``lock``: all of them, in that order, to spend)."""
    name = "lock_customer_lots" if lock else "customer_lots"
    return [lot_from_row(r) for r in dicts(tx.run(name, cid=customer_id))]

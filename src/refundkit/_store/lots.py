"""Balance lots: what a top-up or a credit put in a customer's balance, what is left of it,
and every movement in or out (docs/balances.md). A lot comes back as a ``BalanceLot``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, Unpack

from .._balances import BalanceLot
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
    "get_lot": f"SELECT {_LOT_COLUMNS} FROM balance_lots WHERE id = :id",
    "credit_lots_of_payment": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots"
        " WHERE funding_payment_id = :pid AND kind = 'credit' ORDER BY seq"
    ),
    "lot_spent_on": (
        "SELECT reference FROM balance_movements "
        "WHERE lot_id = :lot AND kind = 'redemption' ORDER BY id"
    ),
    "insert_lot": insert_sql("balance_lots", _LOT_COLUMNS),
    "move_lot": "UPDATE balance_lots SET remaining = remaining + :delta WHERE id = :lot",
    "insert_movement": insert_sql(
        "balance_movements", "lot_id, kind, amount, reference, refund_id, created_at"
    ),
    "customer_lots": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots WHERE customer_id = :cid ORDER BY seq"
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


def lot_for_payment(tx: Tx, payment_id: str) -> BalanceLot | None:
    """The top-up lot a customer-balance payment created."""
    return _maybe_lot(tx.first("lot_for_payment", pid=payment_id))


def get_lot(tx: Tx, lot_id: str) -> BalanceLot | None:
    return _maybe_lot(tx.first("get_lot", id=lot_id))


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
    """Change a lot's remaining amount and record why (negative consumes)."""
    tx.run("move_lot", lot=lot_id, delta=delta)
    record_movement(tx, lot_id, delta, **why)


def customer_lots(tx: Tx, customer_id: str) -> list[BalanceLot]:
    """The customer's lots, oldest first."""
    return [lot_from_row(r) for r in dicts(tx.run("customer_lots", cid=customer_id))]

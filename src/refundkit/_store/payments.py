"""Payments: what was captured, and the running totals (held, refunded, credited) the caps
check against (R-3.4)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._model import Card, Destination, Payment
from .._money import Money
from .._schema import from_db_time, payments, to_db_time
from ._rows import dicts, raw_mapping
from ._tx import insert_sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ._tx import Tx

_PAYMENT_COLUMNS = (
    "id, customer_id, currency, amount, held, refunded, credited, gateway, gateway_payment_id, "
    "destination, invoice_id, captured_at, card_brand, card_last4, card_first6, "
    "card_exp_month, card_exp_year, disputed, settled, created_at"
)

SQL: dict[str, str] = {
    "get_payment": f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = :id",
    "lock_payment": f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = :id FOR UPDATE",
    "lock_payment_row": "SELECT id FROM payments WHERE id = :id FOR UPDATE",
    # uq_payments_gateway_payment, asked before a payment is recorded (and its gateway told).
    "payment_id_of_gateway_payment": (
        "SELECT id FROM payments WHERE gateway = :gateway AND gateway_payment_id = :gpid"
    ),
    "insert_payment": insert_sql("payments", _PAYMENT_COLUMNS),
    "add_held": "UPDATE payments SET held = held + :delta WHERE id = :id",
    "set_payment_flags": (
        "UPDATE payments SET settled = :settled, disputed = :disputed WHERE id = :id"
    ),
    "add_refunded": (
        "UPDATE payments SET held = held + :held_delta, refunded = refunded + :delta "
        "WHERE id = :id RETURNING refunded"
    ),
    "add_credited": (
        "UPDATE payments SET credited = credited + :delta, held = held + :held_delta WHERE id = :id"
    ),
    "invoice_payments": (
        f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE invoice_id = :inv"
        " ORDER BY captured_at DESC, id DESC"
    ),
    # An invoice's payments locked in one fixed order (R-3.5: payment, then invoice, then
    # customer), so two credits from one invoice cannot deadlock.
    "lock_invoice_payments": (
        f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE invoice_id = :inv"
        " ORDER BY captured_at DESC, id DESC FOR UPDATE"
    ),
}


def payment_from_row(m: dict[str, Any]) -> Payment:
    card = None
    if m["card_last4"]:
        card = Card(
            brand=m["card_brand"] or "unknown",
            last4=m["card_last4"],
            exp_month=m["card_exp_month"],
            exp_year=m["card_exp_year"],
            first6=m["card_first6"],
        )
    cur = m["currency"]
    return Payment(
        id=m["id"],
        customer_id=m["customer_id"],
        amount=Money(m["amount"], cur),
        gateway=m["gateway"],
        gateway_payment_id=m["gateway_payment_id"],
        destination=Destination(m["destination"]),
        captured_at=from_db_time(m["captured_at"]),
        card=card,
        invoice_id=m["invoice_id"],
        disputed=bool(m["disputed"]),
        settled=bool(m["settled"]),
        held=Money(m["held"], cur),
        refunded=Money(m["refunded"], cur),
        credited=Money(m["credited"], cur),
    )


def get_payment(tx: Tx, payment_id: str, *, lock: bool = False) -> Payment | None:
    row = tx.first("lock_payment" if lock else "get_payment", id=payment_id)
    return payment_from_row(row) if row else None


def payment_id_of_gateway_payment(tx: Tx, gateway: str, gateway_payment_id: str) -> str | None:
    """The id a gateway's payment is recorded under, if it is."""
    row = tx.first("payment_id_of_gateway_payment", gateway=gateway, gpid=gateway_payment_id)
    return str(row["id"]) if row else None


def lock_payment_row(tx: Tx, payment_id: str) -> None:
    """Take the payment's row lock first, before any refund row (R-3 lock order: payment,
    then invoice, then customer). Without it on PostgreSQL, a confirm updating its refund row
    and then the payment deadlocks against a same-key reserve holding the payment and waiting
    on that refund row's unique-key entry. SQLite's BEGIN IMMEDIATE already serialises."""
    if tx.dialect.name != "sqlite":
        tx.run("lock_payment_row", id=payment_id)


def insert_payment(tx: Tx, p: Payment, now: datetime) -> None:
    c = p.card
    tx.run(
        "insert_payment",
        id=p.id,
        customer_id=p.customer_id,
        currency=p.amount.currency,
        amount=p.amount.amount,
        held=0,
        refunded=0,
        credited=0,
        gateway=p.gateway,
        gateway_payment_id=p.gateway_payment_id,
        destination=p.destination.value,
        invoice_id=p.invoice_id,
        captured_at=to_db_time(p.captured_at),
        card_brand=c.brand if c else None,
        card_last4=c.last4 if c else None,
        card_first6=c.first6 if c else None,
        card_exp_month=c.exp_month if c else None,
        card_exp_year=c.exp_year if c else None,
        disputed=int(p.disputed),
        settled=int(p.settled),
        created_at=to_db_time(now),
    )


def list_payments(conn: Connection, customer_id: str | None = None) -> list[Payment]:
    q = sa.select(payments).order_by(payments.c.created_at, payments.c.id)
    if customer_id is not None:
        q = q.where(payments.c.customer_id == customer_id)
    return [payment_from_row(raw_mapping(r)) for r in conn.execute(q)]


def set_payment_flags(tx: Tx, payment_id: str, *, settled: bool, disputed: bool) -> None:
    """What the gateway now says of the payment's settlement and dispute."""
    tx.run("set_payment_flags", id=payment_id, settled=int(settled), disputed=int(disputed))


def add_held(tx: Tx, payment_id: str, delta: int) -> None:
    tx.run("add_held", id=payment_id, delta=delta)


def add_refunded(tx: Tx, payment_id: str, delta: int, held_delta: int = 0) -> int:
    """Adjust the succeeded total (and the held total); return the new succeeded total."""
    row = tx.run("add_refunded", id=payment_id, delta=delta, held_delta=held_delta).fetchone()
    return int(row[0])


def add_credited(tx: Tx, payment_id: str, delta: int, held_delta: int = 0) -> None:
    tx.run("add_credited", id=payment_id, delta=delta, held_delta=held_delta)


def invoice_payments(tx: Tx, invoice_id: str, *, lock: bool = False) -> list[Payment]:
    name = "lock_invoice_payments" if lock else "invoice_payments"
    return [payment_from_row(r) for r in dicts(tx.run(name, inv=invoice_id))]


def payments_to_reconcile(
    conn: Connection,
    *,
    payment_id: str | None = None,
    gateway: str | None = None,
    since: datetime | None = None,
) -> list[Payment]:
    """The payments reconciliation looks at: one, a gateway's, or those captured since."""
    q = sa.select(payments).order_by(payments.c.captured_at, payments.c.id)
    if payment_id is not None:
        q = q.where(payments.c.id == payment_id)
    if gateway is not None:
        q = q.where(payments.c.gateway == gateway)
    if since is not None:
        q = q.where(payments.c.captured_at >= since)
    return [payment_from_row(raw_mapping(r)) for r in conn.execute(q)]

"""The store: SQLAlchemy Core on SQLite (default) or PostgreSQL. It never sees a gateway.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (R-3.3): the driver's own deferred
BEGIN is switched off, so a read-then-write can never be overtaken by another writer. On
PostgreSQL the payment row is locked with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.pool import StaticPool

from . import migrations
from ._errors import ConfigurationError, StoreNotFound
from ._model import Card, Destination, Event, JournalLine, Payment, Refund, RefundStatus
from ._money import Money
from ._schema import balance_lots, balance_movements, events, journal_lines, payments, refunds

_WRITE = "refundkit_write"
_DURABLE = "refundkit_durable"


def create_engine(url: str) -> Engine:
    """An engine set up the way refundkit needs (WAL and BEGIN IMMEDIATE on SQLite)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if memory:
            kwargs["poolclass"] = StaticPool  # one shared connection, or each sees its own DB
        engine = sa.create_engine(url, **kwargs)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    return engine


def parse_url(url: str) -> sa.engine.URL:
    try:
        return sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"not a database URL: {url!r}") from exc


def check_exists(url: str) -> None:
    """Refuse a missing SQLite file instead of creating an empty store."""
    parsed = parse_url(url)
    db = parsed.database
    if parsed.get_backend_name() == "sqlite" and db and db != ":memory:":
        if not Path(db).exists():
            raise StoreNotFound(
                f"no refundkit store at {db}: pass --db (or REFUNDKIT_DB), "
                "record a payment first, or try `refundkit demo`"
            )


def configure_sqlite(engine: Engine) -> None:
    """Take over transaction control on SQLite connections (also for a host's own engine)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    # Connections opened before we attached the listeners would miss them.
    engine.dispose(close=False)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        if self.is_sqlite:
            configure_sqlite(engine)
        self._write_engine = engine.execution_options(**{_WRITE: True})
        self.url = engine.url

    # --- transactions -----------------------------------------------------------------------

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """One short write transaction. ``durable=False`` skips the fsync on SQLite: only for
        advisory marks that recovery never relies on (see ``RefundKit._submit``)."""
        with self._write_engine.connect() as conn:
            raw = conn.connection.dbapi_connection if self.is_sqlite and not durable else None
            if raw is not None:
                raw.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    yield conn
            finally:
                if raw is not None:
                    raw.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- schema -----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create or upgrade the schema with Alembic (skipped when already at HEAD)."""
        with self.write() as conn:
            if self._revision(conn) == migrations.HEAD:
                return
            from alembic import command
            from alembic.config import Config

            cfg = Config()
            cfg.set_main_option("script_location", "refundkit:migrations")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def _revision(self, conn: Connection) -> str | None:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def dispose(self) -> None:
        self.engine.dispose()


# --- payments -------------------------------------------------------------------------------

_SELECT_PAYMENT = sa.select(payments).where(payments.c.id == sa.bindparam("id"))
_LOCK_PAYMENT = _SELECT_PAYMENT.with_for_update()


def payment_from_row(row: Row[Any] | sa.RowMapping) -> Payment:
    m = row._mapping if isinstance(row, Row) else row
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
        captured_at=m["captured_at"],
        card=card,
        invoice_id=m["invoice_id"],
        disputed=bool(m["disputed"]),
        settled=bool(m["settled"]),
        held=Money(m["held"], cur),
        refunded=Money(m["refunded"], cur),
    )


def get_payment(conn: Connection, payment_id: str, *, lock: bool = False) -> Payment | None:
    row = conn.execute(_LOCK_PAYMENT if lock else _SELECT_PAYMENT, {"id": payment_id}).first()
    return payment_from_row(row) if row else None


def payment_values(p: Payment, now: datetime) -> dict[str, Any]:
    c = p.card
    return {
        "id": p.id,
        "customer_id": p.customer_id,
        "currency": p.amount.currency,
        "amount": p.amount.amount,
        "held": 0,
        "refunded": 0,
        "gateway": p.gateway,
        "gateway_payment_id": p.gateway_payment_id,
        "destination": p.destination.value,
        "invoice_id": p.invoice_id,
        "captured_at": p.captured_at,
        "card_brand": c.brand if c else None,
        "card_last4": c.last4 if c else None,
        "card_first6": c.first6 if c else None,
        "card_exp_month": c.exp_month if c else None,
        "card_exp_year": c.exp_year if c else None,
        "disputed": int(p.disputed),
        "settled": int(p.settled),
        "created_at": now,
    }


def list_payments(conn: Connection, customer_id: str | None = None) -> list[Payment]:
    q = sa.select(payments).order_by(payments.c.created_at, payments.c.id)
    if customer_id is not None:
        q = q.where(payments.c.customer_id == customer_id)
    return [payment_from_row(r) for r in conn.execute(q)]


_ADD_HELD = (
    payments.update()
    .where(payments.c.id == sa.bindparam("pid"))
    .values(held=payments.c.held + sa.bindparam("delta"))
)
_ADD_REFUNDED = (
    payments.update()
    .where(payments.c.id == sa.bindparam("pid"))
    .values(
        held=payments.c.held + sa.bindparam("held_delta"),
        refunded=payments.c.refunded + sa.bindparam("delta"),
    )
    .returning(payments.c.held, payments.c.refunded)
)


def add_held(conn: Connection, payment_id: str, delta: int) -> None:
    conn.execute(_ADD_HELD, {"pid": payment_id, "delta": delta})


def add_refunded(conn: Connection, payment_id: str, delta: int, held_delta: int = 0) -> int:
    """Adjust the succeeded total (and the held total); return the new succeeded total."""
    row = conn.execute(
        _ADD_REFUNDED, {"pid": payment_id, "delta": delta, "held_delta": held_delta}
    ).one()
    return int(row.refunded)


# --- refunds --------------------------------------------------------------------------------

_REFUND_STATS = sa.select(
    sa.func.count(),
    sa.func.coalesce(sa.func.sum(sa.case((refunds.c.status == "unknown", 1), else_=0)), 0),
).where(
    refunds.c.payment_id == sa.bindparam("pid"),
    refunds.c.status.not_in(["failed", "reversed"]),
)


def refund_stats(conn: Connection, payment_id: str) -> tuple[int, int]:
    """(refunds holding balance, of which unknown) for one payment."""
    count, unknown = conn.execute(_REFUND_STATS, {"pid": payment_id}).one()
    return int(count), int(unknown)


def refund_from_row(row: Row[Any]) -> Refund:
    m = row._mapping
    return Refund(
        id=m["id"],
        payment_id=m["payment_id"],
        amount=Money(m["amount"], m["currency"]),
        status=RefundStatus(m["status"]),
        reason=m["reason"],
        actor=m["actor"],
        idempotency_key=m["idempotency_key"],
        gateway=m["gateway"],
        gateway_idempotency_key=m["gateway_idempotency_key"],
        gateway_refund_id=m["gateway_refund_id"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        failure_code=m["failure_code"],
        failure_message=m["failure_message"],
        attempts=m["attempts"],
    )


_INSERT_REFUND = refunds.insert()
_BY_ID = sa.select(refunds).where(refunds.c.id == sa.bindparam("v"))
_BY_KEY = sa.select(refunds).where(refunds.c.idempotency_key == sa.bindparam("v"))


def insert_refund(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(_INSERT_REFUND, values)


def get_refund(conn: Connection, refund_id: str) -> Refund | None:
    row = conn.execute(_BY_ID, {"v": refund_id}).first()
    return refund_from_row(row) if row else None


def refund_fingerprint(conn: Connection, refund_id: str) -> str | None:
    return conn.execute(
        sa.select(refunds.c.request_fingerprint).where(refunds.c.id == refund_id)
    ).scalar()


def refund_by_key(conn: Connection, key: str) -> tuple[Refund, str] | None:
    row = conn.execute(_BY_KEY, {"v": key}).first()
    return (refund_from_row(row), row._mapping["request_fingerprint"]) if row else None


def refund_by_gateway_id(conn: Connection, gateway: str, gateway_refund_id: str) -> Refund | None:
    row = conn.execute(
        sa.select(refunds).where(
            refunds.c.gateway == gateway, refunds.c.gateway_refund_id == gateway_refund_id
        )
    ).first()
    return refund_from_row(row) if row else None


def refund_is_void(conn: Connection, refund_id: str) -> bool:
    return bool(conn.execute(sa.select(refunds.c.void).where(refunds.c.id == refund_id)).scalar())


def list_refunds(
    conn: Connection,
    *,
    payment_id: str | None = None,
    statuses: Sequence[str] | None = None,
) -> list[Refund]:
    q = sa.select(refunds).order_by(refunds.c.created_at, refunds.c.id)
    if payment_id is not None:
        q = q.where(refunds.c.payment_id == payment_id)
    if statuses is not None:
        q = q.where(refunds.c.status.in_(list(statuses)))
    return [refund_from_row(r) for r in conn.execute(q)]


_TRANSITION = refunds.update().where(
    refunds.c.id == sa.bindparam("rid"), refunds.c.status.in_(sa.bindparam("froms", expanding=True))
)


def transition_refund(
    conn: Connection, refund_id: str, froms: Sequence[str], values: dict[str, Any]
) -> bool:
    """Move a refund only if it is still in one of ``froms``; False if someone else moved it."""
    result = conn.execute(_TRANSITION.values(**values), {"rid": refund_id, "froms": list(froms)})
    return result.rowcount == 1


def update_refund(conn: Connection, refund_id: str, values: dict[str, Any]) -> None:
    conn.execute(refunds.update().where(refunds.c.id == refund_id).values(**values))


# --- balance lots ---------------------------------------------------------------------------

_LOT_FOR_PAYMENT = sa.select(balance_lots).where(
    balance_lots.c.funding_payment_id == sa.bindparam("pid")
)


def lot_for_payment(conn: Connection, payment_id: str) -> sa.RowMapping | None:
    row = conn.execute(_LOT_FOR_PAYMENT, {"pid": payment_id}).first()
    return row._mapping if row else None


def lot_spent_on(conn: Connection, lot_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(balance_movements.c.reference)
        .where(balance_movements.c.lot_id == lot_id, balance_movements.c.kind == "redemption")
        .order_by(balance_movements.c.id)
    )
    return [r.reference for r in rows if r.reference]


def insert_lot(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(balance_lots.insert(), values)


_MOVE_LOT = (
    balance_lots.update()
    .where(balance_lots.c.id == sa.bindparam("lid"))
    .values(remaining=balance_lots.c.remaining + sa.bindparam("delta"))
)


def move_lot(
    conn: Connection,
    lot_id: str,
    delta: int,
    *,
    kind: str,
    now: datetime,
    reference: str | None = None,
    refund_id: str | None = None,
) -> None:
    """Change a lot's remaining amount and record why (negative consumes)."""
    conn.execute(_MOVE_LOT, {"lid": lot_id, "delta": delta})
    conn.execute(
        balance_movements.insert(),
        {
            "lot_id": lot_id,
            "kind": kind,
            "amount": delta,
            "reference": reference,
            "refund_id": refund_id,
            "created_at": now,
        },
    )


def customer_lots(conn: Connection, customer_id: str) -> list[sa.RowMapping]:
    rows = conn.execute(
        sa.select(balance_lots)
        .where(balance_lots.c.customer_id == customer_id)
        .order_by(balance_lots.c.created_at, balance_lots.c.id)
    )
    return [r._mapping for r in rows]


# --- events and journal ---------------------------------------------------------------------

_INSERT_EVENT = events.insert()
_INSERT_LINES = journal_lines.insert()


def insert_event(conn: Connection, payload: dict[str, Any], refund_id: str | None) -> None:
    conn.execute(
        _INSERT_EVENT,
        {
            "id": payload["id"],
            "type": payload["type"],
            "created": payload["created"],
            "refund_id": refund_id,
            "payload": json.dumps(payload, separators=(",", ":"), sort_keys=True),
        },
    )


def _event_from_row(row: Row[Any]) -> Event:
    payload = json.loads(row.payload)
    return Event(row.seq, row.id, row.type, row.created, payload["data"])


def list_events(
    conn: Connection,
    *,
    after_seq: int = 0,
    refund_id: str | None = None,
    limit: int | None = None,
    undispatched: bool = False,
) -> list[Event]:
    q = sa.select(events).where(events.c.seq > after_seq).order_by(events.c.seq)
    if refund_id is not None:
        q = q.where(events.c.refund_id == refund_id)
    if undispatched:
        q = q.where(events.c.dispatched_at.is_(None))
    if limit is not None:
        q = q.limit(limit)
    return [_event_from_row(r) for r in conn.execute(q)]


def event_seq(conn: Connection, event_id: str) -> int | None:
    return conn.execute(sa.select(events.c.seq).where(events.c.id == event_id)).scalar()


def mark_dispatched(conn: Connection, seqs: Sequence[int], now: datetime) -> None:
    conn.execute(
        events.update()
        .where(events.c.seq.in_(list(seqs)), events.c.dispatched_at.is_(None))
        .values(dispatched_at=now)
    )


def insert_journal(conn: Connection, lines: Sequence[JournalLine]) -> None:
    conn.execute(
        _INSERT_LINES,
        [
            {
                "journal_id": line.journal_id,
                "refund_id": line.refund_id,
                "kind": line.kind,
                "account": line.account,
                "side": line.side,
                "currency": line.amount.currency,
                "amount": line.amount.amount,
                "posted_at": line.posted_at,
            }
            for line in lines
        ],
    )


def list_journal(conn: Connection, refund_id: str | None = None) -> list[JournalLine]:
    q = sa.select(journal_lines).order_by(journal_lines.c.id)
    if refund_id is not None:
        q = q.where(journal_lines.c.refund_id == refund_id)
    return [
        JournalLine(
            r.journal_id,
            r.refund_id,
            r.kind,
            r.account,
            r.side,
            Money(r.amount, r.currency),
            r.posted_at,
        )
        for r in conn.execute(q)
    ]

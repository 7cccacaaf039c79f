"""The store: SQLAlchemy on SQLite (default) or PostgreSQL. It never sees a gateway.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (R-3.3): the driver's own deferred
BEGIN is switched off, so a read-then-write can never be overtaken by another writer. On
PostgreSQL the payment row is locked with ``SELECT … FOR UPDATE``.

SQLAlchemy owns the engine, the pool, the schema and the migrations, and compiles every
statement below for the store's dialect once. The refund path then runs those statements on
the pooled DBAPI connection (``Tx``): per-execution overhead of the full Core pipeline would
otherwise cost more than the durable writes themselves (see benchmarks/refund_overhead.py).
"""

from __future__ import annotations

import contextlib
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
from ._errors import ConfigurationError, StoreNotFound, StoreUnavailable
from ._model import Card, Destination, Event, JournalLine, Payment, Refund, RefundStatus, iso
from ._money import Money
from ._schema import (
    IN_FLIGHT_STATUSES,
    IN_FLIGHT_WHERE,
    STATUSES,
    events,
    from_db_time,
    journal_lines,
    payments,
    refunds,
    to_db_time,
)

_WRITE = "refundkit_write"


def create_engine(url: str) -> Engine:
    """An engine set up the way refundkit needs (WAL and BEGIN IMMEDIATE on SQLite)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": 30},
            # Every refundkit transaction ends in commit or rollback: skip the pool's own.
            "pool_reset_on_return": None,
        }
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
    is_file = parsed.get_backend_name() == "sqlite" and db and db != ":memory:"
    if is_file and not Path(str(db)).exists():
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


def unavailable(exc: Exception) -> StoreUnavailable:
    """The database's own words, on one line; nothing of the transaction was written."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
    return StoreUnavailable(
        f"the store could not complete the transaction ({type(exc).__name__}: {text}); "
        "nothing of it was written: retry"
    )


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        if self.is_sqlite:
            configure_sqlite(engine)
        self._write_engine = engine.execution_options(**{_WRITE: True})
        self.url = engine.url
        self._sql = {name: Prepared(sql, engine.dialect) for name, sql in SQL.items()}
        dbapi = engine.dialect.loaded_dbapi
        #: What a unique or CHECK violation raises, through Core or on the raw connection.
        self.integrity_errors: tuple[type[Exception], ...] = (
            sa.exc.IntegrityError,
            dbapi.IntegrityError,
        )
        #: What a lost connection, a lock timeout or a deadlock raises: ``StoreUnavailable``.
        self.unavailable_errors: tuple[type[Exception], ...] = (
            sa.exc.OperationalError,
            sa.exc.InterfaceError,
            dbapi.OperationalError,
            dbapi.InterfaceError,
        )

    # --- transactions -----------------------------------------------------------------------

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Tx]:
        """One short write transaction (``BEGIN IMMEDIATE`` on SQLite).

        ``durable=False`` skips the fsync on SQLite: only for advisory marks that recovery
        never relies on (see ``RefundKit._submit``)."""
        raw = self._raw()
        try:
            fast = self.is_sqlite and not durable
            if fast:
                raw.cursor().execute("PRAGMA synchronous=NORMAL")
            if self.is_sqlite:
                raw.cursor().execute("BEGIN IMMEDIATE")
            try:
                yield Tx(raw, self._sql, self.engine.dialect)
            except BaseException:
                with contextlib.suppress(*self.unavailable_errors):  # keep the first error
                    raw.rollback()
                raise
            raw.commit()
            if fast:
                raw.cursor().execute("PRAGMA synchronous=FULL")
        except self.unavailable_errors as exc:
            raise unavailable(exc) from exc
        finally:
            raw.close()  # back to the pool

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A consistent read (one snapshot) for several statements."""
        raw = self._raw()
        try:
            if self.is_sqlite:
                raw.cursor().execute("BEGIN")
            try:
                yield Tx(raw, self._sql, self.engine.dialect)
            finally:
                with contextlib.suppress(*self.unavailable_errors):
                    raw.rollback()
        except self.unavailable_errors as exc:
            raise unavailable(exc) from exc
        finally:
            raw.close()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A SQLAlchemy connection, for ad-hoc Core queries (reports, tests)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except self.unavailable_errors as exc:
            raise unavailable(exc) from exc

    def _raw(self) -> Any:
        try:
            return self.engine.raw_connection()
        except self.unavailable_errors as exc:
            raise unavailable(exc) from exc

    # --- schema -----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create or upgrade the schema with Alembic (skipped when already at HEAD)."""
        with self._write_engine.connect() as conn, conn.begin():
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

# --- statements -------------------------------------------------------------------------------


class Prepared:
    """A statement compiled once for the store's dialect; run on a DBAPI cursor."""

    def __init__(self, sql: str, dialect: sa.engine.Dialect) -> None:
        for suffix in (" FOR UPDATE SKIP LOCKED", " FOR UPDATE"):
            if sql.endswith(suffix):
                sql = sql.removesuffix(suffix)
                # SQLite has no row locks: BEGIN IMMEDIATE already holds the write lock.
                if dialect.name != "sqlite":
                    sql += suffix
                break
        compiled = sa.text(sql).compile(dialect=dialect)
        self.sql = str(compiled)
        positional = compiled.positional
        self.names: list[str] | None = list(compiled.positiontup or ()) if positional else None

    def params(self, values: dict[str, Any]) -> Any:
        if self.names is None:
            return values
        return tuple(values[name] for name in self.names)


_PAYMENT_COLUMNS = (
    "id, customer_id, currency, amount, held, refunded, credited, gateway, gateway_payment_id, "
    "destination, invoice_id, captured_at, card_brand, card_last4, card_first6, "
    "card_exp_month, card_exp_year, disputed, settled, created_at"
)
_REFUND_COLUMNS = (
    "id, payment_id, gateway, currency, amount, status, reason, actor, idempotency_key, "
    "request_fingerprint, gateway_idempotency_key, gateway_refund_id, void, failure_code, "
    "failure_message, attempts, next_attempt_at, created_at, updated_at, lot_id"
)
_RESOLUTION_COLUMNS = "refund_id, status, resolved_by, note, resolved_at, gateway_checked"
_LOT_COLUMNS = "id, customer_id, currency, kind, funding_payment_id, amount, remaining, created_at"


# Due for recovery: unknown or pending at or after their next attempt; reserved or submitted
# once abandoned (not touched for the in-flight timeout) and not leased to another worker.
# Times are fixed-width ISO text, so they compare as text on both databases.
_DUE = (
    f"{IN_FLIGHT_WHERE} AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
    " AND (status IN ('unknown', 'pending') OR updated_at <= :stale)"
)
_CLAIM = "ORDER BY created_at, id LIMIT :batch FOR UPDATE SKIP LOCKED"


def _insert(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"


SQL: dict[str, str] = {
    "get_payment": f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = :id",
    "lock_payment": f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = :id FOR UPDATE",
    "lock_payment_row": "SELECT id FROM payments WHERE id = :id FOR UPDATE",
    "insert_payment": _insert("payments", _PAYMENT_COLUMNS),
    "add_held": "UPDATE payments SET held = held + :delta WHERE id = :id",
    "insert_resolution": _insert("refund_resolutions", _RESOLUTION_COLUMNS),
    "get_resolution": (
        f"SELECT {_RESOLUTION_COLUMNS} FROM refund_resolutions WHERE refund_id = :refund_id"
    ),
    "set_payment_flags": (
        "UPDATE payments SET settled = :settled, disputed = :disputed WHERE id = :id"
    ),
    "add_refunded": (
        "UPDATE payments SET held = held + :held_delta, refunded = refunded + :delta "
        "WHERE id = :id RETURNING refunded"
    ),
    "refund_stats": (
        "SELECT count(*), coalesce(sum(CASE WHEN status = 'unknown' THEN 1 ELSE 0 END), 0) "
        "FROM refunds WHERE payment_id = :pid AND status NOT IN ('failed', 'reversed')"
    ),
    "insert_refund": _insert(
        "refunds",
        "id, payment_id, gateway, currency, amount, status, reason, actor, idempotency_key, "
        "request_fingerprint, gateway_idempotency_key, void, attempts, created_at, updated_at, "
        "lot_id",
    ),
    "get_refund": f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE id = :id",
    "refund_by_key": f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE idempotency_key = :key",
    "refund_by_gateway_id": (
        f"SELECT {_REFUND_COLUMNS} FROM refunds "
        "WHERE gateway = :gateway AND gateway_refund_id = :grid"
    ),
    # Recovery's claim: due in-flight refunds that no other worker holds right now.
    "claim_due": f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE {_DUE} {_CLAIM}",
    "claim_due_of_payment": (
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE payment_id = :pid AND {_DUE} {_CLAIM}"
    ),
    "lease": "UPDATE refunds SET next_attempt_at = :until WHERE id = :id",
    "lot_for_payment": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots"
        " WHERE funding_payment_id = :pid AND kind = 'top_up'"
    ),
    "get_lot": f"SELECT {_LOT_COLUMNS} FROM balance_lots WHERE id = :id",
    "credit_lots_of_payment": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots"
        " WHERE funding_payment_id = :pid AND kind = 'credit' ORDER BY seq"
    ),
    "add_credited": (
        "UPDATE payments SET credited = credited + :delta, held = held + :held_delta WHERE id = :id"
    ),
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
    "lot_spent_on": (
        "SELECT reference FROM balance_movements "
        "WHERE lot_id = :lot AND kind = 'redemption' ORDER BY id"
    ),
    "insert_lot": _insert("balance_lots", _LOT_COLUMNS),
    "move_lot": "UPDATE balance_lots SET remaining = remaining + :delta WHERE id = :lot",
    "insert_movement": _insert(
        "balance_movements", "lot_id, kind, amount, reference, refund_id, created_at"
    ),
    "customer_lots": (
        f"SELECT {_LOT_COLUMNS} FROM balance_lots WHERE customer_id = :cid ORDER BY seq"
    ),
    "insert_event": _insert("events", "id, type, created, refund_id, payload"),
    "insert_journal": _insert(
        "journal_lines", "journal_id, refund_id, kind, account, side, currency, amount, posted_at"
    ),
}


class Tx:
    """One transaction on a pooled DBAPI connection, running the prepared statements."""

    __slots__ = ("_cur", "_sql", "dialect", "raw")

    def __init__(self, raw: Any, sql: dict[str, Prepared], dialect: sa.engine.Dialect) -> None:
        self.raw = raw
        self._sql = sql
        self.dialect = dialect
        self._cur = raw.cursor()

    def run(self, name: str, **values: Any) -> Any:
        stmt = self._sql[name]
        self._cur.execute(stmt.sql, stmt.params(values))
        return self._cur

    def many(self, name: str, rows: Sequence[dict[str, Any]]) -> None:
        stmt = self._sql[name]
        self._cur.executemany(stmt.sql, [stmt.params(r) for r in rows])

    def first(self, name: str, **values: Any) -> dict[str, Any] | None:
        cur = self.run(name, **values)
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip((d[0] for d in cur.description), row, strict=True))

    def all(self, name: str, **values: Any) -> list[tuple[Any, ...]]:
        return list(self.run(name, **values).fetchall())

    def rowcount(self) -> int:
        return int(self._cur.rowcount)


# --- payments -------------------------------------------------------------------------------


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
    return [payment_from_row(_raw_mapping(r)) for r in conn.execute(q)]


def _raw_mapping(row: Row[Any]) -> dict[str, Any]:
    """A Core row as the plain dict the raw path reads (timestamps back to text)."""
    m = dict(row._mapping)
    for key, value in m.items():
        if isinstance(value, datetime):
            m[key] = to_db_time(value)
    return m


def set_payment_flags(tx: Tx, payment_id: str, *, settled: bool, disputed: bool) -> None:
    """What the gateway now says of the payment's settlement and dispute."""
    tx.run("set_payment_flags", id=payment_id, settled=int(settled), disputed=int(disputed))


def add_held(tx: Tx, payment_id: str, delta: int) -> None:
    tx.run("add_held", id=payment_id, delta=delta)


def add_refunded(tx: Tx, payment_id: str, delta: int, held_delta: int = 0) -> int:
    """Adjust the succeeded total (and the held total); return the new succeeded total."""
    row = tx.run("add_refunded", id=payment_id, delta=delta, held_delta=held_delta).fetchone()
    return int(row[0])


# --- refunds --------------------------------------------------------------------------------


def refund_stats(tx: Tx, payment_id: str) -> tuple[int, int]:
    """(refunds holding balance, of which unknown) for one payment."""
    count, unknown = tx.run("refund_stats", pid=payment_id).fetchone()
    return int(count), int(unknown)


def refund_from_row(m: dict[str, Any]) -> Refund:
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
        created_at=from_db_time(m["created_at"]),
        updated_at=from_db_time(m["updated_at"]),
        failure_code=m["failure_code"],
        failure_message=m["failure_message"],
        attempts=m["attempts"],
        lot_id=m["lot_id"],
    )


def insert_refund(tx: Tx, refund: Refund, fingerprint: str, *, void: bool) -> None:
    tx.run(
        "insert_refund",
        id=refund.id,
        payment_id=refund.payment_id,
        gateway=refund.gateway,
        currency=refund.amount.currency,
        amount=refund.amount.amount,
        status=refund.status.value,
        reason=refund.reason,
        actor=refund.actor,
        idempotency_key=refund.idempotency_key,
        request_fingerprint=fingerprint,
        gateway_idempotency_key=refund.gateway_idempotency_key,
        void=int(void),
        attempts=0,
        created_at=to_db_time(refund.created_at),
        updated_at=to_db_time(refund.updated_at),
        lot_id=refund.lot_id,
    )


def get_refund_row(tx: Tx, refund_id: str) -> dict[str, Any] | None:
    return tx.first("get_refund", id=refund_id)


def get_refund(tx: Tx, refund_id: str) -> Refund | None:
    row = tx.first("get_refund", id=refund_id)
    return refund_from_row(row) if row else None


def refund_by_key(tx: Tx, key: str) -> tuple[Refund, str] | None:
    row = tx.first("refund_by_key", key=key)
    return (refund_from_row(row), row["request_fingerprint"]) if row else None


def refund_by_gateway_id(tx: Tx, gateway: str, gateway_refund_id: str) -> Refund | None:
    row = tx.first("refund_by_gateway_id", gateway=gateway, grid=gateway_refund_id)
    return refund_from_row(row) if row else None


def claim_due(
    tx: Tx,
    now: datetime,
    stale: datetime,
    lease_until: datetime,
    *,
    batch: int,
    payment_id: str | None = None,
) -> list[Refund]:
    """Claim up to ``batch`` due refunds for one recovery worker (R-2.6).

    ``FOR UPDATE SKIP LOCKED`` hands concurrent workers disjoint rows on PostgreSQL (SQLite's
    BEGIN IMMEDIATE runs claims one after another). Each claimed refund is leased: its next
    attempt moves to ``lease_until``, so no other worker finds it due after this commit. A
    worker that dies holding a lease leaves the refund due again when the lease runs out."""
    times = {"now": to_db_time(now), "stale": to_db_time(stale), "batch": batch}
    if payment_id is None:
        rows = _dicts(tx.run("claim_due", **times))
    else:
        rows = _dicts(tx.run("claim_due_of_payment", pid=payment_id, **times))
    until = to_db_time(lease_until)
    tx.many("lease", [{"until": until, "id": r["id"]} for r in rows])
    return [refund_from_row(r) for r in rows]


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
    return [refund_from_row(_raw_mapping(r)) for r in conn.execute(q)]


def in_flight_with_next_attempt(conn: Connection) -> list[tuple[Refund, datetime | None]]:
    """In-flight refunds with their scheduled next attempt (None: not scheduled yet)."""
    q = sa.select(refunds).where(refunds.c.status.in_(IN_FLIGHT_STATUSES))
    return [(refund_from_row(_raw_mapping(r)), r.next_attempt_at) for r in conn.execute(q)]


_UPDATABLE = frozenset(
    {
        "status",
        "updated_at",
        "gateway_refund_id",
        "failure_code",
        "failure_message",
        "idempotency_key",
        "next_attempt_at",
        "attempts",
    }
)


def _prepared_update(tx: Tx, columns: tuple[str, ...], froms: tuple[str, ...]) -> str:
    """The name of a cached ``UPDATE refunds`` for these columns (and allowed statuses)."""
    name = f"update:{','.join(columns)}:{','.join(froms)}"
    if name not in tx._sql:
        unknown = set(columns) - _UPDATABLE
        if unknown:  # column names are spliced into SQL, so only known ones pass
            raise ValueError(f"cannot update refund columns {sorted(unknown)}")
        sets = ", ".join(f"{c} = :{c}" for c in columns)
        where = "id = :rid"
        if froms:
            where += " AND status IN (" + ", ".join(f"'{x}'" for x in froms if x in STATUSES) + ")"
        tx._sql[name] = Prepared(f"UPDATE refunds SET {sets} WHERE {where}", tx.dialect)
    return name


def _db_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: to_db_time(v) if isinstance(v, datetime) else v for k, v in values.items()}


def transition_refund(
    tx: Tx, refund_id: str, froms: tuple[str, ...], values: dict[str, Any]
) -> bool:
    """Move a refund only if it is still in one of ``froms``; False if someone else moved it."""
    name = _prepared_update(tx, tuple(sorted(values)), froms)
    tx.run(name, rid=refund_id, **_db_values(values))
    return tx.rowcount() == 1


def update_refund(tx: Tx, refund_id: str, values: dict[str, Any]) -> None:
    tx.run(_prepared_update(tx, tuple(sorted(values)), ()), rid=refund_id, **_db_values(values))


def insert_resolution(
    tx: Tx, refund_id: str, status: str, by: str, note: str, at: datetime, *, checked: bool
) -> None:
    tx.run(
        "insert_resolution",
        refund_id=refund_id,
        status=status,
        resolved_by=by,
        note=note,
        resolved_at=to_db_time(at),
        gateway_checked=int(checked),
    )


def get_resolution(tx: Tx, refund_id: str) -> dict[str, Any] | None:
    row = tx.first("get_resolution", refund_id=refund_id)
    if row is None:
        return None
    return {
        "refund_id": row["refund_id"],
        "status": row["status"],
        "resolved_by": row["resolved_by"],
        "note": row["note"],
        "resolved_at": iso(from_db_time(row["resolved_at"])),
        "gateway_checked": bool(row["gateway_checked"]),
    }


# --- balance lots ---------------------------------------------------------------------------


def lot_for_payment(tx: Tx, payment_id: str) -> dict[str, Any] | None:
    """The top-up lot a customer-balance payment created."""
    return tx.first("lot_for_payment", pid=payment_id)


def get_lot(tx: Tx, lot_id: str) -> dict[str, Any] | None:
    return tx.first("get_lot", id=lot_id)


def credit_lots_of_payment(tx: Tx, payment_id: str) -> list[dict[str, Any]]:
    return _dicts(tx.run("credit_lots_of_payment", pid=payment_id))


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


def add_credited(tx: Tx, payment_id: str, delta: int, held_delta: int = 0) -> None:
    tx.run("add_credited", id=payment_id, delta=delta, held_delta=held_delta)


def invoice_payments(tx: Tx, invoice_id: str, *, lock: bool = False) -> list[Payment]:
    name = "lock_invoice_payments" if lock else "invoice_payments"
    return [payment_from_row(r) for r in _dicts(tx.run(name, inv=invoice_id))]


def stream(tx: Tx, name: str, **values: Any) -> Iterator[tuple[Any, ...]]:
    """Rows one batch at a time, so a consumer that stops early reads little. It uses a
    cursor of its own, leaving the transaction free for other statements meanwhile."""
    stmt = tx._sql[name]
    cur = tx.raw.cursor()
    cur.execute(stmt.sql, stmt.params(values))
    while batch := cur.fetchmany(64):
        yield from batch


def _dicts(cur: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


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


def move_lot(
    tx: Tx,
    lot_id: str,
    delta: int,
    *,
    kind: str,
    now: datetime,
    reference: str | None = None,
    refund_id: str | None = None,
) -> None:
    """Change a lot's remaining amount and record why (negative consumes)."""
    tx.run("move_lot", lot=lot_id, delta=delta)
    record_movement(tx, lot_id, delta, kind=kind, now=now, reference=reference, refund_id=refund_id)


def customer_lots(tx: Tx, customer_id: str) -> list[dict[str, Any]]:
    rows = _dicts(tx.run("customer_lots", cid=customer_id))
    for row in rows:
        row["created_at"] = from_db_time(row["created_at"])
    return rows


# --- events and journal ---------------------------------------------------------------------


def insert_event(tx: Tx, payload: dict[str, Any], refund_id: str | None) -> None:
    tx.run(
        "insert_event",
        id=payload["id"],
        type=payload["type"],
        created=payload["created"],
        refund_id=refund_id,
        payload=json.dumps(payload, separators=(",", ":"), sort_keys=True),
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


def insert_journal(tx: Tx, lines: Sequence[JournalLine]) -> None:
    tx.many(
        "insert_journal",
        [
            {
                "journal_id": line.journal_id,
                "refund_id": line.refund_id,
                "kind": line.kind,
                "account": line.account,
                "side": line.side,
                "currency": line.amount.currency,
                "amount": line.amount.amount,
                "posted_at": to_db_time(line.posted_at),
            }
            for line in lines
        ],
    )


def list_journal(
    conn: Connection, refund_id: str | None = None, *, since: datetime | None = None
) -> list[JournalLine]:
    """Journal lines in posting order: of one refund, and/or posted from ``since`` on."""
    q = sa.select(journal_lines).order_by(journal_lines.c.id)
    if refund_id is not None:
        q = q.where(journal_lines.c.refund_id == refund_id)
    if since is not None:
        q = q.where(journal_lines.c.posted_at >= since)
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
    return [payment_from_row(_raw_mapping(r)) for r in conn.execute(q)]

"""The engine, its pool and the transactions: SQLite (default) or PostgreSQL.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (R-3.3): the driver's own deferred
BEGIN is switched off, so a read-then-write can never be overtaken by another writer. On
PostgreSQL the payment row is locked with ``SELECT … FOR UPDATE``.

SQLAlchemy owns the engine, the pool, the schema and the migrations. ``Store.write`` and
``Store.read`` hand out a ``Tx`` running the named statements of ``_sql`` on the pooled DBAPI
connection; ``Store.connect`` and ``Store.core_write`` a Core connection, for the paths off
the refund path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from .. import migrations
from .._errors import ConfigurationError, StoreNotFound, StoreUnavailable
from ._sql import SQL
from ._tx import Prepared, Tx

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

    @contextmanager
    def core_write(self) -> Iterator[Connection]:
        """A SQLAlchemy connection in one write transaction (``BEGIN IMMEDIATE`` on SQLite),
        for Core statements off the refund path (webhook deliveries). Unlike ``connect``, a
        lost connection surfaces as the driver's own error, as the deliverer reports it."""
        with self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def core_transaction(self) -> Iterator[Connection]:
        """``core_write`` for the adapters' own tables (dashboard sessions, the sign-in
        throttle, unprocessable webhooks): a lost connection, a lock timeout or a deadlock
        raises ``StoreUnavailable``, and nothing of the transaction is written."""
        try:
            with self._write_engine.begin() as conn:
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

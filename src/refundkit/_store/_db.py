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
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from .. import migrations
from .._errors import (
    ConfigurationError,
    InvalidStore,
    RefundkitError,
    StoreNotFound,
    StoreUnavailable,
)
from ._sql import SQL
from ._tx import Prepared, Tx

_WRITE = "refundkit_write"
#: How long a SQLite connection waits for another process's lock on the file before it gives
#: up with ``StoreUnavailable`` (opening a store included).
BUSY_TIMEOUT_SECONDS = 30.0
#: SQLite's "another connection holds the lock" (primary result codes): worth a retry.
_SQLITE_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def create_engine(url: str) -> Engine:
    """An engine set up the way refundkit needs (WAL and BEGIN IMMEDIATE on SQLite)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS},
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


def open_store(url: str | Engine) -> Store:
    """The store at ``url`` (or a host's engine), created or upgraded to the current schema.

    What stops that is a typed error and nothing is written: ``InvalidStore`` when the URL
    names nothing usable (fix it), ``StoreUnavailable`` when the server cannot be reached or
    another process holds the SQLite file locked (retry)."""
    own = isinstance(url, str)
    engine: Engine | None = None
    try:
        engine = create_engine(url) if isinstance(url, str) else url
        store = Store(engine)
        store.migrate()
    except Exception as exc:
        if own and engine is not None:
            engine.dispose()
        if isinstance(exc, RefundkitError):
            raise
        mapped = _open_error(exc, _shown(url))
        if mapped is None:
            raise
        raise mapped from exc
    return store


def _shown(url: str | Engine) -> str:
    """The URL without its password, for messages."""
    parsed = parse_url(url) if isinstance(url, str) else url.url
    return parsed.render_as_string(hide_password=True)


def _open_error(exc: Exception, shown: str) -> RefundkitError | None:
    """The typed error a failure to open ``shown`` stands for (None: not an opening error)."""
    from alembic.util.exc import CommandError

    words = _words(exc)
    if isinstance(exc, ImportError | sa.exc.NoSuchModuleError):
        return InvalidStore(f"cannot open the store {shown}: no database driver for it ({words})")
    if isinstance(exc, CommandError):
        return InvalidStore(f"cannot open the store {shown}: its schema is unknown here ({words})")
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", 0) & 0xFF
        if code not in _SQLITE_BUSY:
            return InvalidStore(f"cannot open the store {shown}: {words}")
    elif not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return InvalidStore(f"cannot open the store {shown}: {words}")
    return StoreUnavailable(
        f"cannot open the store {shown} now: {words}; nothing was written: retry"
    )


def _words(exc: Exception) -> str:
    """The driver's own words, on one short line."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]


def configure_sqlite(engine: Engine) -> None:
    """Take over transaction control on SQLite connections (also for a host's own engine)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={round(BUSY_TIMEOUT_SECONDS * 1000)}")
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
    text = _words(exc)
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
        """Create or upgrade the schema with Alembic (skipped when already at HEAD: a store
        at HEAD opens without waiting for another process's write lock)."""
        with self.engine.connect() as conn:
            if self._revision(conn) == migrations.HEAD:
                return
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

"""The database's clock: the one "now" that every worker and recovery process shares, whatever
its own machine's clock says (DESIGN, "Fencing"; docs/workers.md).

An in-flight refund (``reserved``, ``submitted``) is stamped with it, and recovery asks it
whether such a refund is stale, so no process compares its clock with another machine's. On
SQLite the database is the one machine whose file it is; on PostgreSQL it is the server.
Times are the store's fixed-width ISO text (``_schema.to_db_time``), microseconds and ``Z``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .._schema import from_db_time
from ._tx import Prepared

if TYPE_CHECKING:
    from ._tx import Tx

#: SQLite's ``%f`` is seconds with milliseconds: three zeros keep the width of the others.
_SQLITE_NOW = "(strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')"
#: ``clock_timestamp()``, not ``now()``: the time of the statement, not of its transaction's
#: start. Colons are escaped for ``sa.text``, which would read ``:MI`` as a parameter.
_POSTGRESQL_NOW = (
    "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24\\:MI\\:SS.US\"Z\"')"
)


def db_now_sql(dialect_name: str) -> str:
    """An SQL expression: the database's "now" as the store writes times."""
    return _SQLITE_NOW if dialect_name == "sqlite" else _POSTGRESQL_NOW


def db_now(tx: Tx) -> datetime:
    """The database's "now", read in ``tx``."""
    if "db_now" not in tx._sql:
        sql = f"SELECT {db_now_sql(tx.dialect.name)} AS now"
        tx._sql["db_now"] = Prepared(sql, tx.dialect)
    (now,) = tx.run("db_now").fetchone()
    return from_db_time(now)

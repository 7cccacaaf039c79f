"""Named statements run on a pooled DBAPI connection: the refund path's way to the database.

SQLAlchemy compiles each statement once for the store's dialect (``Prepared``); ``Tx`` then runs
them on the raw connection. The full Core pipeline per execution would cost more than the
durable writes themselves (see benchmarks/refund_overhead.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa


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


def stream(tx: Tx, name: str, **values: Any) -> Iterator[tuple[Any, ...]]:
    """Rows one batch at a time, so a consumer that stops early reads little. It uses a
    cursor of its own, leaving the transaction free for other statements meanwhile."""
    stmt = tx._sql[name]
    cur = tx.raw.cursor()
    cur.execute(stmt.sql, stmt.params(values))
    while batch := cur.fetchmany(64):
        yield from batch


def insert_sql(table: str, columns: str) -> str:
    """``INSERT INTO table (a, b) VALUES (:a, :b)`` for a comma-separated column list."""
    names = [c.strip() for c in columns.split(",")]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"

"""The dashboard's sign-in throttle (docs/dashboard.md): one row per attempt and key (a user
name or a client address), shared by every dashboard process and kept across restarts.

Attempts are counted before the password is checked, in one write transaction per sign-in
with its keys locked (``BEGIN IMMEDIATE`` on SQLite, transaction-scoped advisory locks on
PostgreSQL), so concurrent guesses cannot all slip under the limit. Storage stays bounded:
rows older than the window are pruned, and a blocked key gains no rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._schema import sign_in_attempts as t

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def lock_sign_in_keys(conn: Connection, keys: Iterable[str]) -> None:
    """Serialise attempts on ``keys`` until the transaction ends (in a fixed order, so two
    sign-ins never wait on each other crosswise). SQLite's write lock already does."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})


def recent_attempts(conn: Connection, key: str, since: datetime, limit: int) -> list[datetime]:
    """The newest ``limit`` attempts on ``key`` after ``since``, newest first."""
    query = (
        sa.select(t.c.attempted_at)
        .where(t.c.key == key, t.c.attempted_at > since)
        .order_by(t.c.attempted_at.desc())
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def insert_attempts(conn: Connection, attempt_id: str, keys: Sequence[str], at: datetime) -> None:
    conn.execute(
        t.insert(), [{"key": k, "attempt_id": attempt_id, "attempted_at": at} for k in keys]
    )


def delete_attempts(
    conn: Connection, *, key: str | None = None, attempt_id: str | None = None
) -> None:
    """Forget every attempt on ``key`` (a right password clears its name), and/or every row
    of one attempt (a sign-in that succeeded was no failure at its address either)."""
    if key is not None:
        conn.execute(t.delete().where(t.c.key == key))
    if attempt_id is not None:
        conn.execute(t.delete().where(t.c.attempt_id == attempt_id))


def prune_attempts(conn: Connection, before: datetime) -> int:
    """Delete attempts at or before ``before`` (outside every window): they block nothing."""
    return int(conn.execute(t.delete().where(t.c.attempted_at <= before)).rowcount)

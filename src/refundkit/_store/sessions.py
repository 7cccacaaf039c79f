"""Dashboard sessions (docs/dashboard.md): one row per signed-in session, keyed by the SHA-256
of the token its cookie carries. A session is live until its row is deleted (sign-out, a
password change) or ``expires_at`` passes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa

from .._schema import dashboard_sessions as t

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class SessionRecord(NamedTuple):
    user_name: str
    #: A digest of the user's password hash when the session was opened.
    password_tag: str
    created_at: datetime
    expires_at: datetime


_COLUMNS = (t.c.user_name, t.c.password_tag, t.c.created_at, t.c.expires_at)


def insert_session(conn: Connection, session_id: str, record: SessionRecord) -> None:
    conn.execute(t.insert().values(id=session_id, **record._asdict()))


def live_session(conn: Connection, session_id: str, now: datetime) -> SessionRecord | None:
    """The session if it exists and has not expired at ``now``."""
    query = sa.select(*_COLUMNS).where(t.c.id == session_id, t.c.expires_at > now)
    row = conn.execute(query).first()
    return None if row is None else SessionRecord(*row)


def delete_session(conn: Connection, session_id: str) -> None:
    conn.execute(t.delete().where(t.c.id == session_id))


def delete_user_sessions(conn: Connection, user_name: str) -> int:
    """End every session of ``user_name``; how many there were."""
    return int(conn.execute(t.delete().where(t.c.user_name == user_name)).rowcount)


def prune_sessions(conn: Connection, now: datetime) -> int:
    """Delete the sessions expired at ``now`` (live ones are never touched)."""
    return int(conn.execute(t.delete().where(t.c.expires_at <= now)).rowcount)

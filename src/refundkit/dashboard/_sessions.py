"""Signed-in sessions, kept in the store so that they can end (docs/dashboard.md).

The session cookie (signed by Starlette's SessionMiddleware) carries a random token; the store
keeps only the token's SHA-256, with the user, a digest of the user's password hash and the
expiry. A session is the user's only while its row exists, has not expired, names a user
still configured, and that user's password hash is still the one it was opened with. So
signing out (the row is deleted), a changed password or removed user (checked at every
request) and the lifetime (``[dashboard] session_lifetime``, 8 hours by default) each end it,
on every dashboard process at once, whatever copies of the cookie exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from .. import _store as st
from ._settings import User


def password_tag(user: User) -> str:
    """Changes whenever the user's password hash does (a new password, a new salt)."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Open, find and end dashboard sessions in the store."""

    def __init__(self, store: st.Store, clock: Callable[[], datetime], lifetime: timedelta) -> None:
        self.store = store
        self.clock = clock
        self.lifetime = lifetime

    def open(self, user: User) -> str:
        """A new session for ``user``; its token, for the cookie. Expired rows are pruned."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        record = st.SessionRecord(user.name, password_tag(user), now, now + self.lifetime)
        with self.store.core_transaction() as conn:
            st.prune_sessions(conn, now)
            st.insert_session(conn, _key(token), record)
        return token

    def user(self, token: object, users: Mapping[str, User]) -> User | None:
        """The user whose live session ``token`` is; None (and the row deleted, if any) when
        it ended: signed out, expired, the user removed or their password changed."""
        if not isinstance(token, str) or not token:
            return None
        with self.store.connect() as conn:
            record = st.live_session(conn, _key(token), self.clock())
        if record is None:
            return None
        user = users.get(record.user_name)
        if user is None or not hmac.compare_digest(password_tag(user), record.password_tag):
            self.end(token)
            return None
        return user

    def end(self, token: object) -> None:
        """Sign-out: the session's row goes, so no copy of its cookie signs in again."""
        if isinstance(token, str) and token:
            with self.store.core_transaction() as conn:
                st.delete_session(conn, _key(token))

    def end_all(self, user_name: str) -> int:
        """End every session of ``user_name`` (e.g. after a lost laptop); how many."""
        with self.store.core_transaction() as conn:
            return st.delete_user_sessions(conn, user_name)

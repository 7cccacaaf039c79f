"""Sign-in attempts, counted per user name and per client address over a sliding window, in
the store: every dashboard process shares the counts, and a restart keeps them.

Past the limit a sign-in is refused *before* the password is checked: guessing stops, and so
does the CPU an argon2 check costs (unthrottled, guessing is also a denial of service). An
attempt is counted as it starts, with its keys locked (``_store.sign_ins``), so concurrent
guesses cannot all slip under the limit; a right password then takes it back and clears the
name's count. A name's block is rows of its own: failures under other names or from other
addresses never evict it. Rows older than the window are pruned, so storage is bounded by the
attempts one window can hold (a blocked name or address adds none).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs

from .. import _store as st
from .._model import new_id

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: The longest name kept as a key: configured names have at most 64 characters.
_NAME_CHARS: Final = 128


@attrs.frozen
class Attempt:
    """A sign-in let through (``id``, counted as a failure until ``succeeded``), or refused
    for ``wait`` more seconds (``id`` None)."""

    id: str | None
    wait: int = 0


class SignInThrottle:
    """``per_name`` attempts for one name, or ``per_address`` from one address, within
    ``window`` block further sign-ins there until the oldest of them ages out."""

    def __init__(
        self,
        store: st.Store,
        clock: Callable[[], datetime],
        *,
        per_name: int = 5,
        per_address: int = 20,
        window: timedelta = timedelta(minutes=15),
    ) -> None:
        self.store = store
        self.clock = clock
        self.per_name = per_name
        self.per_address = per_address
        self.window = window

    def attempt(self, name: str, address: str) -> Attempt:
        """Count a sign-in for ``name`` from ``address``, or refuse it (counting nothing)."""
        limits = {_name(name): self.per_name, _addr(address): self.per_address}
        now = self.clock()
        with self.store.core_transaction() as conn:
            st.lock_sign_in_keys(conn, limits)
            wait = max(self._wait(conn, key, limit, now) for key, limit in limits.items())
            if wait:
                return Attempt(None, wait)
            st.prune_attempts(conn, now - self.window)
            attempt = Attempt(new_id("sia_"))
            assert attempt.id is not None
            st.insert_attempts(conn, attempt.id, list(limits), now)
        return attempt

    def succeeded(self, name: str, attempt: Attempt) -> None:
        """A right password: the name's count starts again, and this attempt is no failure
        at its address either (the address's other failures stay: one good account must not
        reopen guessing at the others from the same place)."""
        with self.store.core_transaction() as conn:
            st.delete_attempts(conn, key=_name(name), attempt_id=attempt.id)

    def _wait(self, conn: Connection, key: str, limit: int, now: datetime) -> int:
        recent = st.recent_attempts(conn, key, now - self.window, limit)
        if len(recent) < limit:
            return 0
        return max(1, math.ceil((recent[-1] + self.window - now).total_seconds()))


#: A digest's digits as letters: a stored key never holds a run of digits (a card number).
_NO_DIGITS: Final = str.maketrans("0123456789", "ghijklmnop")


def _name(name: str) -> str:
    """The throttle's key for a typed name: a digest, so what was typed (a card number pasted
    into the wrong field, say) is never stored."""
    typed = name.strip().casefold()[:_NAME_CHARS].encode("utf-8")
    return "name:" + hashlib.sha256(typed).hexdigest().translate(_NO_DIGITS)


def _addr(address: str) -> str:
    return "addr:" + address[:_NAME_CHARS]

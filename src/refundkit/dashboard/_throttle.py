"""Failed sign-ins, counted per user name and per client address over a sliding window.

Past the limit a sign-in is refused *before* the password is checked: guessing stops, and so
does the CPU an argon2 check costs (unthrottled, guessing is also a denial of service). The
counts live in this process's memory: each dashboard process throttles on its own, and a
restart forgets them (documented in docs/dashboard.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

#: Keys kept at most; the oldest is dropped beyond it, so random names cannot fill memory.
_MAX_KEYS: Final = 10_000


class SignInThrottle:
    """``per_name`` failures for one name, or ``per_address`` from one address, within
    ``window_seconds`` block further sign-ins there until the oldest failure ages out."""

    def __init__(
        self,
        *,
        per_name: int = 5,
        per_address: int = 20,
        window_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_name = per_name
        self.per_address = per_address
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str, address: str) -> int:
        """Whole seconds until a sign-in for ``name`` from ``address`` may be tried; 0: now."""
        now = self.clock()
        with self._lock:
            waits = [
                self._wait(key, limit, now)
                for key, limit in ((_name(name), self.per_name), (_addr(address), self.per_address))
            ]
        return max(waits)

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (_name(name), _addr(address)):
                self._failures.setdefault(key, deque()).append(now)
                self._failures[key] = self._failures.pop(key)  # most recent last
            while len(self._failures) > _MAX_KEYS:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, name: str) -> None:
        """A right password clears the name's failures (not the address's: one good account
        must not reopen guessing at the others from the same place)."""
        with self._lock:
            self._failures.pop(_name(name), None)

    def _wait(self, key: str, limit: int, now: float) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        if len(times) < limit:
            return 0
        return max(1, math.ceil(times[-limit] + self.window - now))


def _name(name: str) -> str:
    return "name:" + name.strip().casefold()


def _addr(address: str) -> str:
    return "addr:" + address

"""Recovery schedules written the way people say them: ``15s,1m,3m,1h,1d*5``.

Each comma-separated step is a whole number and a unit (s, m, h, d), optionally ``*N`` to
repeat it N times. The schedule is the wait before each recovery attempt after an unknown
outcome; after the last one a refund goes to ``manual_review`` (R-2.5).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from ._errors import InvalidInput

#: Recovery schedule after an unknown outcome (modelled on Kill Bill's janitor).
DEFAULT_RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=3),
    timedelta(hours=1),
    *(timedelta(days=1),) * 5,
)

_STEP = re.compile(r"(\d{1,6})([smhd])(?:\*(\d{1,3}))?", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_MAX_ATTEMPTS = 100


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    """``"15s,1m,3m,1h,1d*5"`` → the waits; a typed error names the step it cannot read."""
    steps: list[timedelta] = []
    for part in text.replace(" ", "").split(","):
        match = _STEP.fullmatch(part)
        if match is None or int(match[1]) == 0 or match[3] == "0":
            raise InvalidInput(
                f"schedule step {part!r} is not a wait like 15s, 1m, 3m, 1h or 1d*5 "
                "(whole numbers, units s m h d, *N repeats)"
            )
        wait = timedelta(**{_UNITS[match[2]]: int(match[1])})
        steps.extend([wait] * int(match[3] or 1))
    if len(steps) > _MAX_ATTEMPTS:
        raise InvalidInput(f"a schedule has at most {_MAX_ATTEMPTS} attempts, not {len(steps)}")
    return tuple(steps)


def format_schedule(steps: Sequence[timedelta]) -> str:
    """The inverse of ``parse_schedule``, with repeats folded: ``15s,1m,3m,1h,1d*5``."""
    parts: list[str] = []
    i = 0
    while i < len(steps):
        n = 1
        while i + n < len(steps) and steps[i + n] == steps[i]:
            n += 1
        parts.append(_one(steps[i]) + (f"*{n}" if n > 1 else ""))
        i += n
    return ",".join(parts)


def _one(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

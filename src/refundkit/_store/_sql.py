"""Every named statement of the store, gathered from the module of its concept. ``Store``
compiles them once for its dialect; ``Tx.run(name, ...)`` runs them."""

from __future__ import annotations

from . import journal, lots, outbox, payments, planning, refunds, resolutions


def _gather(*parts: dict[str, str]) -> dict[str, str]:
    """One registry; a name given twice is a bug (one statement would silently hide another)."""
    found: dict[str, str] = {}
    for part in parts:
        twice = found.keys() & part.keys()
        if twice:
            raise RuntimeError(f"statement names defined twice: {sorted(twice)}")
        found |= part
    return found


SQL: dict[str, str] = _gather(
    payments.SQL,
    refunds.SQL,
    resolutions.SQL,
    lots.SQL,
    planning.SQL,
    outbox.SQL,
    journal.SQL,
)

"""The event outbox: reading events, and relaying undispatched ones to event listeners."""

from __future__ import annotations

import logging

from .. import _store as st
from .._errors import InvalidInput
from .._model import Event, check_id
from ._runtime import Runtime

log = logging.getLogger("refundkit")


#: The largest count or sequence number a store holds (a signed 64-bit integer).
MAX_COUNT = 2**63 - 1


def events(
    rt: Runtime, after: str | int | None, limit: int | None, refund_id: str | None
) -> list[Event]:
    """Outbox events, oldest first; ``after`` is an event id or sequence number, ``limit``
    the most to return (0 and up; None: all)."""
    if limit is not None:
        _check_count(limit, "limit")
    if refund_id is not None:
        check_id(refund_id, "refund id")
    with rt.store.connect() as conn:
        seq = 0
        if isinstance(after, str):
            found = st.event_seq(conn, after)
            if found is None:
                raise InvalidInput(f"no event {after!r}")
            seq = found
        elif type(after) is int:
            seq = _check_count(after, "after")
        elif after is not None:
            raise InvalidInput("after must be an event id or a sequence number")
        return st.list_events(conn, after_seq=seq, limit=limit, refund_id=refund_id)


def _check_count(value: object, what: str) -> int:
    """A whole number from 0 to ``MAX_COUNT`` (not a bool, a float or a string)."""
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise InvalidInput(f"{what} must be a whole number from 0 to {MAX_COUNT}")
    return value


def dispatch(rt: Runtime) -> int:
    """Hand undelivered outbox events to ``refundkit_on_event`` listeners (at least once)."""
    if not rt.listeners:
        return 0
    with rt.store.connect() as conn:
        pending = st.list_events(conn, undispatched=True, limit=500)
    done: list[int] = []
    for ev in pending:
        try:
            rt.plugins.on_event(ev.to_dict())
        except Exception:
            log.exception("an event listener failed on %s; it will be offered again", ev.id)
            break
        done.append(ev.seq)
    rt.checkpoint("published")  # handed to listeners, not yet marked: sent again later
    if done:
        with rt.store.connect() as conn:
            st.mark_dispatched(conn, done, rt.clock())
    return len(done)

"""The event outbox: reading events, and relaying undispatched ones to event listeners."""

from __future__ import annotations

import logging

from .. import _store as st
from .._errors import InvalidInput
from .._model import Event
from ._runtime import Runtime

log = logging.getLogger("refundkit")


def events(
    rt: Runtime, after: str | int | None, limit: int | None, refund_id: str | None
) -> list[Event]:
    """Outbox events, oldest first; ``after`` is an event id or sequence number."""
    with rt.store.connect() as conn:
        seq = 0
        if isinstance(after, str):
            found = st.event_seq(conn, after)
            if found is None:
                raise InvalidInput(f"no event {after!r}")
            seq = found
        elif type(after) is int:
            seq = after
        elif after is not None:
            raise InvalidInput("after must be an event id or a sequence number")
        return st.list_events(conn, after_seq=seq, limit=limit, refund_id=refund_id)


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

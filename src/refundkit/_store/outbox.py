"""The outbox: every event, written in the transaction of the change it reports (R-2.8), and
read back in order by listeners and the webhook deliverer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._model import Event
from .._schema import events
from ._tx import insert_sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from ._tx import Tx

SQL: dict[str, str] = {
    "insert_event": insert_sql("events", "id, type, created, refund_id, payload"),
}


def insert_event(tx: Tx, payload: dict[str, Any], refund_id: str | None) -> None:
    tx.run(
        "insert_event",
        id=payload["id"],
        type=payload["type"],
        created=payload["created"],
        refund_id=refund_id,
        payload=json.dumps(payload, separators=(",", ":"), sort_keys=True),
    )


def _event_from_row(row: Row[Any]) -> Event:
    payload = json.loads(row.payload)
    return Event(row.seq, row.id, row.type, row.created, payload["data"])


def list_events(
    conn: Connection,
    *,
    after_seq: int = 0,
    refund_id: str | None = None,
    limit: int | None = None,
    undispatched: bool = False,
) -> list[Event]:
    # Bound as BIGINT: the column is INTEGER on PostgreSQL, a cursor up to 2**63 - 1 is not.
    after = sa.literal(after_seq, type_=sa.BigInteger)
    q = sa.select(events).where(events.c.seq > after).order_by(events.c.seq)
    if refund_id is not None:
        q = q.where(events.c.refund_id == refund_id)
    if undispatched:
        q = q.where(events.c.dispatched_at.is_(None))
    if limit is not None:
        q = q.limit(limit)
    return [_event_from_row(r) for r in conn.execute(q)]


def event_seq(conn: Connection, event_id: str) -> int | None:
    return conn.execute(sa.select(events.c.seq).where(events.c.id == event_id)).scalar()


def mark_dispatched(conn: Connection, seqs: Sequence[int], now: datetime) -> None:
    conn.execute(
        events.update()
        .where(events.c.seq.in_(list(seqs)), events.c.dispatched_at.is_(None))
        .values(dispatched_at=now)
    )

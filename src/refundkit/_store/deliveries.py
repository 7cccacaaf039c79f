"""Outgoing webhook deliveries and the endpoints they go to (docs/webhooks.md): fan-out of
outbox events, the deliverer's lease on due deliveries, each attempt's outcome, and an
endpoint disabled by a 410 Gone and enabled again.

Each function runs in the caller's transaction (``Store.core_write`` or ``Store.connect``):
the deliverer decides what belongs together, such as a dead letter and the endpoint it disables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._delivery_state import Claimed, Delivery, EndpointState
from .._schema import events, webhook_deliveries, webhook_endpoints
from ._rows import value_from_row

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

d = webhook_deliveries
we = webhook_endpoints
#: A delivery whose endpoint answered 410 Gone waits (is parked) while this holds.
_PARKED = sa.exists().where(we.c.url == d.c.endpoint, we.c.disabled_at.is_not(None))


# --- endpoints ----------------------------------------------------------------------------------


def register_endpoint(conn: Connection, url: str, now: datetime, *, backfill: bool) -> None:
    """Record an endpoint seen for the first time. It gets the events after the latest one now,
    or all of them with ``backfill``. An IntegrityError if another deliverer registered it."""
    latest = sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0)).scalar_subquery()
    start: int | sa.ScalarSelect[Any] = 0 if backfill else latest
    conn.execute(we.insert().values(url=url, first_seen_at=now, start_seq=start))


def endpoint_starts(conn: Connection, urls: Sequence[str]) -> dict[str, int]:
    """Where each of these registered endpoints starts in the outbox, by URL."""
    rows = conn.execute(sa.select(we.c.url, we.c.start_seq).where(we.c.url.in_(urls)))
    return {r.url: r.start_seq for r in rows}


def disable_endpoint(conn: Connection, url: str, now: datetime, reason: str) -> bool:
    """Disable an endpoint (410 Gone): its deliveries park. False if it already was."""
    flipped = conn.execute(
        we.update()
        .where(we.c.url == url, we.c.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason)
    ).rowcount
    return bool(flipped)


def is_endpoint_disabled(conn: Connection, url: str) -> bool | None:
    """Whether a registered endpoint is disabled; None if no deliverer has seen it."""
    row = conn.execute(sa.select(we.c.disabled_at).where(we.c.url == url)).first()
    return None if row is None else row.disabled_at is not None


def enable_endpoint(conn: Connection, url: str, now: datetime) -> int:
    """Enable an endpoint: its parked deliveries, and the ones a 410 dead-lettered, go back in
    the queue with a fresh horizon. Returns how many."""
    conn.execute(we.update().where(we.c.url == url).values(disabled_at=None, disabled_reason=None))
    gone = sa.and_(d.c.status == "failed", d.c.last_status_code == 410)
    return _restart(conn, sa.and_(d.c.endpoint == url, sa.or_(d.c.status == "pending", gone)), now)


def list_endpoints(conn: Connection) -> list[EndpointState]:
    """Every registered endpoint, with its pending and dead-lettered delivery counts."""
    counts = (
        sa.select(
            d.c.endpoint,
            sa.func.count().filter(d.c.status == "pending").label("pending"),
            sa.func.count().filter(d.c.status == "failed").label("failed"),
        )
        .group_by(d.c.endpoint)
        .subquery()
    )
    q = (
        sa.select(
            we,
            sa.func.coalesce(counts.c.pending, 0).label("pending"),
            sa.func.coalesce(counts.c.failed, 0).label("failed"),
        )
        .select_from(we.outerjoin(counts, counts.c.endpoint == we.c.url))
        .order_by(we.c.url)
    )
    return [value_from_row(EndpointState, r) for r in conn.execute(q)]


# --- deliveries ---------------------------------------------------------------------------------


def fan_out_deliveries(
    conn: Connection, url: str, types: frozenset[str] | None, after_seq: int, now: datetime
) -> int:
    """A pending delivery to ``url`` for every event after ``after_seq`` of the ``types`` it
    wants (None: all) that it has not got yet. An IntegrityError if another deliverer added
    the same ones first."""
    already = sa.exists().where(d.c.event_id == events.c.id, d.c.endpoint == url)
    select = sa.select(
        events.c.seq,
        events.c.id,
        events.c.refund_id,
        sa.literal(url, sa.Text),
        sa.literal("pending", sa.Text),
        sa.literal(now, d.c.started_at.type),
        sa.literal(now, d.c.next_attempt_at.type),
    ).where(~already, events.c.seq > after_seq)
    if types is not None:
        select = select.where(events.c.type.in_(sorted(types)))
    insert = d.insert().from_select(
        ["event_seq", "event_id", "refund_id", "endpoint", "status", "started_at",
         "next_attempt_at"],
        select,
    )  # fmt: skip
    return int(conn.execute(insert).rowcount)


def claim_deliveries(
    conn: Connection, urls: Sequence[str], now: datetime, until: datetime, token: str, limit: int
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``urls`` under ``token`` until ``until``.

    Due: pending, its next attempt reached, not leased to another deliverer, its endpoint not
    disabled, and no earlier event of its refund still pending for that endpoint (in order).
    ``FOR UPDATE SKIP LOCKED`` off SQLite, whose ``BEGIN IMMEDIATE`` serialises the claim."""
    earlier = d.alias("earlier")
    blocked = sa.exists().where(
        earlier.c.endpoint == d.c.endpoint,
        earlier.c.refund_id == d.c.refund_id,
        earlier.c.event_seq < d.c.event_seq,
        earlier.c.status == "pending",
    )
    due = (
        sa.select(d.c.id)
        .where(
            d.c.status == "pending",
            d.c.next_attempt_at <= now,
            sa.or_(d.c.claimed_until.is_(None), d.c.claimed_until <= now),
            d.c.endpoint.in_(urls),
            ~_PARKED,
            ~blocked,
        )
        .order_by(d.c.event_seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=d)
    )
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    conn.execute(d.update().where(d.c.id.in_(ids)).values(claim=token, claimed_until=until))
    rows = conn.execute(
        sa.select(
            d.c.id, d.c.event_id, d.c.endpoint, d.c.started_at, d.c.attempts, events.c.payload,
        )
        .join(events, events.c.seq == d.c.event_seq)
        .where(d.c.id.in_(ids))
        .order_by(d.c.event_seq)
    ).all()  # fmt: skip
    return [
        Claimed(r.id, token, r.event_id, r.endpoint, r.started_at, r.attempts,
                r.payload.encode("utf-8"))
        for r in rows
    ]  # fmt: skip


def release_deliveries(conn: Connection, claimed: Sequence[Claimed]) -> None:
    """Give claims back unsent; no attempt is counted."""
    for c in claimed:
        conn.execute(
            d.update()
            .where(d.c.id == c.id, d.c.claim == c.claim)
            .values(claim=None, claimed_until=None)
        )


def renew_delivery(conn: Connection, claimed: Claimed, until: datetime) -> bool:
    """Extend a claim's lease to ``until``; False if the lease lapsed and someone else holds it
    now, or if its endpoint was disabled since the claim."""
    renewed = conn.execute(
        d.update()
        .where(d.c.id == claimed.id, d.c.claim == claimed.claim, d.c.status == "pending", ~_PARKED)
        .values(claimed_until=until)
    ).rowcount
    return bool(renewed)


def finish_delivery(
    conn: Connection,
    claimed: Claimed,
    at: datetime,
    status_code: int | None,
    *,
    error: str | None,
    retry_at: datetime | None,
) -> None:
    """Record one attempt and release its claim. Without ``error`` it was delivered; with one
    it is tried again at ``retry_at``, or dead-lettered (failed) when there is none."""
    values: dict[str, Any] = {
        "attempts": claimed.attempts + 1,
        "last_attempt_at": at,
        "last_status_code": status_code,
        "claim": None,
        "claimed_until": None,
        "last_error": error,
    }
    if error is None:
        values |= {"status": "delivered", "delivered_at": at}
    elif retry_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    conn.execute(d.update().where(d.c.id == claimed.id, d.c.claim == claimed.claim).values(values))


def retry_deliveries(conn: Connection, event_id: str, now: datetime) -> int:
    """Send an event again to every endpoint it failed for, with a fresh horizon."""
    return _restart(conn, sa.and_(d.c.event_id == event_id, d.c.status == "failed"), now)


def _restart(conn: Connection, which: sa.ColumnElement[bool], now: datetime) -> int:
    """Deliveries back to pending, due now, with no attempts and a fresh horizon."""
    result = conn.execute(
        d.update()
        .where(which)
        .values(status="pending", attempts=0, started_at=now, next_attempt_at=now)
    )
    return int(result.rowcount)


def list_deliveries(
    conn: Connection, *, status: str | None = None, event_id: str | None = None
) -> list[Delivery]:
    """Deliveries in outbox order, of one status and/or one event; parked ones marked."""
    parked = sa.and_(d.c.status == "pending", we.c.disabled_at.is_not(None))
    q = (
        sa.select(d, parked.label("parked"))
        .select_from(d.outerjoin(we, we.c.url == d.c.endpoint))
        .order_by(d.c.event_seq, d.c.endpoint)
    )
    if status is not None:
        q = q.where(d.c.status == status)
    if event_id is not None:
        q = q.where(d.c.event_id == event_id)
    return [value_from_row(Delivery, r, parked=bool(r.parked)) for r in conn.execute(q)]

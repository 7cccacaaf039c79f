"""Outgoing webhooks: outbox events sent to endpoints, signed, at least once, in order per refund.

A *delivery* is one (event, endpoint) pair in ``webhook_deliveries``. A pass of the deliverer:

1. *fans out* new outbox events to every endpoint that wants their type (one row each);
2. *claims* due deliveries in a short write transaction, taking a lease (``claimed_until``) so
   no other deliverer sends them meanwhile (``FOR UPDATE SKIP LOCKED`` off SQLite; SQLite's
   ``BEGIN IMMEDIATE`` serialises the claim). A delivery is due only when no earlier event of
   the same refund is still pending for that endpoint, so a refund's events arrive in order;
3. *sends* each outside any transaction, signed per Standard Webhooks with the event id as
   ``webhook-id`` (the same on every retry) and a fresh timestamp and signature per attempt;
4. *finishes* it: delivered on 2xx, otherwise rescheduled on the retry schedule with jitter
   until the three-day horizon, then dead-lettered (``failed``). A 410 Gone dead-letters it at
   once and *disables* the endpoint in ``webhook_endpoints``: its other deliveries are *parked*
   (pending, never claimed) until ``enable_endpoint``, which sends them again in order.

An endpoint is *registered* the first time a deliverer sees it, starting after the latest event
then (``backfill`` starts it at the beginning of the outbox).

A deliverer that crashes leaves its claims to lapse; the next one sends them again with the same
``webhook-id`` (at least once, so consumers dedupe by it). Nothing here runs inside a refund.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import attrs
import sqlalchemy as sa

from ._errors import ConfigurationError, InvalidInput, WebhookEndpointNotFound
from ._events import EVENT_TYPES
from ._schema import events, webhook_deliveries, webhook_endpoints
from ._store import _WRITE, Store

log = logging.getLogger("refundkit.webhooks")

#: Waits after each failed attempt: the Standard Webhooks schedule (R-4.5), each with jitter.
RETRY_SCHEDULE: Final[tuple[timedelta, ...]] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
#: How long a delivery is retried, from its first attempt, before it is dead-lettered.
HORIZON: Final = timedelta(days=3)
#: Each delay is scaled by a random factor in [1 - JITTER, 1 + JITTER].
JITTER: Final = 0.2
#: A claim outlives the request timeout, so a live deliverer never loses its claim mid-send
#: (it is renewed just before each send).
LEASE: Final = timedelta(seconds=60)
REQUEST_TIMEOUT_SECONDS: Final = 20.0
_BATCH: Final = 50

d = webhook_deliveries
we = webhook_endpoints
#: A delivery whose endpoint answered 410 Gone waits (is parked) while this holds.
_PARKED = sa.exists().where(we.c.url == d.c.endpoint, we.c.disabled_at.is_not(None))


# --- endpoints ----------------------------------------------------------------------------------


@attrs.frozen
class Endpoint:
    """Where to send: a URL, its secrets (two during a rotation) and the event types it wants.

    ``backfill``: when first seen, start at the beginning of the outbox instead of after its
    latest event (it has no effect once the endpoint is registered)."""

    url: str
    secrets: tuple[str, ...]
    events: frozenset[str] | None = None  # None: every event type
    backfill: bool = False

    @classmethod
    def create(
        cls,
        url: str,
        secret: str | Sequence[str],
        events: Iterable[str] | None = None,
        *,
        backfill: bool = False,
    ) -> Endpoint:
        from .webhooks import _webhook

        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"a webhook endpoint url must be http(s)://..., not {url!r}")
        keys = (secret,) if isinstance(secret, str) else tuple(secret)
        for key in keys:
            _webhook(key)  # InvalidWebhookSecret for an empty or non-base64 secret
        if not keys:
            raise ConfigurationError(f"webhook endpoint {url} has no secret")
        wanted = None if events is None else frozenset(events)
        if wanted is not None:
            unknown = sorted(wanted - set(EVENT_TYPES))
            if unknown or not wanted:
                raise ConfigurationError(
                    f"webhook endpoint {url}: unknown event types {unknown}; "
                    f"known: {', '.join(EVENT_TYPES)}"
                )
        if not isinstance(backfill, bool):
            raise ConfigurationError(f"webhook endpoint {url}: backfill must be true or false")
        return cls(url, keys, wanted, backfill)

    def __repr__(self) -> str:  # never a secret in a log line or traceback
        return f"Endpoint(url={self.url!r}, events={sorted(self.events or ['*'])})"


def endpoints_from_config(section: Any) -> list[Endpoint]:
    """``[[webhooks.endpoints]]`` tables (``url``, ``secret`` (or a list), ``events``,
    ``backfill``)."""
    entries = section.get("endpoints", []) if isinstance(section, Mapping) else None
    if not isinstance(entries, list):
        raise ConfigurationError("[[webhooks.endpoints]] must be an array of tables")
    found = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "url" not in entry or "secret" not in entry:
            raise ConfigurationError(f"webhooks.endpoints[{i}] needs a url and a secret")
        found.append(_from_mapping(entry))
    return found


def _from_mapping(entry: Mapping[str, Any]) -> Endpoint:
    return Endpoint.create(
        entry["url"], entry["secret"], entry.get("events"), backfill=entry.get("backfill", False)
    )


def as_endpoints(endpoints: Iterable[Endpoint | Mapping[str, Any]]) -> list[Endpoint]:
    out = [e if isinstance(e, Endpoint) else _from_mapping(e) for e in endpoints]
    if len({e.url for e in out}) != len(out):
        raise ConfigurationError("two webhook endpoints have the same url")
    return out


# --- the schedule (pure) ------------------------------------------------------------------------


def next_attempt(
    started_at: datetime,
    now: datetime,
    failures: int,
    rng: Callable[[], float],
    *,
    retry_after: float | None = None,
    schedule: Sequence[timedelta] = RETRY_SCHEDULE,
    horizon: timedelta = HORIZON,
) -> datetime | None:
    """When to try again after ``failures`` failed attempts; None once the horizon is spent.

    The last attempt is pulled in to the horizon's end rather than skipped past it.
    """
    deadline = started_at + horizon
    if now >= deadline:
        return None
    base = schedule[min(failures, len(schedule)) - 1]
    delay = base * (1 - JITTER + 2 * JITTER * rng())
    if retry_after is not None:  # the receiver asked for a pause: honour it
        delay = max(delay, timedelta(seconds=retry_after))
    return min(now + delay, deadline)


# --- sending ------------------------------------------------------------------------------------


@attrs.frozen
class Outcome:
    """What one HTTP attempt came to."""

    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


class Sender(Protocol):
    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome: ...


class HttpSender:
    """POSTs with httpx: redirects are not followed, 15-30 s timeout (R-4.5)."""

    def __init__(self, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        import httpx

        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        try:
            response = self._client.post(url, headers=dict(headers), content=body)
        except self._httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:200])
        return Outcome(response.status_code, retry_after=_retry_after(response.headers))

    def close(self) -> None:
        self._client.close()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "")
    return float(value) if value.isascii() and value.isdigit() else None


# --- deliveries ---------------------------------------------------------------------------------


@attrs.frozen
class Delivery:
    """One (event, endpoint) delivery as it stands."""

    event_id: str
    event_seq: int
    refund_id: str | None
    endpoint: str
    status: str  # pending, delivered or failed (dead-lettered)
    attempts: int
    started_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    parked: bool = False  # pending, but its endpoint is disabled (410 Gone)

    def to_dict(self) -> dict[str, Any]:
        from ._model import iso

        def when(t: datetime | None) -> str | None:
            return iso(t) if t else None

        return {
            "event_id": self.event_id,
            "refund_id": self.refund_id,
            "endpoint": self.endpoint,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": when(self.started_at),
            "next_attempt_at": when(self.next_attempt_at) if self.status == "pending" else None,
            "last_attempt_at": when(self.last_attempt_at),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "delivered_at": when(self.delivered_at),
            "parked": self.parked,
        }


@attrs.frozen
class EndpointState:
    """A registered endpoint: where it started in the outbox, and whether it is disabled."""

    url: str
    first_seen_at: datetime
    start_seq: int  # it gets events after this outbox position
    disabled_at: datetime | None
    disabled_reason: str | None
    pending: int  # deliveries waiting; parked while disabled
    failed: int  # dead letters

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def to_dict(self) -> dict[str, Any]:
        from ._model import iso

        return {
            "url": self.url,
            "status": "disabled" if self.disabled else "enabled",
            "first_seen_at": iso(self.first_seen_at),
            "start_seq": self.start_seq,
            "disabled_at": iso(self.disabled_at) if self.disabled_at else None,
            "disabled_reason": self.disabled_reason,
            "pending": self.pending,
            "failed": self.failed,
        }


@attrs.frozen
class DeliveryReport:
    """What one pass did: attempts made, and how they ended."""

    delivered: tuple[str, ...] = ()  # event ids
    retrying: tuple[str, ...] = ()
    dead_lettered: tuple[str, ...] = ()

    @property
    def attempts(self) -> int:
        return len(self.delivered) + len(self.retrying) + len(self.dead_lettered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivered": list(self.delivered),
            "retrying": list(self.retrying),
            "dead_lettered": list(self.dead_lettered),
        }


@attrs.frozen
class _Claimed:
    id: int
    claim: str
    event_id: str
    endpoint: Endpoint
    started_at: datetime
    attempts: int
    body: bytes


_COLUMNS = (
    d.c.event_id,
    d.c.event_seq,
    d.c.refund_id,
    d.c.endpoint,
    d.c.status,
    d.c.attempts,
    d.c.started_at,
    d.c.next_attempt_at,
    d.c.last_attempt_at,
    d.c.last_status_code,
    d.c.last_error,
    d.c.delivered_at,
)


class Deliverer:
    """Sends outbox events to ``endpoints``; ``clock``, ``send`` and ``rng`` are injectable."""

    def __init__(
        self,
        store: Store,
        endpoints: Iterable[Endpoint | Mapping[str, Any]],
        *,
        clock: Callable[[], datetime],
        send: Sender | None = None,
        rng: Callable[[], float] | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.store = store
        self.endpoints = {e.url: e for e in as_endpoints(endpoints)}
        self.clock = clock
        self._send = send
        self.rng = rng or random.Random().random
        self.lease = lease

    # --- one pass ---------------------------------------------------------------------------

    def run_once(self) -> DeliveryReport:
        """Fan out, then send every due delivery (a refund's next event as soon as its previous
        one is delivered), until nothing is due."""
        if not self.endpoints:
            return DeliveryReport()
        self.fan_out()
        sender = self._send or HttpSender()
        done: dict[str, list[str]] = {"delivered": [], "retrying": [], "dead_lettered": []}
        try:
            while batch := self.claim():
                for i, claimed in enumerate(batch):
                    try:
                        result = self._attempt(claimed, sender)
                        if result is not None:
                            done[result].append(claimed.event_id)
                    except BaseException:
                        self.release(batch[i:])  # Ctrl-C: the rest go back untouched
                        raise
        finally:
            if isinstance(sender, HttpSender):
                sender.close()
        return DeliveryReport(**{k: tuple(v) for k, v in done.items()})

    def register(self) -> dict[str, int]:
        """Record endpoints seen for the first time; each one's start in the outbox by URL."""
        now = self.clock()
        starts = self._starts()
        for url in sorted(set(self.endpoints) - set(starts)):
            latest = sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0)).scalar_subquery()
            backfill = self.endpoints[url].backfill
            start: int | sa.ScalarSelect[Any] = 0 if backfill else latest
            try:
                with self._write() as conn:
                    conn.execute(we.insert().values(url=url, first_seen_at=now, start_seq=start))
            except sa.exc.IntegrityError:  # another deliverer registered it first: keep its start
                log.debug("registering %s raced another deliverer", url)
            else:
                log.info("webhook endpoint %s registered (backfill: %s)", url, backfill)
        return self._starts()

    def _starts(self) -> dict[str, int]:
        with self.store.connect() as conn:
            rows = conn.execute(
                sa.select(we.c.url, we.c.start_seq).where(we.c.url.in_(sorted(self.endpoints)))
            )
            return {r.url: r.start_seq for r in rows}

    def fan_out(self) -> int:
        """A pending delivery per endpoint for every event it wants and has not got yet, from
        its start (parked at once if it is disabled: nothing is lost before re-enabling)."""
        starts = self.register()
        now = self.clock()
        added = 0
        for endpoint in self.endpoints.values():
            already = sa.exists().where(d.c.event_id == events.c.id, d.c.endpoint == endpoint.url)
            select = sa.select(
                events.c.seq,
                events.c.id,
                events.c.refund_id,
                sa.literal(endpoint.url, sa.Text),
                sa.literal("pending", sa.Text),
                sa.literal(now, d.c.started_at.type),
                sa.literal(now, d.c.next_attempt_at.type),
            ).where(~already, events.c.seq > starts[endpoint.url])
            if endpoint.events is not None:
                select = select.where(events.c.type.in_(sorted(endpoint.events)))
            insert = d.insert().from_select(
                ["event_seq", "event_id", "refund_id", "endpoint", "status", "started_at",
                 "next_attempt_at"],
                select,
            )  # fmt: skip
            try:
                with self._write() as conn:
                    added += conn.execute(insert).rowcount
            except sa.exc.IntegrityError:  # another deliverer fanned out the same events first
                log.debug("fan-out to %s raced another deliverer", endpoint.url)
        return added

    def claim(self, limit: int = _BATCH) -> list[_Claimed]:
        """Take a lease on due deliveries; another deliverer skips them until it lapses."""
        now = self.clock()
        token = secrets.token_hex(8)
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
                d.c.endpoint.in_(sorted(self.endpoints)),
                ~_PARKED,
                ~blocked,
            )
            .order_by(d.c.event_seq)
            .limit(limit)
            .with_for_update(skip_locked=True, of=d)
        )
        with self._write() as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                d.update()
                .where(d.c.id.in_(ids))
                .values(claim=token, claimed_until=now + self.lease)
            )
            rows = conn.execute(
                sa.select(
                    d.c.id, d.c.event_id, d.c.endpoint, d.c.started_at, d.c.attempts,
                    events.c.payload,
                )
                .join(events, events.c.seq == d.c.event_seq)
                .where(d.c.id.in_(ids))
                .order_by(d.c.event_seq)
            ).all()  # fmt: skip
        return [
            _Claimed(r.id, token, r.event_id, self.endpoints[r.endpoint], r.started_at, r.attempts,
                     r.payload.encode("utf-8"))
            for r in rows
        ]  # fmt: skip

    def release(self, claimed: Sequence[_Claimed]) -> None:
        """Give claims back unsent (an interrupted pass); no attempt is counted."""
        if claimed:
            with self._write() as conn:
                for c in claimed:
                    conn.execute(
                        d.update()
                        .where(d.c.id == c.id, d.c.claim == c.claim)
                        .values(claim=None, claimed_until=None)
                    )

    # --- one attempt ------------------------------------------------------------------------

    def _renew(self, claimed: _Claimed) -> bool:
        """Extend the lease just before sending, so it outlasts this request whatever came
        before it in the batch; False if the lease lapsed and someone else holds it now, or if
        its endpoint was disabled since the claim (a 410 earlier in the batch or elsewhere)."""
        with self._write() as conn:
            result = conn.execute(
                d.update()
                .where(
                    d.c.id == claimed.id,
                    d.c.claim == claimed.claim,
                    d.c.status == "pending",
                    ~_PARKED,
                )
                .values(claimed_until=self.clock() + self.lease)
            )
        return bool(result.rowcount)

    def _attempt(self, claimed: _Claimed, send: Sender) -> str | None:
        from .webhooks import signed_headers

        if not self._renew(claimed):
            log.info("webhook %s: claim lapsed or endpoint disabled; not sent", claimed.event_id)
            self.release([claimed])  # parked: free at once for a re-enable (no-op if lapsed)
            return None
        endpoint = claimed.endpoint
        headers = signed_headers(
            endpoint.secrets, claimed.event_id, int(self.clock().timestamp()), claimed.body
        )
        headers["content-type"] = "application/json"
        headers["user-agent"] = "refundkit-webhooks"
        outcome = send(endpoint.url, headers, claimed.body)
        return self._finish(claimed, outcome)

    def _finish(self, claimed: _Claimed, outcome: Outcome) -> str:
        now = self.clock()
        values: dict[str, Any] = {
            "attempts": claimed.attempts + 1,
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "claim": None,
            "claimed_until": None,
        }
        if outcome.ok:
            result = "delivered"
            values |= {"status": "delivered", "delivered_at": now, "last_error": None}
        else:
            error = outcome.error or f"HTTP {outcome.status_code}"
            nxt = None
            if not outcome.gone:  # 410 Gone: the receiver asked us to stop
                nxt = next_attempt(
                    claimed.started_at,
                    now,
                    claimed.attempts + 1,
                    self.rng,
                    retry_after=outcome.retry_after,
                )
            values["last_error"] = error
            if nxt is None:
                result = "dead_lettered"
                values["status"] = "failed"
                if not outcome.gone:  # a 410 has its own warning, once per endpoint
                    log.warning(
                        "webhook %s to %s dead-lettered after %d attempts: %s",
                        claimed.event_id, endpoint_url(claimed), claimed.attempts + 1, error,
                    )  # fmt: skip
            else:
                result = "retrying"
                values["next_attempt_at"] = nxt
        with self._write() as conn:
            conn.execute(
                d.update().where(d.c.id == claimed.id, d.c.claim == claimed.claim).values(values)
            )
            if outcome.gone:
                self._disable(conn, claimed, now)
        return result

    def _disable(self, conn: sa.Connection, claimed: _Claimed, now: datetime) -> None:
        """410 Gone: the endpoint is disabled for every deliverer, in the same transaction as
        the dead letter; only the deliverer that flips it warns."""
        url = claimed.endpoint.url
        reason = f"410 Gone in reply to {claimed.event_id}"
        flipped = conn.execute(
            we.update()
            .where(we.c.url == url, we.c.disabled_at.is_(None))
            .values(disabled_at=now, disabled_reason=reason)
        ).rowcount
        if flipped:
            log.warning(
                "webhook endpoint %s answered 410 Gone: disabled; its deliveries are parked "
                "until `refundkit endpoints enable %s`",
                url, url,
            )  # fmt: skip

    # --- reading and retrying ---------------------------------------------------------------

    def _write(self) -> Any:
        engine = self.store.engine.execution_options(**{_WRITE: True})
        return engine.begin()


def endpoint_url(claimed: _Claimed) -> str:
    return claimed.endpoint.url


def list_deliveries(
    store: Store, *, status: str | None = None, event_id: str | None = None
) -> list[Delivery]:
    parked = sa.and_(d.c.status == "pending", we.c.disabled_at.is_not(None))
    q = (
        sa.select(*_COLUMNS, parked.label("parked"))
        .select_from(d.outerjoin(we, we.c.url == d.c.endpoint))
        .order_by(d.c.event_seq, d.c.endpoint)
    )
    if status is not None:
        if status not in ("pending", "delivered", "failed"):
            raise InvalidInput(f"status must be pending, delivered or failed, not {status!r}")
        q = q.where(d.c.status == status)
    if event_id is not None:
        q = q.where(d.c.event_id == event_id)
    with store.connect() as conn:
        return [
            Delivery(**(dict(row._mapping) | {"parked": bool(row.parked)}))
            for row in conn.execute(q)
        ]


def list_endpoints(store: Store) -> list[EndpointState]:
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
    with store.connect() as conn:
        return [EndpointState(**row._mapping) for row in conn.execute(q)]


def enable_endpoint(store: Store, url: str, now: datetime) -> int:
    """Enable a disabled endpoint: its parked deliveries, and the ones a 410 dead-lettered, go
    back in the queue with a fresh horizon, to be sent in outbox order. Returns how many (0 for
    an endpoint that was not disabled)."""
    with store.engine.execution_options(**{_WRITE: True}).begin() as conn:
        row = conn.execute(sa.select(we.c.disabled_at).where(we.c.url == url)).first()
        if row is None:
            raise WebhookEndpointNotFound(f"no webhook endpoint {url!r} has been seen")
        if row.disabled_at is None:
            return 0
        conn.execute(
            we.update().where(we.c.url == url).values(disabled_at=None, disabled_reason=None)
        )
        gone = sa.and_(d.c.status == "failed", d.c.last_status_code == 410)
        result = conn.execute(
            d.update()
            .where(d.c.endpoint == url, sa.or_(d.c.status == "pending", gone))
            .values(status="pending", attempts=0, started_at=now, next_attempt_at=now)
        )
    log.info("webhook endpoint %s enabled: %d deliveries resume", url, result.rowcount)
    return int(result.rowcount)


def retry_event(store: Store, event_id: str, now: datetime) -> int:
    """Send ``event_id`` again to every endpoint it failed for, with a fresh horizon."""
    with store.engine.execution_options(**{_WRITE: True}).begin() as conn:
        known = conn.execute(sa.select(events.c.seq).where(events.c.id == event_id)).first()
        if known is None:
            raise InvalidInput(f"no event {event_id!r}")
        result = conn.execute(
            d.update()
            .where(d.c.event_id == event_id, d.c.status == "failed")
            .values(status="pending", attempts=0, started_at=now, next_attempt_at=now)
        )
        return int(result.rowcount)


def run_forever(
    deliver: Callable[[], DeliveryReport],
    *,
    interval: float = 1.0,
    sleep: Callable[[float], None] | None = None,
    on_report: Callable[[DeliveryReport], None] = lambda _r: None,
) -> int:
    """Deliver, pause, repeat until Ctrl-C; returns the number of attempts made."""
    sleep = sleep or time.sleep
    made = 0
    try:
        while True:
            report = deliver()
            made += report.attempts
            if report.attempts:
                on_report(report)
            sleep(interval)
    except KeyboardInterrupt:
        return made

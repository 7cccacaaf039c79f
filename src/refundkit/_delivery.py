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

from . import _store as st
from ._delivery_state import Claimed
from ._delivery_state import Delivery as Delivery  # re-exported: callers import it from here
from ._delivery_state import EndpointState as EndpointState  # likewise
from ._errors import ConfigurationError, InvalidInput, WebhookEndpointNotFound
from ._events import EVENT_TYPES
from ._store import Store
from ._validate import refuse_card_numbers

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
        from .webhooks import check_secret

        refuse_card_numbers(url, "a webhook endpoint url")  # it is stored and logged
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"a webhook endpoint url must be http(s)://..., not {url!r}")
        keys = (secret,) if isinstance(secret, str) else tuple(secret)
        for key in keys:
            check_secret(key)
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
            backfill = self.endpoints[url].backfill
            try:
                with self.store.core_write() as conn:
                    st.register_endpoint(conn, url, now, backfill=backfill)
            except self.store.integrity_errors:  # registered by another deliverer: its start stands
                log.debug("registering %s raced another deliverer", url)
            else:
                log.info("webhook endpoint %s registered (backfill: %s)", url, backfill)
        return self._starts()

    def _starts(self) -> dict[str, int]:
        with self.store.connect() as conn:
            return st.endpoint_starts(conn, sorted(self.endpoints))

    def fan_out(self) -> int:
        """A pending delivery per endpoint for every event it wants and has not got yet, from
        its start (parked at once if it is disabled: nothing is lost before re-enabling)."""
        starts = self.register()
        now = self.clock()
        added = 0
        for endpoint in self.endpoints.values():
            start = starts[endpoint.url]
            try:
                with self.store.core_write() as conn:
                    added += st.fan_out_deliveries(conn, endpoint.url, endpoint.events, start, now)
            except self.store.integrity_errors:  # another deliverer fanned them out first
                log.debug("fan-out to %s raced another deliverer", endpoint.url)
        return added

    def claim(self, limit: int = _BATCH) -> list[Claimed]:
        """Take a lease on due deliveries; another deliverer skips them until it lapses."""
        now = self.clock()
        token = secrets.token_hex(8)
        urls = sorted(self.endpoints)
        with self.store.core_write() as conn:
            return st.claim_deliveries(conn, urls, now, now + self.lease, token, limit)

    def release(self, claimed: Sequence[Claimed]) -> None:
        """Give claims back unsent (an interrupted pass); no attempt is counted."""
        if claimed:
            with self.store.core_write() as conn:
                st.release_deliveries(conn, claimed)

    # --- one attempt ------------------------------------------------------------------------

    def _renew(self, claimed: Claimed) -> bool:
        """Extend the lease just before sending, so it outlasts this request whatever came
        before it in the batch; False if the lease lapsed and someone else holds it now, or if
        its endpoint was disabled since the claim (a 410 earlier in the batch or elsewhere)."""
        with self.store.core_write() as conn:
            return st.renew_delivery(conn, claimed, self.clock() + self.lease)

    def _attempt(self, claimed: Claimed, send: Sender) -> str | None:
        from .webhooks import signed_headers

        if not self._renew(claimed):
            log.info("webhook %s: claim lapsed or endpoint disabled; not sent", claimed.event_id)
            self.release([claimed])  # parked: free at once for a re-enable (no-op if lapsed)
            return None
        endpoint = self.endpoints[claimed.endpoint]
        headers = signed_headers(
            endpoint.secrets, claimed.event_id, int(self.clock().timestamp()), claimed.body
        )
        headers["content-type"] = "application/json"
        headers["user-agent"] = "refundkit-webhooks"
        outcome = send(endpoint.url, headers, claimed.body)
        return self._finish(claimed, outcome)

    def _finish(self, claimed: Claimed, outcome: Outcome) -> str:
        now = self.clock()
        error: str | None = None
        retry_at: datetime | None = None
        if outcome.ok:
            result = "delivered"
        else:
            error = outcome.error or f"HTTP {outcome.status_code}"
            if not outcome.gone:  # 410 Gone: the receiver asked us to stop
                retry_at = next_attempt(
                    claimed.started_at,
                    now,
                    claimed.attempts + 1,
                    self.rng,
                    retry_after=outcome.retry_after,
                )
            if retry_at is None:
                result = "dead_lettered"
                if not outcome.gone:  # a 410 has its own warning, once per endpoint
                    log.warning(
                        "webhook %s to %s dead-lettered after %d attempts: %s",
                        claimed.event_id, claimed.endpoint, claimed.attempts + 1, error,
                    )  # fmt: skip
            else:
                result = "retrying"
        with self.store.core_write() as conn:
            st.finish_delivery(
                conn, claimed, now, outcome.status_code, error=error, retry_at=retry_at
            )
            # 410 Gone: the endpoint is disabled for every deliverer, in the same transaction
            # as the dead letter; only the deliverer that flips it warns.
            reason = f"410 Gone in reply to {claimed.event_id}"
            if outcome.gone and st.disable_endpoint(conn, claimed.endpoint, now, reason):
                log.warning(
                    "webhook endpoint %s answered 410 Gone: disabled; its deliveries are parked "
                    "until `refundkit endpoints enable %s`",
                    claimed.endpoint, claimed.endpoint,
                )  # fmt: skip
        return result


def list_deliveries(
    store: Store, *, status: str | None = None, event_id: str | None = None
) -> list[Delivery]:
    if status is not None and status not in ("pending", "delivered", "failed"):
        raise InvalidInput(f"status must be pending, delivered or failed, not {status!r}")
    with store.connect() as conn:
        return st.list_deliveries(conn, status=status, event_id=event_id)


def list_endpoints(store: Store) -> list[EndpointState]:
    """Every registered endpoint, with its pending and dead-lettered delivery counts."""
    with store.connect() as conn:
        return st.list_endpoints(conn)


def enable_endpoint(store: Store, url: str, now: datetime) -> int:
    """Enable a disabled endpoint: its parked deliveries, and the ones a 410 dead-lettered, go
    back in the queue with a fresh horizon, to be sent in outbox order. Returns how many (0 for
    an endpoint that was not disabled)."""
    with store.core_write() as conn:
        disabled = st.is_endpoint_disabled(conn, url)
        if disabled is None:
            raise WebhookEndpointNotFound(f"no webhook endpoint {url!r} has been seen")
        if not disabled:
            return 0
        resumed = st.enable_endpoint(conn, url, now)
    log.info("webhook endpoint %s enabled: %d deliveries resume", url, resumed)
    return resumed


def retry_event(store: Store, event_id: str, now: datetime) -> int:
    """Send ``event_id`` again to every endpoint it failed for, with a fresh horizon."""
    with store.core_write() as conn:
        if st.event_seq(conn, event_id) is None:
            raise InvalidInput(f"no event {event_id!r}")
        return st.retry_deliveries(conn, event_id, now)


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

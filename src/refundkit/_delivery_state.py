"""Outgoing webhooks as they stand in the store: a delivery, a registered endpoint, a claim.

The values the store reads back (``_store.deliveries``) and the deliverer (``_delivery``) works
with. They live apart from the deliverer because it imports the store: the store could not
import them from there without an import cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from ._model import iso


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
class Claimed:
    """A delivery one deliverer holds a lease on (``claim`` is its token), ready to send."""

    id: int
    claim: str
    event_id: str
    endpoint: str  # the endpoint's URL
    started_at: datetime
    attempts: int
    body: bytes

"""Gateway webhooks that were authentic but unreadable (docs/webhooks.md): acknowledged to the
gateway, so it stops retrying, and kept here for a person. Never the body (it may hold card
data): its SHA-256 and size, to find the delivery in the gateway's dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa

from .._schema import unprocessable_webhooks as t

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class UnprocessableWebhook(NamedTuple):
    gateway: str
    received_at: datetime
    error_code: str
    message: str
    body_sha256: str
    body_bytes: int


_COLUMNS = (t.c.gateway, t.c.received_at, t.c.error_code, t.c.message, t.c.body_sha256,
            t.c.body_bytes)  # fmt: skip


def insert_unprocessable_webhook(conn: Connection, webhook: UnprocessableWebhook) -> int:
    """Keep one; its id."""
    result = conn.execute(t.insert().values(**webhook._asdict()).returning(t.c.id))
    return int(result.scalar_one())


def list_unprocessable_webhooks(conn: Connection, limit: int = 100) -> list[UnprocessableWebhook]:
    """The newest first."""
    query = sa.select(*_COLUMNS).order_by(t.c.id.desc()).limit(limit)
    return [UnprocessableWebhook(*row) for row in conn.execute(query)]

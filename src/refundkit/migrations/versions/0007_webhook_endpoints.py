"""Webhook endpoints: where a newly seen endpoint starts in the outbox, and 410 Gone disabling.

Endpoints that already have deliveries keep receiving from the start of the outbox (start_seq 0),
as they did before this revision, so an upgrade skips nothing they were due.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from refundkit._schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("url", sa.Text, primary_key=True),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("start_seq", sa.Integer, nullable=False),
        sa.Column("disabled_at", UTCDateTime, nullable=True),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.CheckConstraint("start_seq >= 0", name="ck_endpoints_start_seq"),
        sqlite_strict=True,
    )
    # Timestamps are fixed-width ISO text, so MIN is the earliest.
    op.execute(
        "INSERT INTO webhook_endpoints (url, first_seen_at, start_seq) "
        "SELECT endpoint, MIN(started_at), 0 FROM webhook_deliveries GROUP BY endpoint"
    )


def downgrade() -> None:
    op.drop_table("webhook_endpoints")

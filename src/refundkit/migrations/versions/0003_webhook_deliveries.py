"""Outgoing webhook deliveries: one row per (event, endpoint) with its retry state and lease.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from refundkit._schema import DELIVERY_STATUSES, UTCDateTime

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_seq", sa.Integer, sa.ForeignKey("events.seq"), nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("refund_id", sa.Text, nullable=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claim", sa.Text, nullable=True),
        sa.Column("claimed_until", UTCDateTime, nullable=True),
        sa.Column("last_attempt_at", UTCDateTime, nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("event_id", "endpoint", name="uq_deliveries_event_endpoint"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in DELIVERY_STATUSES) + ")",
            name="ck_deliveries_status",
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_deliveries_attempts"),
        sqlite_strict=True,
    )
    op.create_index("ix_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index(
        "ix_deliveries_refund", "webhook_deliveries", ["endpoint", "refund_id", "event_seq"]
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")

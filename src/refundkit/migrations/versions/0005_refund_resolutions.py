"""Refund resolutions: a person's decision about a refund in manual review.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from refundkit._schema import Flag, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refund_resolutions",
        sa.Column("refund_id", sa.Text, sa.ForeignKey("refunds.id"), primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("resolved_by", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("resolved_at", UTCDateTime, nullable=False),
        sa.Column("gateway_checked", Flag, nullable=False),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name="ck_resolutions_status"),
        sqlite_strict=True,
    )


def downgrade() -> None:
    op.drop_table("refund_resolutions")

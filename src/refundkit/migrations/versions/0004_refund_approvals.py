"""Refund approvals: refunds above a dashboard user's limit wait for a second person.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from refundkit._schema import APPROVAL_STATUSES, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Amount = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "refund_approvals",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("payment_id", sa.Text, sa.ForeignKey("payments.id"), nullable=False, index=True),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("amount", Amount, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("decided_by", sa.Text, nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("decision_note", sa.Text, nullable=True),
        sa.Column("refund_id", sa.Text, nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_approvals_amount_positive"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in APPROVAL_STATUSES) + ")",
            name="ck_approvals_status",
        ),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by", name="ck_approvals_four_eyes"
        ),
        sqlite_strict=True,
    )


def downgrade() -> None:
    op.drop_table("refund_approvals")

"""Dashboard sessions kept in the store (sign-out and a password change end them), the sign-in
throttle shared by every dashboard process, and authentic gateway webhooks that could not be
read (acknowledged, and kept here).

Nothing existing changes: three new tables. Sessions signed in before this revision lived only
in their cookies; they have no row, so everyone signs in again once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from refundkit._schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("user_name", sa.Text, nullable=False, index=True),
        sa.Column("password_tag", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
        sa.CheckConstraint("expires_at > created_at", name="ck_sessions_expiry"),
        sqlite_strict=True,
    )
    op.create_table(
        "sign_in_attempts",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("attempt_id", sa.Text, primary_key=True),
        sa.Column("attempted_at", UTCDateTime, nullable=False, index=True),
        sqlite_strict=True,
        sqlite_with_rowid=False,
    )
    op.create_index("ix_sign_in_attempts_key_time", "sign_in_attempts", ["key", "attempted_at"])
    op.create_table(
        "unprocessable_webhooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("gateway", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False, index=True),
        sa.Column("error_code", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("body_sha256", sa.Text, nullable=False),
        sa.Column("body_bytes", sa.Integer, nullable=False),
        sa.CheckConstraint("body_bytes >= 0", name="ck_unprocessable_body_bytes"),
        sqlite_strict=True,
    )


def downgrade() -> None:
    op.drop_table("unprocessable_webhooks")
    op.drop_index("ix_sign_in_attempts_key_time", table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
    op.drop_table("dashboard_sessions")

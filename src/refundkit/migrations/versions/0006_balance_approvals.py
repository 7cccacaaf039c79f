"""Balance approvals: a customer-balance refund above a dashboard user's limit waits too.

``refund_approvals`` gets ``kind`` ('payment' | 'balance'), ``customer_id``, ``strategy``,
``plan`` (the plan fixed when an approver claims it, JSON) and ``refund_ids`` (JSON); its
``payment_id`` becomes nullable, and CHECKs keep each row one kind or the other. Existing rows
are payment approvals.

SQLite cannot relax NOT NULL or add a CHECK in place, so there the table is rebuilt (renamed
aside, created anew, copied, dropped): the new table's DDL is then exactly the metadata's.
PostgreSQL alters it in place. Downgrading deletes the balance approvals (0004 cannot hold
them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from refundkit._schema import (
    APPROVAL_KIND_CHECK,
    APPROVAL_PLAN_CHECK,
    APPROVAL_STATUSES,
    UTCDateTime,
)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Amount = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE = "refund_approvals"
ASIDE = "_refund_approvals_old"
# The 0004 columns, in their order, shared by both directions.
COLUMNS_0004 = (
    "id, payment_id, currency, amount, reason, status, requested_by, requested_at, "
    "decided_by, decided_at, decision_note, refund_id"
)


def _columns(*, payment_nullable: bool) -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("payment_id", sa.Text, sa.ForeignKey("payments.id"), nullable=payment_nullable),
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
    ]


def _new_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=True),
        sa.Column("strategy", sa.Text, nullable=True),
        sa.Column("plan", sa.Text, nullable=True),
        sa.Column("refund_ids", sa.Text, nullable=True),
    ]


def _checks_0004() -> list[sa.CheckConstraint]:
    return [
        sa.CheckConstraint("amount > 0", name="ck_approvals_amount_positive"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in APPROVAL_STATUSES) + ")",
            name="ck_approvals_status",
        ),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by", name="ck_approvals_four_eyes"
        ),
    ]


def _rebuild(elements: list[Any], copy: str) -> None:
    """SQLite: build the table anew from ``elements`` and copy the rows with ``copy``."""
    op.rename_table(TABLE, ASIDE)  # its indexes go with it and are dropped with it
    op.create_table(TABLE, *elements, sqlite_strict=True)
    op.execute(copy)
    op.drop_table(ASIDE)
    op.create_index("ix_refund_approvals_payment_id", TABLE, ["payment_id"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(
            [
                *_columns(payment_nullable=True),
                *_new_columns(),
                *_checks_0004(),
                sa.CheckConstraint(APPROVAL_KIND_CHECK, name="ck_approvals_kind"),
                sa.CheckConstraint(APPROVAL_PLAN_CHECK, name="ck_approvals_balance_plan"),
            ],
            f"INSERT INTO {TABLE} ({COLUMNS_0004}, kind) "
            f"SELECT {COLUMNS_0004}, 'payment' FROM {ASIDE}",
        )
    else:
        op.alter_column(TABLE, "payment_id", existing_type=sa.Text, nullable=True)
        for column in _new_columns():
            column.nullable = True  # filled below, then made NOT NULL
            op.add_column(TABLE, column)
        op.execute(f"UPDATE {TABLE} SET kind = 'payment'")
        op.alter_column(TABLE, "kind", existing_type=sa.Text, nullable=False)
        op.create_check_constraint("ck_approvals_kind", TABLE, APPROVAL_KIND_CHECK)
        op.create_check_constraint("ck_approvals_balance_plan", TABLE, APPROVAL_PLAN_CHECK)
    op.create_index("ix_refund_approvals_customer_id", TABLE, ["customer_id"])


def downgrade() -> None:
    op.execute(f"DELETE FROM {TABLE} WHERE kind = 'balance'")
    op.drop_index("ix_refund_approvals_customer_id", TABLE)
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(
            [*_columns(payment_nullable=False), *_checks_0004()],
            f"INSERT INTO {TABLE} ({COLUMNS_0004}) SELECT {COLUMNS_0004} FROM {ASIDE}",
        )
    else:
        op.drop_constraint("ck_approvals_balance_plan", TABLE, type_="check")
        op.drop_constraint("ck_approvals_kind", TABLE, type_="check")
        for column in _new_columns():
            op.drop_column(TABLE, column.name)
        op.alter_column(TABLE, "payment_id", existing_type=sa.Text, nullable=False)

"""Initial schema: payments, refunds, balance lots and movements, events outbox, journal.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from refundkit._schema import IN_FLIGHT_WHERE, STATUSES, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Amount = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
zero = sa.text("0")


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("amount", Amount, nullable=False),
        sa.Column("held", Amount, nullable=False, server_default=zero),
        sa.Column("refunded", Amount, nullable=False, server_default=zero),
        sa.Column("credited", Amount, nullable=False, server_default=zero),
        sa.Column("gateway", sa.Text, nullable=False),
        sa.Column("gateway_payment_id", sa.Text, nullable=False),
        sa.Column("destination", sa.Text, nullable=False),
        sa.Column("invoice_id", sa.Text, nullable=True),
        sa.Column("captured_at", UTCDateTime, nullable=False),
        sa.Column("card_brand", sa.Text, nullable=True),
        sa.Column("card_last4", sa.Text, nullable=True),
        sa.Column("card_first6", sa.Text, nullable=True),
        sa.Column("card_exp_month", sa.Integer, nullable=True),
        sa.Column("card_exp_year", sa.Integer, nullable=True),
        sa.Column("disputed", sa.Integer, nullable=False, server_default=zero),
        sa.Column("settled", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("gateway", "gateway_payment_id", name="uq_payments_gateway_payment"),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
        sa.CheckConstraint(
            "held >= 0 AND credited >= 0 AND held + credited <= amount",
            name="ck_payments_held_within_amount",
        ),
        sa.CheckConstraint(
            "refunded >= 0 AND refunded <= held", name="ck_payments_refunded_within_held"
        ),
        sa.CheckConstraint(
            "destination IN ('invoice', 'customer_balance')", name="ck_payments_destination"
        ),
        sqlite_strict=True,
    )
    op.create_index(
        "ix_payments_customer_captured", "payments", ["customer_id", "currency", "captured_at"]
    )
    op.create_table(
        "balance_lots",
        # Creation order, for oldest/newest-first without ties on equal timestamps.
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Text, nullable=False, unique=True),
        sa.Column("customer_id", sa.Text, nullable=False, index=True),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column(
            "funding_payment_id",
            sa.Text,
            sa.ForeignKey("payments.id"),
            nullable=True,
            index=True,
        ),
        sa.Column("amount", Amount, nullable=False),
        sa.Column("remaining", Amount, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_lots_amount_positive"),
        sa.CheckConstraint("kind IN ('top_up', 'credit')", name="ck_lots_kind"),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= amount", name="ck_lots_remaining_within_amount"
        ),
        sqlite_strict=True,
    )
    op.create_index(
        "uq_lots_one_top_up_per_payment",
        "balance_lots",
        ["funding_payment_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'top_up'"),
        postgresql_where=sa.text("kind = 'top_up'"),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("payment_id", sa.Text, sa.ForeignKey("payments.id"), nullable=False, index=True),
        sa.Column("gateway", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("amount", Amount, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("actor", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.Text, nullable=True, unique=True),
        sa.Column("request_fingerprint", sa.Text, nullable=False),
        sa.Column("gateway_idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("gateway_refund_id", sa.Text, nullable=True),
        # The balance lot the money came out of (a top-up or a credit), if any.
        sa.Column("lot_id", sa.Text, sa.ForeignKey("balance_lots.id"), nullable=True),
        sa.Column("void", sa.Integer, nullable=False, server_default=zero),
        sa.Column("failure_code", sa.Text, nullable=True),
        sa.Column("failure_message", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=zero),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("gateway", "gateway_refund_id", name="uq_refunds_gateway_refund"),
        sa.CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")",
            name="ck_refunds_status",
        ),
        sqlite_strict=True,
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_refunds_in_flight",
        "refunds",
        ["status"],
        sqlite_where=sa.text(IN_FLIGHT_WHERE),
        postgresql_where=sa.text(IN_FLIGHT_WHERE),
    )
    op.create_table(
        "balance_movements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("lot_id", sa.Text, sa.ForeignKey("balance_lots.id"), nullable=False, index=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount", Amount, nullable=False),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("refund_id", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("amount <> 0", name="ck_movements_amount_nonzero"),
        sqlite_strict=True,
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Text, nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("refund_id", sa.Text, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("dispatched_at", UTCDateTime, nullable=True),
        sqlite_strict=True,
    )
    op.create_table(
        "journal_lines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("journal_id", sa.Text, nullable=False),
        sa.Column("refund_id", sa.Text, sa.ForeignKey("refunds.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("amount", Amount, nullable=False),
        sa.Column("posted_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("refund_id", "kind", "account", "side", name="uq_journal_once"),
        sa.CheckConstraint("amount > 0", name="ck_journal_amount_positive"),
        sa.CheckConstraint("side IN ('debit', 'credit')", name="ck_journal_side"),
        sa.CheckConstraint("kind IN ('refund', 'reversal')", name="ck_journal_kind"),
        sqlite_strict=True,
    )


def downgrade() -> None:
    for table in (
        "journal_lines",
        "events",
        "balance_movements",
        # refunds.lot_id refers to balance_lots: PostgreSQL refuses to drop the lots first.
        "refunds",
        "balance_lots",
        "payments",
    ):
        op.drop_table(table)

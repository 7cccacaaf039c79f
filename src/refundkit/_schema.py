"""Tables, as SQLAlchemy Core metadata. Alembic migrations create them; a test checks that the
migrations and this metadata agree.

Amounts are 64-bit integers of minor units. On SQLite the tables are STRICT, so the database
itself refuses ``1.5`` or ``'x'`` in an amount column (R-6.8); CHECK constraints back the caps
(R-3.4) on both databases.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

# Re-exported: the store and the migrations read the status vocabulary here.
from ._model import IN_FLIGHT_STATUSES as IN_FLIGHT_STATUSES
from ._model import RefundStatus

# INTEGER on SQLite (STRICT accepts only INTEGER/TEXT/REAL/BLOB/ANY), BIGINT elsewhere.
Amount = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Flag = sa.Integer  # 0/1; SQLite STRICT has no BOOLEAN

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@functools.lru_cache(maxsize=16)  # a refund writes the same "now" several times
def to_db_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("refundkit stores aware UTC datetimes only")
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def from_db_time(value: str) -> datetime:
    # fromisoformat reads the fixed format (trailing Z included) many times faster than strptime.
    return datetime.fromisoformat(value)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes stored as fixed-width ISO text, so they sort and compare as text."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else to_db_time(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_db_time(value)


IN_FLIGHT_WHERE = "status IN (" + ", ".join(f"'{s}'" for s in IN_FLIGHT_STATUSES) + ")"

#: Every refund status, for the CHECK constraint (the vocabulary lives in ``_model``).
STATUSES = tuple(s.value for s in RefundStatus)

metadata = sa.MetaData()

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("held", Amount, nullable=False, server_default=sa.text("0")),
    sa.Column("refunded", Amount, nullable=False, server_default=sa.text("0")),
    # Moved into the customer balance as credit: no longer refundable to the card directly.
    sa.Column("credited", Amount, nullable=False, server_default=sa.text("0")),
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
    sa.Column("disputed", Flag, nullable=False, server_default=sa.text("0")),
    sa.Column("settled", Flag, nullable=False, server_default=sa.text("1")),
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

# Customer lookups in capture order: the planner walks these newest or oldest first.
sa.Index(
    "ix_payments_customer_captured",
    payments.c.customer_id,
    payments.c.currency,
    payments.c.captured_at,
)

refunds = sa.Table(
    "refunds",
    metadata,
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
    sa.Column("void", Flag, nullable=False, server_default=sa.text("0")),
    sa.Column("failure_code", sa.Text, nullable=True),
    sa.Column("failure_message", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("gateway", "gateway_refund_id", name="uq_refunds_gateway_refund"),
    sa.CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
    sa.CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="ck_refunds_status"
    ),
    sqlite_strict=True,
    # Clustered on the refund id: one b-tree fewer to write per refund.
    sqlite_with_rowid=False,
)
sa.Index(
    "ix_refunds_in_flight",
    refunds.c.status,
    sqlite_where=sa.text(IN_FLIGHT_WHERE),
    postgresql_where=sa.text(IN_FLIGHT_WHERE),
)

balance_lots = sa.Table(
    "balance_lots",
    metadata,
    # Creation order, for oldest/newest-first without ties on equal timestamps.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column(
        "funding_payment_id", sa.Text, sa.ForeignKey("payments.id"), nullable=True, index=True
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

# A top-up creates exactly one lot; credits may create several per payment.
sa.Index(
    "uq_lots_one_top_up_per_payment",
    balance_lots.c.funding_payment_id,
    unique=True,
    sqlite_where=sa.text("kind = 'top_up'"),
    postgresql_where=sa.text("kind = 'top_up'"),
)

balance_movements = sa.Table(
    "balance_movements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("lot_id", sa.Text, sa.ForeignKey("balance_lots.id"), nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    # Signed: negative consumes the lot, positive gives back (a released refund).
    sa.Column("amount", Amount, nullable=False),
    sa.Column("reference", sa.Text, nullable=True),
    sa.Column("refund_id", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("amount <> 0", name="ck_movements_amount_nonzero"),
    sqlite_strict=True,
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("refund_id", sa.Text, nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("dispatched_at", UTCDateTime, nullable=True),
    sqlite_strict=True,
)

journal_lines = sa.Table(
    "journal_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("journal_id", sa.Text, nullable=False),
    sa.Column("refund_id", sa.Text, sa.ForeignKey("refunds.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("side", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("posted_at", UTCDateTime, nullable=False),
    # A refund's journal (and its reversal) is posted once, whatever retries happen.
    sa.UniqueConstraint("refund_id", "kind", "account", "side", name="uq_journal_once"),
    sa.CheckConstraint("amount > 0", name="ck_journal_amount_positive"),
    sa.CheckConstraint("side IN ('debit', 'credit')", name="ck_journal_side"),
    sa.CheckConstraint("kind IN ('refund', 'reversal')", name="ck_journal_kind"),
    sqlite_strict=True,
)

#: Outgoing webhook deliveries, one per (event, endpoint): where each stands (docs/webhooks.md).
DELIVERY_STATUSES = ("pending", "delivered", "failed")

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_seq", sa.Integer, sa.ForeignKey("events.seq"), nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    # A refund's events go out in order: a delivery waits for the earlier ones of its refund.
    sa.Column("refund_id", sa.Text, nullable=True),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    # The retry horizon (three days) runs from here; ``deliver --retry`` restarts it.
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    # A deliverer's lease: nobody else sends this delivery until it lapses (crash recovery).
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
sa.Index(
    "ix_deliveries_due",
    webhook_deliveries.c.status,
    webhook_deliveries.c.next_attempt_at,
)
sa.Index(
    "ix_deliveries_refund",
    webhook_deliveries.c.endpoint,
    webhook_deliveries.c.refund_id,
    webhook_deliveries.c.event_seq,
)

# Webhook endpoints a deliverer has seen, keyed by URL (docs/webhooks.md): where each starts in
# the outbox, and whether it answered 410 Gone. Shared by every deliverer process.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    # Only events with a larger seq are fanned out to it: a new endpoint starts from "now"
    # (the latest event when first seen), or 0 with ``backfill = true``.
    sa.Column("start_seq", sa.Integer, nullable=False),
    # Set by a 410 Gone: its deliveries are parked until ``refundkit endpoints enable``.
    sa.Column("disabled_at", UTCDateTime, nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.CheckConstraint("start_seq >= 0", name="ck_endpoints_start_seq"),
    sqlite_strict=True,
)

# Refunds above a dashboard user's limit wait here for a second person (docs/dashboard.md).
# A pending approval holds nothing: approving runs the refund through the kit, caps checked then.
APPROVAL_STATUSES = ("pending", "approving", "approved", "rejected")
# A row is either a payment approval or a balance approval, never both or neither.
APPROVAL_KIND_CHECK = (
    "(kind = 'payment' AND payment_id IS NOT NULL AND customer_id IS NULL"
    " AND strategy IS NULL AND plan IS NULL AND refund_ids IS NULL)"
    " OR (kind = 'balance' AND payment_id IS NULL AND customer_id IS NOT NULL"
    " AND strategy IS NOT NULL AND refund_id IS NULL)"
)
# A balance approval being (or once) approved keeps the plan it runs: a retry replays that one.
APPROVAL_PLAN_CHECK = (
    "kind <> 'balance' OR status NOT IN ('approving', 'approved') OR plan IS NOT NULL"
)

refund_approvals = sa.Table(
    "refund_approvals",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    # A payment approval names its payment; a balance approval (0006) its customer instead.
    sa.Column("payment_id", sa.Text, sa.ForeignKey("payments.id"), nullable=True, index=True),
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
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=True, index=True),
    # The planner strategy asked for, and the plan fixed when an approver claimed it (JSON).
    sa.Column("strategy", sa.Text, nullable=True),
    sa.Column("plan", sa.Text, nullable=True),
    # The refunds a balance approval made (a JSON list of ids); a payment one uses refund_id.
    sa.Column("refund_ids", sa.Text, nullable=True),
    sa.CheckConstraint("amount > 0", name="ck_approvals_amount_positive"),
    sa.CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in APPROVAL_STATUSES) + ")",
        name="ck_approvals_status",
    ),
    # Four eyes, in the database too: the requester never decides.
    sa.CheckConstraint(
        "decided_by IS NULL OR decided_by <> requested_by", name="ck_approvals_four_eyes"
    ),
    sa.CheckConstraint(APPROVAL_KIND_CHECK, name="ck_approvals_kind"),
    sa.CheckConstraint(APPROVAL_PLAN_CHECK, name="ck_approvals_balance_plan"),
    sqlite_strict=True,
)

# A refund in manual_review that a person decided (docs/workers.md, "Manual review"): who,
# when, what and why; written in the transaction that moves the refund.
refund_resolutions = sa.Table(
    "refund_resolutions",
    metadata,
    sa.Column("refund_id", sa.Text, sa.ForeignKey("refunds.id"), primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("resolved_by", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=False),
    sa.Column("gateway_checked", Flag, nullable=False),
    sa.CheckConstraint("status IN ('succeeded', 'failed')", name="ck_resolutions_status"),
    sqlite_strict=True,
)

# --- the dashboard and inbound webhooks (0008) -----------------------------------------------

# Signed-in dashboard sessions (docs/dashboard.md). The cookie carries a random token; only its
# SHA-256 is stored, so reading this table gives no usable cookie. Signing out deletes the row;
# a session also ends at ``expires_at`` and when the user's password hash changes (the stored
# ``password_tag`` is a digest of the hash it was opened with).
dashboard_sessions = sa.Table(
    "dashboard_sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_name", sa.Text, nullable=False, index=True),
    sa.Column("password_tag", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.CheckConstraint("expires_at > created_at", name="ck_sessions_expiry"),
    sqlite_strict=True,
)

# Sign-in attempts counted by the throttle, one row per attempt and key (a name or a client
# address), shared by every dashboard process. Rows older than the window are pruned; a
# successful sign-in deletes its name's rows and its own attempt.
sign_in_attempts = sa.Table(
    "sign_in_attempts",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("attempt_id", sa.Text, primary_key=True),
    sa.Column("attempted_at", UTCDateTime, nullable=False, index=True),
    sqlite_strict=True,
    sqlite_with_rowid=False,
)
sa.Index("ix_sign_in_attempts_key_time", sign_in_attempts.c.key, sign_in_attempts.c.attempted_at)

# Gateway webhooks that were authentic (the plugin verified their signature) but could not be
# read as the gateway's event: acknowledged so the gateway stops retrying, and kept here. The
# body itself is not kept (it may hold card data): its SHA-256 and size find it in the
# gateway's dashboard.
unprocessable_webhooks = sa.Table(
    "unprocessable_webhooks",
    metadata,
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

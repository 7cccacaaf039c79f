"""The store: SQLAlchemy on SQLite (default) or PostgreSQL. It never sees a gateway, and it is
the only part of refundkit that writes SQL or knows a column name.

One module per concept: ``payments``, ``refunds`` (and ``resolutions`` of manual reviews),
``lots``, ``planning`` (the planner's read model), ``outbox`` (events), ``journal``,
``deliveries`` (outgoing webhooks and their endpoints), ``approvals``; for the adapters,
``sessions`` and ``sign_ins`` (the dashboard's) and ``unprocessable`` (inbound webhooks
acknowledged but unreadable). The engine and its transactions are in ``_db``. The refund
path runs named statements, compiled once, on the pooled DBAPI connection (``_tx.Tx``); each
concept module declares its own and ``_sql`` gathers them. The paths off the refund path
build theirs with SQLAlchemy Core.

Callers use the package as one namespace (``from . import _store as st``, then
``st.get_payment(tx, ...)``): every name is re-exported here and looked up here at call time,
so a test can still replace one (``monkeypatch.setattr(_store, "add_held", ...)``).
"""

from __future__ import annotations

from ._clock import db_now
from ._db import (
    _WRITE,
    Store,
    check_exists,
    configure_sqlite,
    create_engine,
    open_store,
    parse_url,
    unavailable,
)
from ._sql import SQL
from ._tx import Prepared, Tx, stream
from .approvals import (
    ApprovalChanges,
    find_approvals,
    get_approval,
    insert_approval,
    move_approval,
    unclaim_approval,
)
from .deliveries import (
    claim_deliveries,
    disable_endpoint,
    enable_endpoint,
    endpoint_starts,
    fan_out_deliveries,
    finish_delivery,
    is_endpoint_disabled,
    list_deliveries,
    list_endpoints,
    register_endpoint,
    release_deliveries,
    renew_delivery,
    retry_deliveries,
)
from .journal import insert_journal, list_journal
from .lots import (
    credit_lots_of_payment,
    customer_lots,
    get_lot,
    insert_lot,
    lot_for_payment,
    lot_spent_on,
    move_lot,
    record_movement,
)
from .outbox import event_seq, insert_event, list_events, mark_dispatched
from .payments import (
    _PAYMENT_COLUMNS,
    add_credited,
    add_held,
    add_refunded,
    get_payment,
    insert_payment,
    invoice_payments,
    list_payments,
    lock_payment_row,
    payment_from_row,
    payment_id_of_gateway_payment,
    payments_to_reconcile,
    set_payment_flags,
)
from .planning import candidate_ids, largest_refundable, refundable_totals
from .refunds import (
    claim_due,
    get_refund,
    in_flight_with_next_attempt,
    insert_refund,
    list_refunds,
    refund_by_gateway_id,
    refund_by_key,
    refund_from_row,
    refund_is_void,
    refund_stats,
    refund_statuses,
    refunded_by,
    transition_refund,
    update_refund,
)
from .resolutions import get_resolution, insert_resolution
from .sessions import (
    SessionRecord,
    delete_session,
    delete_user_sessions,
    insert_session,
    live_session,
    prune_sessions,
)
from .sign_ins import (
    delete_attempts,
    insert_attempts,
    lock_sign_in_keys,
    prune_attempts,
    recent_attempts,
)
from .unprocessable import (
    UnprocessableWebhook,
    insert_unprocessable_webhook,
    list_unprocessable_webhooks,
)

__all__ = [
    "SQL",
    "_PAYMENT_COLUMNS",
    "_WRITE",
    "ApprovalChanges",
    "Prepared",
    "SessionRecord",
    "Store",
    "Tx",
    "UnprocessableWebhook",
    "add_credited",
    "add_held",
    "add_refunded",
    "candidate_ids",
    "check_exists",
    "claim_deliveries",
    "claim_due",
    "configure_sqlite",
    "create_engine",
    "credit_lots_of_payment",
    "customer_lots",
    "db_now",
    "delete_attempts",
    "delete_session",
    "delete_user_sessions",
    "disable_endpoint",
    "enable_endpoint",
    "endpoint_starts",
    "event_seq",
    "fan_out_deliveries",
    "find_approvals",
    "finish_delivery",
    "get_approval",
    "get_lot",
    "get_payment",
    "get_refund",
    "get_resolution",
    "in_flight_with_next_attempt",
    "insert_approval",
    "insert_attempts",
    "insert_event",
    "insert_journal",
    "insert_lot",
    "insert_payment",
    "insert_refund",
    "insert_resolution",
    "insert_session",
    "insert_unprocessable_webhook",
    "invoice_payments",
    "is_endpoint_disabled",
    "largest_refundable",
    "list_deliveries",
    "list_endpoints",
    "list_events",
    "list_journal",
    "list_payments",
    "list_refunds",
    "list_unprocessable_webhooks",
    "live_session",
    "lock_payment_row",
    "lock_sign_in_keys",
    "lot_for_payment",
    "lot_spent_on",
    "mark_dispatched",
    "move_approval",
    "move_lot",
    "open_store",
    "parse_url",
    "payment_from_row",
    "payment_id_of_gateway_payment",
    "payments_to_reconcile",
    "prune_attempts",
    "prune_sessions",
    "recent_attempts",
    "record_movement",
    "refund_by_gateway_id",
    "refund_by_key",
    "refund_from_row",
    "refund_is_void",
    "refund_stats",
    "refund_statuses",
    "refundable_totals",
    "refunded_by",
    "register_endpoint",
    "release_deliveries",
    "renew_delivery",
    "retry_deliveries",
    "set_payment_flags",
    "stream",
    "transition_refund",
    "unavailable",
    "unclaim_approval",
    "update_refund",
]

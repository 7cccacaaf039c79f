"""Refunds: their rows, recovery's claim on the due ones (R-2.6), and the conditional moves
between statuses. The only module that knows the refund columns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._model import Refund, RefundStatus
from .._money import Money
from .._schema import (
    IN_FLIGHT_STATUSES,
    IN_FLIGHT_WHERE,
    STATUSES,
    from_db_time,
    journal_lines,
    payments,
    refunds,
    to_db_time,
)
from ._clock import db_now_sql
from ._rows import dicts, raw_mapping
from ._tx import Prepared, insert_sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ._tx import Tx

_REFUND_COLUMNS = (
    "id, payment_id, gateway, currency, amount, status, reason, actor, idempotency_key, "
    "request_fingerprint, gateway_idempotency_key, gateway_refund_id, void, failure_code, "
    "failure_message, attempts, next_attempt_at, created_at, updated_at, lot_id"
)

# Due for recovery: unknown or pending at or after their next attempt; reserved or submitted
# once abandoned (not touched for the in-flight timeout) and not leased to another worker.
# Times are fixed-width ISO text, so they compare as text on both databases.
_DUE = (
    f"{IN_FLIGHT_WHERE} AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
    " AND (status IN ('unknown', 'pending') OR updated_at <= :stale)"
)
_CLAIM = "ORDER BY created_at, id LIMIT :batch FOR UPDATE SKIP LOCKED"

# ``updated_at`` is the value given, or the database's now when none is (``{db_now}``): an
# in-flight refund is stamped by the database's clock, which recovery's staleness check reads.
_INSERT = insert_sql(
    "refunds",
    "id, payment_id, gateway, currency, amount, status, reason, actor, idempotency_key, "
    "request_fingerprint, gateway_idempotency_key, void, attempts, created_at, updated_at, "
    "lot_id",
).replace(":updated_at", "COALESCE(:updated_at, {db_now})")

SQL: dict[str, str] = {
    "refund_stats": (
        "SELECT count(*), coalesce(sum(CASE WHEN status = 'unknown' THEN 1 ELSE 0 END), 0) "
        "FROM refunds WHERE payment_id = :pid AND status NOT IN ('failed', 'reversed')"
    ),
    "get_refund": f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE id = :id",
    "refund_by_key": f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE idempotency_key = :key",
    "refund_by_gateway_id": (
        f"SELECT {_REFUND_COLUMNS} FROM refunds "
        "WHERE gateway = :gateway AND gateway_refund_id = :grid"
    ),
    # Recovery's claim: due in-flight refunds that no other worker holds right now.
    "claim_due": f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE {_DUE} {_CLAIM}",
    "claim_due_of_payment": (
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE payment_id = :pid AND {_DUE} {_CLAIM}"
    ),
    "lease": "UPDATE refunds SET next_attempt_at = :until WHERE id = :id",
}


def refund_stats(tx: Tx, payment_id: str) -> tuple[int, int]:
    """(refunds holding balance, of which unknown) for one payment."""
    count, unknown = tx.run("refund_stats", pid=payment_id).fetchone()
    return int(count), int(unknown)


def refund_from_row(m: dict[str, Any]) -> Refund:
    return Refund(
        id=m["id"],
        payment_id=m["payment_id"],
        amount=Money(m["amount"], m["currency"]),
        status=RefundStatus(m["status"]),
        reason=m["reason"],
        actor=m["actor"],
        idempotency_key=m["idempotency_key"],
        gateway=m["gateway"],
        gateway_idempotency_key=m["gateway_idempotency_key"],
        gateway_refund_id=m["gateway_refund_id"],
        created_at=from_db_time(m["created_at"]),
        updated_at=from_db_time(m["updated_at"]),
        failure_code=m["failure_code"],
        failure_message=m["failure_message"],
        attempts=m["attempts"],
        lot_id=m["lot_id"],
    )


def _dialect_sql(tx: Tx, name: str, sql: str) -> str:
    """The name of a statement that reads the database's clock, prepared once per store."""
    if name not in tx._sql:
        tx._sql[name] = Prepared(sql.replace("{db_now}", db_now_sql(tx.dialect.name)), tx.dialect)
    return name


def insert_refund(
    tx: Tx, refund: Refund, fingerprint: str, *, void: bool, stamp_by_db: bool = False
) -> None:
    """Write a new refund; with ``stamp_by_db`` its ``updated_at`` is the database's now."""
    updated_at = None if stamp_by_db else to_db_time(refund.updated_at)
    tx.run(
        _dialect_sql(tx, "insert_refund", _INSERT),
        id=refund.id,
        payment_id=refund.payment_id,
        gateway=refund.gateway,
        currency=refund.amount.currency,
        amount=refund.amount.amount,
        status=refund.status.value,
        reason=refund.reason,
        actor=refund.actor,
        idempotency_key=refund.idempotency_key,
        request_fingerprint=fingerprint,
        gateway_idempotency_key=refund.gateway_idempotency_key,
        void=int(void),
        attempts=0,
        created_at=to_db_time(refund.created_at),
        updated_at=updated_at,
        lot_id=refund.lot_id,
    )


def refund_is_void(tx: Tx, refund_id: str) -> bool:
    """Was the refund sent as a void (an unsettled payment's full reversal)?"""
    row = tx.first("get_refund", id=refund_id)
    return bool(row and row["void"])


def get_refund(tx: Tx, refund_id: str) -> Refund | None:
    row = tx.first("get_refund", id=refund_id)
    return refund_from_row(row) if row else None


def refund_by_key(tx: Tx, key: str) -> tuple[Refund, str] | None:
    row = tx.first("refund_by_key", key=key)
    return (refund_from_row(row), row["request_fingerprint"]) if row else None


def refund_by_gateway_id(tx: Tx, gateway: str, gateway_refund_id: str) -> Refund | None:
    row = tx.first("refund_by_gateway_id", gateway=gateway, grid=gateway_refund_id)
    return refund_from_row(row) if row else None


def claim_due(
    tx: Tx,
    now: datetime,
    stale: datetime,
    lease_until: datetime,
    *,
    batch: int,
    payment_id: str | None = None,
) -> list[Refund]:
    """Claim up to ``batch`` due refunds for one recovery worker (R-2.6).

    ``FOR UPDATE SKIP LOCKED`` hands concurrent workers disjoint rows on PostgreSQL (SQLite's
    BEGIN IMMEDIATE runs claims one after another). Each claimed refund is leased: its next
    attempt moves to ``lease_until``, so no other worker finds it due after this commit. A
    worker that dies holding a lease leaves the refund due again when the lease runs out.

    ``stale`` is a time by the database's clock (``_clock``), the one in-flight refunds are
    stamped with: ``reserved`` and ``submitted`` refunds last touched at or before it are due."""
    times = {"now": to_db_time(now), "stale": to_db_time(stale), "batch": batch}
    if payment_id is None:
        rows = dicts(tx.run("claim_due", **times))
    else:
        rows = dicts(tx.run("claim_due_of_payment", pid=payment_id, **times))
    until = to_db_time(lease_until)
    tx.many("lease", [{"until": until, "id": r["id"]} for r in rows])
    return [refund_from_row(r) for r in rows]


def list_refunds(
    conn: Connection,
    *,
    payment_id: str | None = None,
    statuses: Sequence[str] | None = None,
) -> list[Refund]:
    q = sa.select(refunds).order_by(refunds.c.created_at, refunds.c.id)
    if payment_id is not None:
        q = q.where(refunds.c.payment_id == payment_id)
    if statuses is not None:
        q = q.where(refunds.c.status.in_(list(statuses)))
    return [refund_from_row(raw_mapping(r)) for r in conn.execute(q)]


def refunded_by(
    conn: Connection,
    actor: str,
    currency: str,
    *,
    statuses: Sequence[str],
    payment_id: str | None = None,
    customer_id: str | None = None,
    since: datetime | None = None,
) -> int:
    """What ``actor`` refunded in ``currency`` (minor units, refunds in ``statuses``), of one
    payment or of one customer's payments, from ``since`` on: a person's approval limit."""
    q = sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount), 0)).where(
        refunds.c.actor == actor,
        refunds.c.currency == currency,
        refunds.c.status.in_(list(statuses)),
    )
    if payment_id is not None:
        q = q.where(refunds.c.payment_id == payment_id)
    if customer_id is not None:
        of_customer = sa.select(payments.c.id).where(payments.c.customer_id == customer_id)
        q = q.where(refunds.c.payment_id.in_(of_customer))
    if since is not None:
        q = q.where(refunds.c.created_at >= since)
    return int(conn.execute(q).scalar_one())


def refund_statuses(conn: Connection, statuses: Sequence[str]) -> dict[str, str]:
    """Refund id -> status, of every refund in one of ``statuses`` or with a journal line: the
    refunds the trial balance checks the journal against (docs/accounting.md)."""
    journaled = sa.select(journal_lines.c.refund_id)
    q = sa.select(refunds.c.id, refunds.c.status).where(
        sa.or_(refunds.c.status.in_(list(statuses)), refunds.c.id.in_(journaled))
    )
    return {r.id: r.status for r in conn.execute(q)}


def in_flight_with_next_attempt(conn: Connection) -> list[tuple[Refund, datetime | None]]:
    """In-flight refunds with their scheduled next attempt (None: not scheduled yet)."""
    q = sa.select(refunds).where(refunds.c.status.in_(IN_FLIGHT_STATUSES))
    return [(refund_from_row(raw_mapping(r)), r.next_attempt_at) for r in conn.execute(q)]


_UPDATABLE = frozenset(
    {
        "status",
        "updated_at",
        "gateway_refund_id",
        "failure_code",
        "failure_message",
        "idempotency_key",
        "next_attempt_at",
        "attempts",
    }
)


def _prepared_update(tx: Tx, columns: tuple[str, ...], froms: tuple[str, ...]) -> str:
    """The name of a cached ``UPDATE refunds`` for these columns (and allowed statuses)."""
    name = f"update:{','.join(columns)}:{','.join(froms)}"
    if name not in tx._sql:
        unknown = set(columns) - _UPDATABLE
        if unknown:  # column names are spliced into SQL, so only known ones pass
            raise ValueError(f"cannot update refund columns {sorted(unknown)}")
        sets = ", ".join(_set(c, tx.dialect.name) for c in columns)
        where = "id = :rid"
        if froms:
            where += " AND status IN (" + ", ".join(f"'{x}'" for x in froms if x in STATUSES) + ")"
        tx._sql[name] = Prepared(f"UPDATE refunds SET {sets} WHERE {where}", tx.dialect)
    return name


def _set(column: str, dialect_name: str) -> str:
    if column == "updated_at":  # None: the database's now (an in-flight refund's stamp)
        return f"updated_at = COALESCE(:updated_at, {db_now_sql(dialect_name)})"
    return f"{column} = :{column}"


def _db_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: to_db_time(v) if isinstance(v, datetime) else v for k, v in values.items()}


def transition_refund(
    tx: Tx, refund_id: str, froms: tuple[str, ...], values: dict[str, Any]
) -> bool:
    """Move a refund only if it is still in one of ``froms``; False if someone else moved it.
    An ``updated_at`` of None is stamped with the database's now."""
    name = _prepared_update(tx, tuple(sorted(values)), froms)
    tx.run(name, rid=refund_id, **_db_values(values))
    return tx.rowcount() == 1


def update_refund(tx: Tx, refund_id: str, values: dict[str, Any]) -> None:
    tx.run(_prepared_update(tx, tuple(sorted(values)), ()), rid=refund_id, **_db_values(values))

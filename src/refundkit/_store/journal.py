"""The journal: the double-entry lines a refund (and its reversal) posts, once each
(docs/accounting.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._model import JournalLine
from .._money import Money
from .._schema import journal_lines, to_db_time
from ._tx import insert_sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ._tx import Tx

SQL: dict[str, str] = {
    "insert_journal": insert_sql(
        "journal_lines", "journal_id, refund_id, kind, account, side, currency, amount, posted_at"
    ),
}


def insert_journal(tx: Tx, lines: Sequence[JournalLine]) -> None:
    tx.many(
        "insert_journal",
        [
            {
                "journal_id": line.journal_id,
                "refund_id": line.refund_id,
                "kind": line.kind,
                "account": line.account,
                "side": line.side,
                "currency": line.amount.currency,
                "amount": line.amount.amount,
                "posted_at": to_db_time(line.posted_at),
            }
            for line in lines
        ],
    )


def list_journal(
    conn: Connection, refund_id: str | None = None, *, since: datetime | None = None
) -> list[JournalLine]:
    """Journal lines in posting order: of one refund, and/or posted from ``since`` on."""
    q = sa.select(journal_lines).order_by(journal_lines.c.id)
    if refund_id is not None:
        q = q.where(journal_lines.c.refund_id == refund_id)
    if since is not None:
        q = q.where(journal_lines.c.posted_at >= since)
    return [
        JournalLine(
            r.journal_id,
            r.refund_id,
            r.kind,
            r.account,
            r.side,
            Money(r.amount, r.currency),
            r.posted_at,
        )
        for r in conn.execute(q)
    ]

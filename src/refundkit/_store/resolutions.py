"""Resolutions: who decided a refund in manual_review, when, what and why (docs/workers.md,
"Manual review"); written in the transaction that moves the refund."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._model import iso
from .._schema import from_db_time, to_db_time
from ._tx import insert_sql

if TYPE_CHECKING:
    from ._tx import Tx

_RESOLUTION_COLUMNS = "refund_id, status, resolved_by, note, resolved_at, gateway_checked"

SQL: dict[str, str] = {
    "insert_resolution": insert_sql("refund_resolutions", _RESOLUTION_COLUMNS),
    "get_resolution": (
        f"SELECT {_RESOLUTION_COLUMNS} FROM refund_resolutions WHERE refund_id = :refund_id"
    ),
}


def insert_resolution(
    tx: Tx, refund_id: str, status: str, by: str, note: str, at: datetime, *, checked: bool
) -> None:
    tx.run(
        "insert_resolution",
        refund_id=refund_id,
        status=status,
        resolved_by=by,
        note=note,
        resolved_at=to_db_time(at),
        gateway_checked=int(checked),
    )


def get_resolution(tx: Tx, refund_id: str) -> dict[str, Any] | None:
    row = tx.first("get_resolution", refund_id=refund_id)
    if row is None:
        return None
    return {
        "refund_id": row["refund_id"],
        "status": row["status"],
        "resolved_by": row["resolved_by"],
        "note": row["note"],
        "resolved_at": iso(from_db_time(row["resolved_at"])),
        "gateway_checked": bool(row["gateway_checked"]),
    }

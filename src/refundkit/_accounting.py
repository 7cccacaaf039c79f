"""Accounting export: journal lines as CSV or JSON Lines with stable ids, and a trial balance.

A line's id is ``<journal id>/<side>/<account>`` (for example ``jr_rf_1/debit/refunds``): the
schema allows one line per (refund, kind, account, side) and journal ids derive from the refund
id, so an export run twice, or over overlapping windows, gives the same ids and an importer can
dedupe by them (docs/accounting.md).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import IO, Any, Final

import attrs

from . import _store as st
from ._errors import InvalidInput
from ._model import JournalLine, iso
from ._money import Money
from ._store import Store

#: Export columns, in order (CSV header and JSON keys).
COLUMNS: Final = (
    "line_id",
    "journal_id",
    "refund_id",
    "kind",
    "account",
    "side",
    "currency",
    "amount",
    "amount_decimal",
    "posted_at",
)
FORMATS: Final = ("csv", "jsonl")
#: Which journals a refund in each status must have; any other status has none.
EXPECTED_JOURNALS: Final[dict[str, tuple[str, ...]]] = {
    "succeeded": ("refund",),
    "reversed": ("refund", "reversal"),
}


def line_id(line: JournalLine) -> str:
    return f"{line.journal_id}/{line.side}/{line.account}"


def export_row(line: JournalLine) -> dict[str, Any]:
    """One line for export: amounts as integer minor units and as an exact decimal string."""
    return {
        "line_id": line_id(line),
        "journal_id": line.journal_id,
        "refund_id": line.refund_id,
        "kind": line.kind,
        "account": line.account,
        "side": line.side,
        "currency": line.amount.currency,
        "amount": line.amount.amount,
        "amount_decimal": line.amount.decimal_str(),
        "posted_at": iso(line.posted_at),
    }


def write_export(lines: Iterable[JournalLine], out: IO[str], fmt: str) -> int:
    """Write ``lines`` to ``out`` as ``csv`` or ``jsonl``; returns how many were written."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for line in lines:
            writer.writerow(export_row(line))
            count += 1
    else:
        for line in lines:
            out.write(json.dumps(export_row(line), ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
    return count


def read_lines(
    store: Store, *, since: datetime | None = None, refund_id: str | None = None
) -> list[JournalLine]:
    """Journal lines in posting order, optionally from ``since`` (inclusive) or of one refund."""
    if since is not None:
        if since.tzinfo is None:
            raise InvalidInput("since must be an aware datetime (UTC)")
        since = since.astimezone(UTC)
    with store.connect() as conn:
        return st.list_journal(conn, refund_id, since=since)


def parse_since(text: str) -> datetime:
    """``2026-11-01`` or ``2026-11-01T10:00:00Z`` (a time without a zone is UTC)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--since must be a date or an ISO 8601 time (2026-11-01T10:00:00Z), not {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- the trial balance --------------------------------------------------------------------------


@attrs.frozen
class MissingJournal:
    refund_id: str
    status: str
    kind: str  # the journal that should exist ("refund" or "reversal")


@attrs.frozen
class TrialBalance:
    """Debits and credits per currency, and what does not add up."""

    totals: dict[str, tuple[Money, Money]]  # currency -> (debits, credits)
    unbalanced_journals: tuple[str, ...] = ()
    missing: tuple[MissingJournal, ...] = ()
    #: Journals of refunds whose status should have none (e.g. a failed refund).
    unexpected: tuple[tuple[str, str], ...] = ()  # (journal id, refund status)

    @property
    def ok(self) -> bool:
        balanced = all(d == c for d, c in self.totals.values())
        return balanced and not (self.unbalanced_journals or self.missing or self.unexpected)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "totals": {
                cur: {"debit": d.amount, "credit": c.amount, "balanced": d == c}
                for cur, (d, c) in sorted(self.totals.items())
            },
            "unbalanced_journals": list(self.unbalanced_journals),
            "missing": [attrs.asdict(m) for m in self.missing],
            "unexpected": [{"journal_id": j, "status": s} for j, s in self.unexpected],
        }


def trial_balance(lines: Sequence[JournalLine], statuses: dict[str, str]) -> TrialBalance:
    """Check ``lines`` against each refund's ``statuses`` (refund id -> status), purely."""
    totals: dict[str, tuple[Money, Money]] = {}
    per_journal: dict[tuple[str, str], int] = {}
    kinds: dict[str, set[str]] = {}
    journal_refund: dict[str, str] = {}
    for line in lines:
        cur = line.amount.currency
        debit, credit = totals.get(cur, (Money.zero(cur), Money.zero(cur)))
        if line.side == "debit":
            debit = debit + line.amount
        else:
            credit = credit + line.amount
        totals[cur] = (debit, credit)
        sign = 1 if line.side == "debit" else -1
        key = (line.journal_id, cur)
        per_journal[key] = per_journal.get(key, 0) + sign * line.amount.amount
        kinds.setdefault(line.refund_id, set()).add(line.kind)
        journal_refund[line.journal_id] = line.refund_id
    unbalanced = tuple(sorted({j for (j, _), v in per_journal.items() if v != 0}))
    missing = tuple(
        MissingJournal(refund_id, status, kind)
        for refund_id, status in sorted(statuses.items())
        for kind in EXPECTED_JOURNALS.get(status, ())
        if kind not in kinds.get(refund_id, set())
    )
    unexpected = tuple(
        (journal_id, statuses.get(refund_id, "missing"))
        for journal_id, refund_id in sorted(journal_refund.items())
        if statuses.get(refund_id) not in EXPECTED_JOURNALS
    )
    return TrialBalance(totals, unbalanced, missing, unexpected)


def check(store: Store) -> TrialBalance:
    """The trial balance of the whole journal against the refunds' statuses."""
    lines = read_lines(store)
    with store.connect() as conn:
        statuses = st.refund_statuses(conn, sorted(EXPECTED_JOURNALS))
    return trial_balance(lines, statuses)

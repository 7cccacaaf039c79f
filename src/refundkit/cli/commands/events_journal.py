"""``refundkit events`` and ``journal``: the outbox, failed deliveries, the accounting journal."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from .._app import Run, cli, kit_command
from .._parse import parse_cursor
from .._render import (
    FittedTable,
    balance_sentence,
    events_table,
    journal_balanced,
    journal_table,
    journal_totals,
    make_table,
    print_list,
    when,
)

if TYPE_CHECKING:
    from rich.text import Text

    from ..._delivery import Delivery


@kit_command(cli, "events")
@click.option(
    "--after", metavar="EVT_ID", help="Only events after this event id (or sequence number)."
)
@click.option(
    "--limit", type=click.IntRange(min=1, max=2**63 - 1), metavar="N", help="At most N events."
)
@click.option("--refund", "refund_id", metavar="ID", help="Only events of this refund.")
@click.option(
    "--failed",
    is_flag=True,
    help="List dead-lettered webhook deliveries instead (retry with `deliver --retry`).",
)
def events_command(
    run: Run, after: str | None, limit: int | None, refund_id: str | None, failed: bool
) -> None:
    """List the event outbox, oldest first (charge.refunded, refund.pending, ...).

    Each event carries the refund, its payment, the customer and the masked card. Consumers
    dedupe by the event id. With --failed: the webhook deliveries that gave up.
    """
    if failed:
        show_failed_deliveries(run)
        return
    events = run.kit.events(parse_cursor(after), limit=limit, refund_id=refund_id)
    print_list(run, "events", events, events_table, empty="No events.")


@kit_command(cli, "journal")
@click.option("--refund", "refund_id", metavar="ID", help="Only the entries of this refund.")
@click.option(
    "--since", metavar="WHEN", help="Only lines posted from WHEN (2026-11-01 or an ISO time)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "jsonl"]),
    default="table",
    show_default=True,
    help="Export as CSV or JSON Lines (one line per journal line, stable line ids).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Trial balance: debits equal credits per currency, every refund journaled; exit 1 if not.",
)
def journal_command(
    run: Run, refund_id: str | None, since: str | None, fmt: str, check: bool
) -> None:
    """Show the accounting journal: debits and credits per refund, with totals.

    An invoice refund debits `refunds`; a customer-balance refund debits
    `customer_balance:<customer>`; both credit `gateway_clearing:<gateway>`.
    """
    if check:
        show_trial_balance(run)
        return
    if refund_id is not None:
        run.kit.get_refund(refund_id)
    if since is not None or fmt != "table":
        export_journal(run, refund_id, since, fmt)
        return
    lines = run.kit.journal(refund_id)
    if run.as_json:
        totals = journal_totals(lines)
        run.emit(
            {
                "lines": [line.to_dict() for line in lines],
                "totals": {
                    cur: {"debit": d.amount, "credit": c.amount} for cur, (d, c) in totals.items()
                },
                "balanced": journal_balanced(lines),
            }
        )
        return
    if lines:
        run.console.print(journal_table(lines))
    run.console.print(balance_sentence(lines))


def export_journal(run: Run, refund_id: str | None, since: str | None, fmt: str) -> None:
    from ..._accounting import parse_since, write_export

    start = parse_since(since) if since is not None else None
    lines = run.kit.journal(refund_id, since=start)
    if fmt == "table":
        if run.as_json:
            run.emit({"lines": [line.to_dict() for line in lines]})
        elif lines:
            run.console.print(journal_table(lines))
        else:
            run.console.print("No journal lines.")
        return
    write_export(lines, sys.stdout, fmt)


def show_trial_balance(run: Run) -> None:
    report = run.kit.trial_balance()
    if run.as_json:
        run.emit(report.to_dict())
    else:
        for cur, (debit, credit) in sorted(report.totals.items()):
            verdict = "balanced" if debit == credit else "NOT balanced"
            run.console.print(
                f"{cur}: debits {debit.format()}, credits {credit.format()}: {verdict}"
            )
        for journal_id in report.unbalanced_journals:
            run.console.print(f"journal {journal_id} does not balance")
        for m in report.missing:
            run.console.print(f"refund {m.refund_id} is {m.status} but has no {m.kind} journal")
        for journal_id, status in report.unexpected:
            run.console.print(f"journal {journal_id} belongs to a refund that is {status}")
        if report.ok:
            run.console.print("The journal balances and every refund has its journal.")
    if not report.ok:
        if run.as_json:  # the report is the one JSON document; the exit code says it failed
            raise click.exceptions.Exit(1)
        raise run.fail("journal_check_failed", "the journal check found problems", exit_code=1)


def show_failed_deliveries(run: Run) -> None:
    failed = run.kit.webhook_deliveries("failed")
    empty = "No failed webhook deliveries."
    if not print_list(run, "failed", failed, failed_deliveries_table, empty=empty):
        return
    run.console.print("Retry one with: refundkit deliver --retry EVENT_ID")
    if any(d.last_status_code == 410 for d in failed):
        run.console.print(
            "A 410 Gone disabled its endpoint: `refundkit endpoints enable URL` sends it again, "
            "then the endpoint's parked deliveries, in order."
        )


def failed_deliveries_table(failed: Sequence[Delivery]) -> FittedTable:
    rows: list[list[str | Text]] = [
        [
            d.event_id,
            d.refund_id or "—",
            d.endpoint,
            str(d.attempts),
            d.last_error or "—",
            when(d.last_attempt_at) if d.last_attempt_at else "—",
        ]
        for d in failed
    ]
    columns = [
        ("event", "id"),
        ("refund", "id"),
        ("endpoint", "text"),
        ("attempts", "amount"),
        ("last error", "text"),
        ("last attempt (UTC)", "text"),
    ]
    return make_table(columns, rows, title="Dead-lettered webhook deliveries")

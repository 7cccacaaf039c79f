"""``refundkit recover`` and ``resolve``: outcomes the gateway did not tell, and manual review."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from ..._model import iso
from ..._schedule import format_schedule, parse_schedule
from .._app import Run, cli, kit_command
from .._render import refund_outcome, refund_summary, refunds_table, when

if TYPE_CHECKING:
    from rich.console import Console

    from ..._kit import RecoveryReport
    from ..._model import Refund


@kit_command(cli, "recover")
@click.option("--payment", "payment_id", metavar="ID", help="Only refunds of this payment.")
@click.option(
    "--force",
    is_flag=True,
    help="Look up every in-flight refund now, not only those due on the schedule.",
)
@click.option(
    "--schedule",
    metavar="WAITS",
    help="Waits before each attempt, e.g. 15s,1m,3m,1h,1d*5 (the default); after the last "
    "one a refund goes to manual review.",
)
def recover_command(run: Run, payment_id: str | None, force: bool, schedule: str | None) -> None:
    """Settle refunds whose outcome is not known yet, by looking them up at their gateway.

    Prints what was resolved, what is still unknown, what was sent to manual review (after
    the last attempt of the schedule) and when each refund still in flight is due next.
    Never re-sends a refund blindly. Run it from cron or several workers at once: each due
    refund is claimed by one worker, so it gets one lookup per attempt.
    """
    steps = parse_schedule(schedule) if schedule is not None else None
    if steps is not None:
        run.kit.retry_schedule = steps
    if payment_id is not None:
        run.kit.payment(payment_id)
    report = run.kit.recover(payment_id, force=force)
    due = [(r, at) for r, at in run.kit.recovery_due() if payment_id in (None, r.payment_id)]
    waiting = [r for r, _ in due]
    if run.as_json:
        run.emit(
            {
                **report.to_dict(),
                "in_flight": [r.to_dict() for r in waiting],
                "schedule": format_schedule(run.kit.retry_schedule),
                "next_due": [{"refund_id": r.id, "at": iso(at)} for r, at in due],
            }
        )
        return
    _print_recovery(run.console, report, waiting, force=force)
    if due:
        refund, at = due[0]
        run.console.print(
            f"Next due: {refund.id} at {when(at)} UTC "
            f"(schedule {format_schedule(run.kit.retry_schedule)})."
        )


@kit_command(cli, "resolve")
@click.argument("refund_id")
@click.option("--succeeded", "outcome", flag_value="succeeded", help="The money went back.")
@click.option("--failed", "outcome", flag_value="failed", help="No money moved.")
@click.option("--note", required=True, metavar="TEXT", help="Why: what you saw, and where.")
@click.option("--by", "actor", required=True, metavar="NAME", help="Who decides (kept).")
@click.option(
    "--gateway-refund-id", metavar="ID", help="The gateway's id of the refund, if you found it."
)
@click.option(
    "--force", is_flag=True, help="Decide without asking the gateway (it is wrong or down)."
)
def resolve_command(
    run: Run,
    refund_id: str,
    outcome: str | None,
    note: str,
    actor: str,
    gateway_refund_id: str | None,
    force: bool,
) -> None:
    """Decide a refund in manual review: --succeeded or --failed, with --note and --by.

    The gateway is asked first where it can be; if it says otherwise nothing changes and the
    command exits 2 (--force decides anyway). Succeeded books the refund (journal,
    charge.refunded); failed releases its hold (refund.failed). The decision is kept.
    """
    if outcome is None:
        raise run.fail("usage", "say what happened: --succeeded or --failed")
    refund = run.kit.resolve(
        refund_id,
        outcome,
        actor=actor,
        note=note,
        gateway_refund_id=gateway_refund_id,
        force=force,
    )
    if run.as_json:
        run.emit({**refund.to_dict(), "resolution": run.kit.resolution(refund.id)})
        return
    run.console.print(refund_outcome(refund))
    run.console.print(refund_summary(refund))


def _print_recovery(
    console: Console, report: RecoveryReport, waiting: Sequence[Refund], *, force: bool
) -> None:
    sections = (
        ("Resolved", report.resolved),
        ("Still unknown", report.still_unknown),
        ("Sent to manual review", report.manual_review),
    )
    for title, refunds in sections:
        if refunds:
            console.print(refunds_table(refunds, title=f"{title} ({len(refunds)})"))
        else:
            console.print(f"{title}: none.")
    reported = {r.id for _, refunds in sections for r in refunds}
    rest = [r for r in waiting if r.id not in reported]
    if rest:
        hint = "" if force else "; --force looks them up now"
        console.print(f"{len(rest)} refund(s) still in flight, not due yet{hint}.")

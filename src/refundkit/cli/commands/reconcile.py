"""``refundkit reconcile``: the drift between the gateways' refunds and the local record."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .._app import Run, cli, kit_command
from .._parse import parse_since
from .._render import make_table

if TYPE_CHECKING:
    from rich.text import Text


@kit_command(cli, "reconcile")
@click.option("--payment", "payment_id", metavar="ID", help="Only this payment.")
@click.option("--gateway", metavar="NAME", help="Only payments taken through this gateway.")
@click.option(
    "--since",
    metavar="DATE",
    help="Only payments captured at or after this ISO date or time (UTC unless it says).",
)
def reconcile_command(
    run: Run, payment_id: str | None, gateway: str | None, since: str | None
) -> None:
    """Compare refunds at the gateways with the local record and report the drift.

    Refunds made in a gateway's dashboard are imported (counted against the cap, journaled,
    announced as refund.external); amount or currency mismatches go to manual review; local
    refunds the gateway does not know are flagged. Running it again imports nothing twice.
    """
    report = run.kit.reconcile(payment_id, gateway=gateway, since=parse_since(since))
    if run.as_json:
        run.emit(report.to_dict())
        return
    if report.clean:
        run.console.print(
            f"No drift: {report.payments_checked} payment(s) agree with their gateway."
        )
        return
    rows: list[list[str | Text]] = [
        [
            f.action,
            f.code,
            f.payment_id,
            f.refund_id or "—",
            f.gateway_refund_id or "—",
            f.amount.format() if f.amount else "—",
            f.message,
        ]
        for f in report.findings
    ]
    columns = [
        ("action", "short"),
        ("code", "id"),
        ("payment", "id"),
        ("refund", "id"),
        ("gateway refund", "id"),
        ("amount", "amount"),
        ("what", "text"),
    ]
    title = f"Drift in {report.payments_checked} payment(s) checked"
    run.console.print(make_table(columns, rows, title=title))

"""``refundkit demo``: the tour (``refundkit._tour``) in a fresh store, told step by step.

The tour itself prints nothing; this module tells what it returns, or sums it up as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..._tour import (
    CUSTOMER,
    INVOICE_PAYMENT,
    SPENT_ON,
    THIRD_PAYMENT,
    TOPUP_PAYMENT,
    Tour,
    run_tour,
)
from .._app import Run, cli, kit_command, make_console, open_kit
from .._render import (
    balance_sentence,
    events_table,
    journal_balanced,
    journal_table,
    payments_table,
    quote_dict,
    status_text,
)

if TYPE_CHECKING:
    from rich.console import Console

    from ..._model import Refund


@kit_command(cli, "demo", store=False)
@click.option(
    "--dir",
    "directory",
    metavar="PATH",
    type=click.Path(file_okay=False, dir_okay=True, writable=True),
    help="Where to create the demo store (default: a new temporary directory).",
)
def demo_command(run: Run, directory: str | None) -> None:
    """Walk through refunds on the offline sandbox gateway, in a fresh store.

    Creates a new local SQLite store (never the --db one), records three payments of one
    customer (an invoice payment, a customer-balance top-up, one more), then shows quotes in
    plain words, a full refund, a partial refund, a refused refund, a pending refund settled by
    a signed sandbox webhook, the events and the journal, and what to try next with
    `--db <the demo store>`. Refuses a --dir that already holds a demo store with payments.
    """
    path = _demo_dir(directory)
    url = f"sqlite:///{path / 'refundkit.db'}"
    _refuse_a_used_dir(run, path, url)
    kit = open_kit(url, as_json=run.as_json, create=True)
    try:
        tour = run_tour(kit, db_url=url)
    finally:
        kit.close()
    if run.as_json:
        run.emit(tour_summary(tour, str(path)))
    else:
        tell_tour(make_console(), tour, str(path))


def _demo_dir(directory: str | None) -> Path:
    """--dir (made if missing), or a new temporary directory."""
    import tempfile

    if directory is None:
        return Path(tempfile.mkdtemp(prefix="refundkit-demo-"))
    path = Path(directory).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _refuse_a_used_dir(run: Run, path: Path, url: str) -> None:
    """The tour needs an empty sandbox and store: a --dir an earlier demo used is refused."""
    sandbox_file = path / "refundkit.sandbox.db"
    if sandbox_file.exists() and sandbox_file.stat().st_size > 0:
        raise run.fail(
            "demo_store_not_empty",
            f"{path} already holds a sandbox from an earlier demo; "
            "pick an empty --dir (or leave --dir out for a new temporary one)",
        )
    db_path = path / "refundkit.db"
    if not db_path.exists():
        return
    kit = open_kit(url, as_json=run.as_json)
    try:
        used = bool(kit.payments())
    finally:
        kit.close()
    if used:
        raise run.fail(
            "demo_store_not_empty",
            f"{db_path} already holds payments; pick an empty --dir "
            "(or leave --dir out for a new temporary one)",
        )


def tour_summary(tour: Tour, directory: str) -> dict[str, Any]:
    """The tour as ``refundkit --json demo`` prints it; payments and refunds as they end."""
    refusal = tour.refusal
    return {
        "db": tour.db_url,
        "directory": directory,
        "customer_id": CUSTOMER,
        "payments": [payment.to_dict() for payment in tour.payments],
        "balance_redeemed": {"amount": tour.spent.to_dict(), "reference": SPENT_ON},
        "quotes": {payment_id: quote_dict(quote) for payment_id, quote in tour.quotes.items()},
        "refunds": {
            "full": tour.refunds.full.to_dict(),
            "partial": tour.refunds.partial.to_dict(),
            "pending_then_webhook": tour.refunds.pending.to_dict(),
        },
        "refused": {
            "payment_id": refusal.payment_id,
            "amount": refusal.asked.to_dict(),
            "error": refusal.error.to_dict(),
        },
        "webhook": {
            "refund_id": tour.made.pending.id,
            "from": tour.made.pending.status.value,
            "to": tour.refunds.pending.status.value,
        },
        "events": [event.to_dict() for event in tour.events],
        "journal": {
            "lines": [line.to_dict() for line in tour.journal],
            "balanced": journal_balanced(tour.journal),
        },
        "next": tour.next_commands,
    }


# --- telling the tour -------------------------------------------------------------------------


def tell_tour(console: Console, tour: Tour, directory: str) -> None:
    from rich.text import Text

    console.print(Text("refundkit demo", style="bold"))
    console.print(f"A fresh store: {tour.db_url}")
    console.print(f"(in {directory}; the sandbox gateway keeps its own state next to it)")
    _tell_payments(console, tour)
    _tell_refunds(console, tour)
    _tell_refusal(console, tour)
    _tell_webhooks(console, tour)
    _step(console, "5. Events (the outbox a billing backend consumes)")
    console.print(events_table(tour.events, title=None, compact=True))
    _step(console, "6. Journal: one balanced entry per refund")
    console.print(journal_table(tour.journal, title=None, compact=True))
    console.print(balance_sentence(tour.journal))
    _step(console, "What to try next")
    for command in tour.next_commands:
        console.print(f"  {command}", soft_wrap=True)


def _step(console: Console, title: str) -> None:
    from rich.rule import Rule
    from rich.text import Text

    console.print()
    console.print(Rule(Text(title, style="bold"), align="left"))


def _tell_payments(console: Console, tour: Tour) -> None:
    from rich.text import Text

    _step(console, "1. Payments of one customer, captured on the sandbox gateway")
    console.print(payments_table(tour.recorded, title=None))
    console.print(
        f"{CUSTOMER} then spends {tour.spent.format()} of the balance (topped up by "
        f"{TOPUP_PAYMENT}) on invoice {SPENT_ON}; {tour.left.format()} is left."
    )
    _step(console, "2. Quotes: how much may go back, in plain words")
    for payment_id, quote in tour.quotes.items():
        console.print(Text.assemble((f"  {payment_id}: ", "bold"), quote.explain()))


def _tell_refunds(console: Console, tour: Tour) -> None:
    from rich.text import Text

    made = tour.made
    _step(console, "3. Refunds")
    what = f"full refund of {INVOICE_PAYMENT} (no amount given: the quote's default)"
    _tell_refund(console, what, made.full)
    _tell_refund(console, f"partial refund of the top-up {TOPUP_PAYMENT}", made.partial)
    console.print(Text.assemble(("    now: ", "dim"), tour.topup_quote.explain()))
    what = f"refund of {THIRD_PAYMENT} (the sandbox holds cents .92 as pending)"
    _tell_refund(console, what, made.pending)
    console.print("    A pending refund already counts against the cap of its payment.")


def _tell_refund(console: Console, what: str, refund: Refund) -> None:
    from rich.text import Text

    line = Text("  ✓ " if refund.status.value == "succeeded" else "  … ")
    line.append(f"{what}: {refund.amount.format()} ")
    line.append_text(status_text(refund.status))
    console.print(line)
    console.print(
        f"    refund {refund.id}, gateway refund {refund.gateway_refund_id or '—'}", style="dim"
    )


def _tell_refusal(console: Console, tour: Tour) -> None:
    from rich.text import Text

    refusal = tour.refusal
    exc = refusal.error
    console.print(
        Text.assemble(
            ("  ✗ refused: ", "bold red"),
            f"{refusal.asked.format()} of {refusal.payment_id} — {exc.code}: {exc.message}",
        )
    )
    for limit in getattr(exc, "limits", ()):
        at_most = limit.amount.format()
        console.print(f"      limit {limit.code} (at most {at_most}): {limit.message}")


def _tell_webhooks(console: Console, tour: Tour) -> None:
    from rich.text import Text

    pending = tour.made.pending
    _step(console, "4. The gateway settles the pending refund and sends a signed webhook")
    for webhook in tour.webhooks:
        console.print(
            f"  sandbox → refund.updated for {pending.gateway_refund_id} "
            f"({webhook.size} bytes, signed in {', '.join(webhook.header_names)})"
        )
        for applied in webhook.applied:
            line = Text(f"  kit.handle_gateway_webhook: {applied.id} {pending.status.value} → ")
            line.append_text(status_text(applied.status))
            console.print(line)

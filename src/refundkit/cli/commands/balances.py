"""``refundkit balance``, ``redeem``, ``credit`` and ``invoice``: customer balances and invoices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .._app import Run, cli, kit_command
from .._parse import DEFAULT_CURRENCY, parse_amount
from .._render import invoice_payments_table, key_values, lots_table, plural

if TYPE_CHECKING:
    from ..._kit import RefundKit
    from ..._model import Payment


REDEEM_ORDERS = ("oldest_first", "newest_first")


@kit_command(cli, "balance")
@click.argument("customer_id")
def balance_command(run: Run, customer_id: str) -> None:
    """Show a customer's balance per currency, lot by lot: kind and the payment that funded it.

    A lot is a top_up (a payment into the balance) or a credit (moved out of a payment's
    refundable balance by `refundkit credit`); `refundkit refund-balance` sends lots back to
    the cards of the payments that funded them.
    """
    balance = run.kit.balance(customer_id)
    if run.as_json:
        run.emit(balance.to_dict())
        return
    if not balance.lots:
        run.console.print(f"{customer_id} has no balance.")
        return
    run.console.print(lots_table(balance.lots, title=f"Balance of {customer_id}"))
    run.console.print("Total: " + ", ".join(m.format() for m in balance.totals.values()))


@kit_command(cli, "redeem")
@click.argument("customer_id")
@click.option("--amount", required=True, metavar="DECIMAL", help="How much, e.g. 5.00.")
@click.option("--currency", required=True, metavar="CODE", help="ISO 4217 code (any case).")
@click.option(
    "--reference", required=True, metavar="REF", help="What it paid for, e.g. the invoice id."
)
@click.option(
    "--order",
    type=click.Choice(REDEEM_ORDERS, case_sensitive=False),
    default="oldest_first",
    show_default=True,
    help="Which lots are spent first.",
)
def redeem_command(
    run: Run, customer_id: str, amount: str, currency: str, reference: str, order: str
) -> None:
    """Spend part of a customer's balance on REF, lot by lot (oldest lots first by default).

    What a top-up paid for is then no longer refundable to the card: its quote says so.
    """
    money = parse_amount(amount, currency)
    order = order.lower()
    left = run.kit.redeem_balance(customer_id, money, reference=reference, order=order)
    if run.as_json:
        run.emit(
            {
                "customer_id": customer_id,
                "redeemed": money.to_dict(),
                "reference": reference,
                "order": order,
                "remaining": left.to_dict(),
            }
        )
        return
    run.console.print(
        f"Spent {money.format()} of {customer_id}'s balance on {reference} ({order}); "
        f"{left.format()} left."
    )


def _source_of_credit(kit: RefundKit, source_id: str) -> Payment | None:
    """The payment ``source_id`` names, or the newest payment of the invoice it names."""
    from ..._errors import NotFound

    try:
        return kit.payment(source_id)
    except NotFound:
        pass
    try:
        return kit.invoice(source_id).payments[0]
    except NotFound:
        return None


@kit_command(cli, "credit")
@click.argument("source_id")
@click.option("--amount", required=True, metavar="DECIMAL", help="How much to credit, e.g. 30.00.")
@click.option(
    "--currency",
    metavar="CODE",
    help="ISO 4217 code (any case); default: the currency of the payment or invoice.",
)
@click.option("--reference", metavar="REF", help="Why, for the record, e.g. a ticket id.")
def credit_command(
    run: Run, source_id: str, amount: str, currency: str | None, reference: str | None
) -> None:
    """Issue customer credit out of a payment's (or an invoice's) refundable balance.

    SOURCE_ID is a payment id or an invoice id; an invoice's payments give newest first. The
    credit becomes balance lots that remember the payment that funded them: it is no longer
    refundable to the card directly, but `refundkit refund-balance` can still send what is
    left of it back to that card. More than the refundable balance is refused.
    """
    source = _source_of_credit(run.kit, source_id)
    if currency is None:
        currency = source.amount.currency if source is not None else DEFAULT_CURRENCY
    money = parse_amount(amount, currency)
    lots = run.kit.issue_credit(source_id, money, reference=reference)
    customer_id = source.customer_id if source is not None else None
    if run.as_json:
        run.emit(
            {
                "source_id": source_id,
                "customer_id": customer_id,
                "credited": money.to_dict(),
                "reference": reference,
                "lots": [lot.to_dict() for lot in lots],
            }
        )
        return
    run.console.print(
        f"Credited {money.format()} of {source_id} to {customer_id}'s balance as "
        f"{plural(len(lots), 'lot')}; it is no longer refundable to the card directly."
    )
    run.console.print(lots_table(lots))


@kit_command(cli, "invoice")
@click.argument("invoice_id")
def invoice_command(run: Run, invoice_id: str) -> None:
    """Show an invoice: its total, what is refundable, refunded and credited, and its payments.

    An invoice paid by several payments (split tender) lists each with its own refundable
    balance; the invoice's refundable balance is their sum.
    """
    inv = run.kit.invoice(invoice_id)
    if run.as_json:
        run.emit(inv.to_dict())
        return
    in_flight = inv.total - inv.refundable - inv.refunded - inv.credited
    rows: list[tuple[str, Any]] = [
        ("invoice", inv.invoice_id),
        ("customer", ", ".join(sorted({p.customer_id for p in inv.payments}))),
        ("total", inv.total.format()),
        ("refundable", inv.refundable.format()),
        ("refunded", inv.refunded.format()),
        ("credited", inv.credited.format()),
    ]
    if in_flight:
        rows.append(("held by refunds in flight", in_flight.format()))
    rows.append(("payments", str(len(inv.payments))))
    run.console.print(key_values(rows, title=f"Invoice {inv.invoice_id}"))
    run.console.print(invoice_payments_table(inv))

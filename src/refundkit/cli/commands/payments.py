"""``refundkit payments add|list|show``: the captured charges refunds go back to."""

from __future__ import annotations

import click

from ..._model import Card, Destination
from ..._money import Money
from .._app import Run, cli, kit_command
from .._parse import parse_amount, parse_exp
from .._render import (
    card_text,
    key_values,
    payments_table,
    print_list,
    quote_dict,
    refunds_table,
    yes,
)


@cli.group("payments")
def payments_group() -> None:
    """Record, list and show payments (captured charges refunds go back to)."""


@kit_command(payments_group, "add")
@click.argument("payment_id", metavar="ID")
@click.option("--customer", required=True, metavar="C", help="Customer id.")
@click.option(
    "--amount",
    required=True,
    metavar="DECIMAL",
    help="Captured amount as a decimal string, e.g. 50.00.",
)
@click.option(
    "--currency", required=True, metavar="CODE", help="ISO 4217 code, e.g. USD (any case)."
)
@click.option(
    "--gateway", required=True, metavar="NAME", help="The gateway that took it, e.g. sandbox."
)
@click.option(
    "--gateway-payment-id", required=True, metavar="X", help="The charge's id at the gateway."
)
@click.option(
    "--destination",
    type=click.Choice([d.value for d in Destination], case_sensitive=False),
    default=Destination.INVOICE.value,
    show_default=True,
    help="Where the money went: an invoice or the customer's balance (a top-up).",
)
@click.option("--invoice-id", metavar="INV", help="The invoice it paid.")
@click.option("--card-brand", metavar="BRAND", help="Card brand, e.g. visa.")
@click.option("--card-last4", metavar="DIGITS", help="Last 4 digits of the card.")
@click.option("--card-exp", metavar="MM/YYYY", help="Card expiry, e.g. 12/2030.")
def payments_add(
    run: Run,
    payment_id: str,
    customer: str,
    amount: str,
    currency: str,
    gateway: str,
    gateway_payment_id: str,
    destination: str,
    invoice_id: str | None,
    card_brand: str | None,
    card_last4: str | None,
    card_exp: str | None,
) -> None:
    """Record a captured payment under ID (recording the same one again is harmless).

    Only brand, last 4 digits and expiry of a card are ever accepted. On the sandbox gateway
    a payment without card details gets a test Visa ending in 4242.
    """
    money = parse_amount(amount, currency)
    card: Card | None = None
    if card_brand or card_last4 or card_exp:
        if not (card_brand and card_last4):
            raise run.fail("invalid_input", "--card-brand and --card-last4 go together")
        month, year = parse_exp(card_exp)
        card = Card(brand=card_brand, last4=card_last4, exp_month=month, exp_year=year)
    run.create = True
    payment = run.kit.record_payment(
        id=payment_id,
        customer_id=customer,
        amount=money,
        gateway=gateway,
        gateway_payment_id=gateway_payment_id,
        destination=destination.lower(),
        card=card,
        invoice_id=invoice_id,
    )
    if run.as_json:
        run.emit(payment.to_dict())
        return
    run.console.print(
        f"Recorded payment {payment.id}: {payment.amount.format()} from "
        f"{payment.customer_id} to {payment.destination.value}."
    )
    run.console.print(payments_table([payment], title=None))


@kit_command(payments_group, "list")
@click.option("--customer", metavar="C", help="Only this customer's payments.")
def payments_list(run: Run, customer: str | None) -> None:
    """List recorded payments, oldest first."""
    empty = "No payments recorded" + (f" for {customer}." if customer else ".")
    print_list(run, "payments", run.kit.payments(customer), payments_table, empty=empty)


@kit_command(payments_group, "show")
@click.argument("payment_id", metavar="ID")
def payments_show(run: Run, payment_id: str) -> None:
    """Show one payment, what may still be refunded (in plain words) and its refunds."""
    payment = run.kit.payment(payment_id)
    quote = run.kit.quote(payment_id)
    refunds = run.kit.refunds(payment_id)
    if run.as_json:
        run.emit(
            {
                "payment": payment.to_dict(),
                "quote": quote_dict(quote),
                "refunds": [r.to_dict() for r in refunds],
            }
        )
        return
    held = payment.held or Money.zero(payment.amount.currency)
    refunded = payment.refunded or Money.zero(payment.amount.currency)
    run.console.print(
        key_values(
            [
                ("payment", payment.id),
                ("customer", payment.customer_id),
                ("amount", payment.amount.format()),
                ("destination", payment.destination.value),
                ("invoice", payment.invoice_id),
                ("gateway", f"{payment.gateway} {payment.gateway_payment_id}"),
                ("card", card_text(payment.card, expiry=True)),
                ("captured", f"{payment.captured_at:%Y-%m-%d %H:%M:%S} UTC"),
                ("refunded", refunded.format()),
                ("held by refunds", held.format()),
                ("disputed", yes(payment.disputed)),
                ("settled", yes(payment.settled)),
            ],
            title=f"Payment {payment.id}",
        )
    )
    run.console.print(f"Quote: {quote.explain()}")
    if refunds:
        run.console.print(refunds_table(refunds))
    else:
        run.console.print("No refunds yet.")

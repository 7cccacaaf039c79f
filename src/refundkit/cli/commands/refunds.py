"""``refundkit quote``, ``refund`` and ``refunds``: what may go back, sending it, the list."""

from __future__ import annotations

import click

from ..._model import RefundStatus
from .._app import Run, cli, kit_command
from .._parse import parse_amount
from .._render import (
    limits_table,
    print_list,
    quote_dict,
    quote_summary,
    refund_outcome,
    refund_summary,
    refunds_table,
)


@kit_command(cli, "quote")
@click.argument("payment_id")
def quote_command(run: Run, payment_id: str) -> None:
    """What a refund of PAYMENT_ID may be now, and the limits that bind (why not more).

    Each limit has a stable code, the most it allows and a sentence for people. The default
    amount is what `refundkit refund` sends without --amount.
    """
    quote = run.kit.quote(payment_id)
    if run.as_json:
        run.emit(quote_dict(quote))
        return
    run.console.print(quote.explain())
    run.console.print(quote_summary(quote))
    if quote.limits:
        run.console.print(limits_table(quote))
    else:
        run.console.print("No limit binds: the whole remaining amount may go back.")


@kit_command(cli, "refund")
@click.argument("payment_id")
@click.option(
    "--amount",
    metavar="DECIMAL",
    help="How much, in the payment's currency (default: the quote's default amount).",
)
@click.option("--reason", metavar="R", help="Why, e.g. requested_by_customer.")
@click.option(
    "--idempotency-key",
    metavar="K",
    help="Retrying with the same key returns the same refund instead of a new one.",
)
@click.option("--actor", metavar="A", help="Who asks, for the audit trail, e.g. support:alice.")
def refund_command(
    run: Run,
    payment_id: str,
    amount: str | None,
    reason: str | None,
    idempotency_key: str | None,
    actor: str | None,
) -> None:
    """Refund PAYMENT_ID exactly once through the gateway that took it.

    Without --amount the quote's default amount goes back. A refusal (more than the maximum,
    a binding limit) or a gateway decline prints one error line and exits 2; nothing is
    refunded then. A pending or unknown outcome is settled later by `refundkit recover`.
    """
    payment = run.kit.payment(payment_id)
    money = parse_amount(amount, payment.amount.currency) if amount is not None else None
    refund = run.kit.refund(
        payment_id, money, reason=reason, idempotency_key=idempotency_key, actor=actor
    )
    if run.as_json:
        run.emit(refund.to_dict())
        return
    run.console.print(refund_outcome(refund))
    run.console.print(refund_summary(refund))


@kit_command(cli, "refunds")
@click.option("--payment", "payment_id", metavar="ID", help="Only refunds of this payment.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in RefundStatus], case_sensitive=False),
    help="Only refunds in this status.",
)
def refunds_command(run: Run, payment_id: str | None, status: str | None) -> None:
    """List refunds, oldest first."""
    if payment_id is not None:
        run.kit.payment(payment_id)  # an unknown payment is an error, not an empty list
    refunds = run.kit.refunds(payment_id, status=status.lower() if status else None)
    print_list(run, "refunds", refunds, refunds_table, empty="No refunds.")

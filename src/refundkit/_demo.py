"""``refundkit demo``: a guided tour on the offline sandbox gateway, in a fresh store.

One customer, three payments on the sandbox: an invoice payment, a customer-balance top-up (part
of which the customer then spends), and one more. The tour shows the quotes in plain words, a
full refund, a partial refund of the top-up, a pending refund, a refusal with the sentence of the
limit that binds, the pending refund settled by a signed sandbox webhook, then the events and
the balanced journal. The CLI only opens the store and calls :func:`run_demo`.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from ._errors import ConfigurationError, RefundkitError
from ._model import Card, Destination, Refund
from ._money import Money
from .cli import _render as cli
from .gateways.sandbox import SandboxGateway

if TYPE_CHECKING:
    from ._kit import RefundKit

CUSTOMER = "cus_ada"
INVOICE_PAYMENT = "pay_1001"
TOPUP_PAYMENT = "pay_1002"
THIRD_PAYMENT = "pay_1003"


def _usd(text: str) -> Money:
    return Money.parse(text, "USD")


def _step(console: Console, title: str) -> None:
    console.print()
    console.print(Rule(Text(title, style="bold"), align="left"))


def _done(console: Console, what: str, refund: Refund) -> None:
    line = Text("  ✓ " if refund.status.value == "succeeded" else "  … ")
    line.append(f"{what}: {refund.amount.format()} ")
    line.append_text(cli.status_text(refund.status))
    console.print(line)
    console.print(
        f"    refund {refund.id}, gateway refund {refund.gateway_refund_id or '—'}", style="dim"
    )


def next_commands(db_url: str) -> list[str]:
    """Real commands to try on the demo store."""
    db = f"refundkit --db {shlex.quote(db_url)}"
    return [
        f"{db} payments list",
        f"{db} quote {THIRD_PAYMENT}",
        f"{db} refund {THIRD_PAYMENT} --amount 10.00 --reason requested_by_customer",
        f"{db} refund {THIRD_PAYMENT} --amount 1.91   # the sandbox declines cents .91",
        f"{db} refund {THIRD_PAYMENT} --amount 1.94   # timeout after applying: unknown",
        f"{db} recover --force",
        f"{db} refunds",
        f"{db} events",
        f"{db} journal",
        f"{db} payments show {TOPUP_PAYMENT} --json",
    ]


def run_demo(
    kit: RefundKit, console: Console, *, db_url: str, directory: str | None = None
) -> dict[str, Any]:
    """Run the tour on ``kit`` (a fresh store), narrating on ``console``; return a summary."""
    gateway = kit.gateway("sandbox")
    if not isinstance(gateway, SandboxGateway):
        raise ConfigurationError("the demo needs refundkit's built-in sandbox gateway")

    console.print(Text("refundkit demo", style="bold"))
    console.print(f"A fresh store: {db_url}")
    if directory:
        console.print(f"(in {directory}; the sandbox gateway keeps its own state next to it)")

    # 1. Payments --------------------------------------------------------------------------
    _step(console, "1. Payments of one customer, captured on the sandbox gateway")
    payments = [
        kit.record_payment(
            id=INVOICE_PAYMENT,
            customer_id=CUSTOMER,
            amount=_usd("120.00"),
            gateway="sandbox",
            gateway_payment_id="sbx_ch_1001",
            destination=Destination.INVOICE,
            invoice_id="inv_1001",
        ),
        kit.record_payment(
            id=TOPUP_PAYMENT,
            customer_id=CUSTOMER,
            amount=_usd("50.00"),
            gateway="sandbox",
            gateway_payment_id="sbx_ch_1002",
            destination=Destination.CUSTOMER_BALANCE,
        ),
        kit.record_payment(
            id=THIRD_PAYMENT,
            customer_id=CUSTOMER,
            amount=_usd("80.00"),
            gateway="sandbox",
            gateway_payment_id="sbx_ch_1003",
            destination=Destination.INVOICE,
            invoice_id="inv_1002",
            card=Card(brand="mastercard", last4="4444", exp_month=3, exp_year=2029),
        ),
    ]
    console.print(cli.payments_table(payments, title=None))
    spent = _usd("15.00")
    left = kit.redeem_balance(CUSTOMER, spent, reference="inv_1003")
    console.print(
        f"{CUSTOMER} then spends {spent.format()} of the balance (topped up by "
        f"{TOPUP_PAYMENT}) on invoice inv_1003; {left.format()} is left."
    )

    # 2. Quotes ----------------------------------------------------------------------------
    _step(console, "2. Quotes: how much may go back, in plain words")
    quotes: dict[str, Any] = {}
    for payment in payments:
        quote = kit.quote(payment.id)
        quotes[payment.id] = cli.quote_dict(quote)
        console.print(Text.assemble((f"  {payment.id}: ", "bold"), quote.explain()))

    # 3. Refunds ---------------------------------------------------------------------------
    _step(console, "3. Refunds")
    full = kit.refund(
        INVOICE_PAYMENT,
        reason="requested_by_customer",
        actor="demo:support",
        idempotency_key="demo-1001-full",
    )
    _done(console, f"full refund of {INVOICE_PAYMENT} (no amount given: the quote's default)", full)
    partial = kit.refund(
        TOPUP_PAYMENT, _usd("20.00"), reason="requested_by_customer", actor="demo:support"
    )
    _done(console, f"partial refund of the top-up {TOPUP_PAYMENT}", partial)
    console.print(Text.assemble(("    now: ", "dim"), kit.quote(TOPUP_PAYMENT).explain()))
    pending = kit.refund(
        THIRD_PAYMENT, _usd("25.92"), reason="requested_by_customer", actor="demo:support"
    )
    _done(console, f"refund of {THIRD_PAYMENT} (the sandbox holds cents .92 as pending)", pending)
    console.print("    A pending refund already counts against the cap of its payment.")

    asked = _usd("60.00")
    refused: dict[str, Any] = {"payment_id": THIRD_PAYMENT, "amount": asked.to_dict()}
    try:
        kit.refund(THIRD_PAYMENT, asked, reason="requested_by_customer", actor="demo:support")
    except RefundkitError as exc:
        refused["error"] = exc.to_dict()
        console.print(
            Text.assemble(
                ("  ✗ refused: ", "bold red"),
                f"{asked.format()} of {THIRD_PAYMENT} — {exc.code}: {exc.message}",
            )
        )
        for limit in getattr(exc, "limits", ()):
            console.print(
                f"      limit {limit.code} (at most {limit.amount.format()}): {limit.message}"
            )
    else:  # pragma: no cover - the policy always refuses this one
        raise AssertionError("the demo's refusal was not refused")

    # 4. Webhook ---------------------------------------------------------------------------
    _step(console, "4. The gateway settles the pending refund and sends a signed webhook")
    webhook: dict[str, Any] = {"refund_id": pending.id, "from": pending.status.value}
    for headers, body in gateway.settle_pending(pending.gateway_refund_id):
        header_names = ", ".join(sorted(headers))
        console.print(
            f"  sandbox → refund.updated for {pending.gateway_refund_id} "
            f"({len(body)} bytes, signed in {header_names})"
        )
        for applied in kit.handle_gateway_webhook("sandbox", headers, body):
            webhook["to"] = applied.status.value
            line = Text(f"  kit.handle_gateway_webhook: {applied.id} {pending.status.value} → ")
            line.append_text(cli.status_text(applied.status))
            console.print(line)
    settled = kit.get_refund(pending.id)
    webhook["to"] = settled.status.value

    # 5. Events ----------------------------------------------------------------------------
    _step(console, "5. Events (the outbox a billing backend consumes)")
    events = kit.events()
    console.print(cli.events_table(events, title=None, compact=True))

    # 6. Journal ---------------------------------------------------------------------------
    _step(console, "6. Journal: one balanced entry per refund")
    lines = kit.journal()
    console.print(cli.journal_table(lines, title=None, compact=True))
    console.print(cli.balance_sentence(lines))

    # 7. Next --------------------------------------------------------------------------------
    commands = next_commands(db_url)
    _step(console, "What to try next")
    for command in commands:
        console.print(f"  {command}", soft_wrap=True)

    refunds = [kit.get_refund(r.id) for r in (full, partial, pending)]
    return {
        "db": db_url,
        "directory": directory,
        "customer_id": CUSTOMER,
        "payments": [kit.payment(p.id).to_dict() for p in payments],
        "balance_redeemed": {"amount": spent.to_dict(), "reference": "inv_1003"},
        "quotes": quotes,
        "refunds": {
            "full": refunds[0].to_dict(),
            "partial": refunds[1].to_dict(),
            "pending_then_webhook": refunds[2].to_dict(),
        },
        "refused": refused,
        "webhook": webhook,
        "events": [e.to_dict() for e in events],
        "journal": {
            "lines": [line.to_dict() for line in lines],
            "balanced": cli.journal_balanced(lines),
        },
        "next": commands,
    }

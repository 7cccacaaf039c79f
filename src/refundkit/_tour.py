"""The demo scenario: a tour of refunds on the offline sandbox gateway, in a fresh store.

One customer, three payments on the sandbox: an invoice payment, a customer-balance top-up (part
of which the customer then spends), and one more. The tour quotes them, refunds the first in
full, part of the top-up, and part of the third (pending); has a refund refused by the limit that
binds; lets a signed sandbox webhook settle the pending refund; and reads back the events and the
balanced journal.

It prints nothing and returns what happened (:class:`Tour`): ``refundkit demo`` tells it, and
``refundkit serve --demo`` only wants the store it leaves behind.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import attrs

from ._errors import ConfigurationError, RefundkitError
from ._model import Card, Destination
from ._money import Money

if TYPE_CHECKING:
    from ._kit import RefundKit
    from ._model import Event, JournalLine, Payment, Quote, Refund
    from .gateways.sandbox import SandboxGateway

CUSTOMER = "cus_ada"
INVOICE_PAYMENT = "pay_1001"
TOPUP_PAYMENT = "pay_1002"
THIRD_PAYMENT = "pay_1003"
#: The invoice the customer spends part of the top-up's balance on.
SPENT_ON = "inv_1003"
_REASON = "requested_by_customer"
_ACTOR = "demo:support"


def _usd(text: str) -> Money:
    return Money.parse(text, "USD")


@attrs.frozen
class Refunds:
    """The tour's three refunds: the full one, the partial one of the top-up, the pending one."""

    full: Refund
    partial: Refund
    pending: Refund


@attrs.frozen
class Refusal:
    """The refund the policy refuses: what was asked of which payment, and the error it raised."""

    payment_id: str
    asked: Money
    error: RefundkitError


@attrs.frozen
class Webhook:
    """One signed webhook the sandbox sent when it settled: its headers' names, its size in
    bytes, and the refunds ``kit.handle_gateway_webhook`` applied it to."""

    header_names: list[str]
    size: int
    applied: list[Refund]


@attrs.frozen
class Tour:
    """What the tour did, step by step."""

    db_url: str
    #: The payments as recorded, before anything was refunded.
    recorded: list[Payment]
    #: What the customer spent of the top-up's balance on ``SPENT_ON``, and what was left.
    spent: Money
    left: Money
    #: Each payment's quote before any refund, by payment id.
    quotes: dict[str, Quote]
    #: The refunds as ``kit.refund`` returned them (the third one still pending).
    made: Refunds
    #: The top-up's quote right after its partial refund.
    topup_quote: Quote
    refusal: Refusal
    webhooks: list[Webhook]
    events: list[Event]
    journal: list[JournalLine]
    #: The payments and refunds as they are at the end.
    payments: list[Payment]
    refunds: Refunds
    #: Real commands to try on the tour's store.
    next_commands: list[str]


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


def run_tour(kit: RefundKit, *, db_url: str) -> Tour:
    """Run the tour on ``kit``, a fresh store at ``db_url`` with the built-in sandbox gateway."""
    from .gateways.sandbox import SandboxGateway  # here: `refundkit demo --help` loads no gateway

    gateway = kit.gateway("sandbox")
    if not isinstance(gateway, SandboxGateway):
        raise ConfigurationError("the demo needs refundkit's built-in sandbox gateway")
    recorded = _record_payments(kit)
    spent = _usd("15.00")
    left = kit.redeem_balance(CUSTOMER, spent, reference=SPENT_ON)
    quotes = {payment.id: kit.quote(payment.id) for payment in recorded}
    made, topup_quote = _refund(kit)
    refusal = _refuse(kit)
    webhooks = _settle(kit, gateway, made.pending)
    events, journal = kit.events(), kit.journal()
    return Tour(
        db_url=db_url,
        recorded=recorded,
        spent=spent,
        left=left,
        quotes=quotes,
        made=made,
        topup_quote=topup_quote,
        refusal=refusal,
        webhooks=webhooks,
        events=events,
        journal=journal,
        payments=[kit.payment(payment.id) for payment in recorded],
        refunds=Refunds(*(kit.get_refund(r.id) for r in (made.full, made.partial, made.pending))),
        next_commands=next_commands(db_url),
    )


def _record_payments(kit: RefundKit) -> list[Payment]:
    """An invoice payment, a top-up of the customer's balance, and a payment by another card."""
    return [
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


def _refund(kit: RefundKit) -> tuple[Refunds, Quote]:
    """The three refunds, and the top-up's quote between the partial and the pending one."""
    full = kit.refund(
        INVOICE_PAYMENT, reason=_REASON, actor=_ACTOR, idempotency_key="demo-1001-full"
    )
    partial = kit.refund(TOPUP_PAYMENT, _usd("20.00"), reason=_REASON, actor=_ACTOR)
    topup_quote = kit.quote(TOPUP_PAYMENT)
    # The sandbox holds a refund whose cents are .92 as pending until it settles.
    pending = kit.refund(THIRD_PAYMENT, _usd("25.92"), reason=_REASON, actor=_ACTOR)
    return Refunds(full, partial, pending), topup_quote


def _refuse(kit: RefundKit) -> Refusal:
    """More than the third payment may still give back: the policy refuses it."""
    asked = _usd("60.00")
    try:
        kit.refund(THIRD_PAYMENT, asked, reason=_REASON, actor=_ACTOR)
    except RefundkitError as exc:
        return Refusal(THIRD_PAYMENT, asked, exc)
    raise AssertionError("the demo's refusal was not refused")  # pragma: no cover


def _settle(kit: RefundKit, gateway: SandboxGateway, pending: Refund) -> list[Webhook]:
    """The sandbox settles the pending refund; the kit applies each signed webhook it sends."""
    return [
        Webhook(sorted(headers), len(body), kit.handle_gateway_webhook("sandbox", headers, body))
        for headers, body in gateway.settle_pending(pending.gateway_refund_id)
    ]

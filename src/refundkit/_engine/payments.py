"""Payments: recording them, reading them, their quotes, and what their gateway says of
settlement and disputes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .. import _store as st
from .._balances import InvoiceBalance
from .._errors import InvalidMoney, NotFound, PaymentExists, PaymentNotFound, RefundkitError
from .._model import Card, Destination, Payment, Quote, check_id, new_id
from .._money import Money
from .._validate import check_card, check_destination, check_flag, check_money, check_time
from . import balances, facts
from ._runtime import Runtime

log = logging.getLogger("refundkit")

#: What must match for a payment recorded again to be the same payment.
_IDENTITY = ("customer_id", "amount", "gateway", "gateway_payment_id", "destination")


def new_payment(
    rt: Runtime,
    *,
    id: str,
    customer_id: str,
    amount: Money,
    gateway: str,
    gateway_payment_id: str,
    destination: Destination | str,
    card: Card | Mapping[str, Any] | None,
    captured_at: datetime | None,
    invoice_id: str | None,
    disputed: bool,
    settled: bool,
) -> Payment:
    """The payment as asked, every field checked."""
    payment = Payment(
        id=check_id(id, "payment id"),
        customer_id=check_id(customer_id, "customer id"),
        amount=check_money(amount, "amount"),
        gateway=check_id(gateway, "gateway"),
        gateway_payment_id=check_id(gateway_payment_id, "gateway payment id"),
        destination=check_destination(destination),
        captured_at=check_time(captured_at) if captured_at else rt.clock(),
        card=check_card(card),
        invoice_id=check_id(invoice_id, "invoice id") if invoice_id is not None else None,
        disputed=check_flag(disputed, "disputed"),
        settled=check_flag(settled, "settled"),
    )
    if payment.amount.amount <= 0:
        raise InvalidMoney("a payment amount must be greater than zero")
    return payment


def record(rt: Runtime, payment: Payment) -> Payment:
    """Record a captured payment. Recording the same payment again returns it.

    Every check that can refuse it runs before its gateway is told anything: a refused
    payment registers no charge (the sandbox's) and writes nothing."""
    gw = rt.gateway(payment.gateway)
    existing = _check_new(rt, payment)
    if existing is not None:
        return existing
    known = gw.register_payment(payment)
    if known is not None and payment.card is None and known.card is not None:
        payment = attrs.evolve(payment, card=known.card)
    if known is not None and not known.settled:
        # The gateway says it has not settled: the quote then offers only the full void.
        payment = attrs.evolve(payment, settled=False)
    try:
        _insert(rt, payment)
    except rt.store.integrity_errors:
        with rt.store.read() as tx:
            existing = st.get_payment(tx, payment.id)
        if existing is None:
            raise _gateway_payment_taken(payment) from None
        return _same_payment(existing, payment)
    return get(rt, payment.id)


def _check_new(rt: Runtime, payment: Payment) -> Payment | None:
    """The payment as recorded if it already is (the same), else None; or the refusal that
    ``_insert`` would meet: another payment with its gateway payment id, or a top-up the
    customer's balance has no room for. ``_insert`` checks again, in its transaction."""
    with rt.store.read() as tx:
        existing = st.get_payment(tx, payment.id)
        if existing is not None:
            return _same_payment(existing, payment)
        other = st.payment_id_of_gateway_payment(tx, payment.gateway, payment.gateway_payment_id)
        if other is not None:
            raise _gateway_payment_taken(payment)
        if payment.destination is Destination.CUSTOMER_BALANCE:
            balances.check_room(tx, payment)
    return None


def _gateway_payment_taken(payment: Payment) -> PaymentExists:
    return PaymentExists(
        f"{payment.gateway} payment {payment.gateway_payment_id} is already "
        "recorded under another payment id"
    )


def _insert(rt: Runtime, payment: Payment) -> None:
    now = rt.clock()
    top_up = payment.destination is Destination.CUSTOMER_BALANCE
    with rt.store.write() as tx:
        if top_up:
            balances.check_room(tx, payment)
        st.insert_payment(tx, payment, now)
        if top_up:
            whole = payment.amount.amount
            st.insert_lot(tx, payment, new_id("lot_"), now, kind="top_up", amount=whole)


def _same_payment(existing: Payment, new: Payment) -> Payment:
    if any(getattr(existing, f) != getattr(new, f) for f in _IDENTITY):
        raise PaymentExists(f"payment {new.id} is already recorded with other details")
    return existing


def get(rt: Runtime, payment_id: str) -> Payment:
    with rt.store.read() as tx:
        p = st.get_payment(tx, check_id(payment_id, "payment id"))
    if p is None:
        raise PaymentNotFound(f"no payment {payment_id!r}")
    return p


def listing(rt: Runtime, customer_id: str | None) -> list[Payment]:
    with rt.store.connect() as conn:
        return st.list_payments(conn, customer_id)


def quote(rt: Runtime, payment_id: str) -> Quote:
    """The quote now. A payment recorded unsettled is first checked at its gateway (one
    call), so "it has not settled yet" is never a stale answer."""
    check_id(payment_id, "payment id")
    q, settled = _stored_quote(rt, payment_id)
    if settled:
        return q
    refresh_unsettled(rt, payment_id)
    return _stored_quote(rt, payment_id)[0]


def _stored_quote(rt: Runtime, payment_id: str) -> tuple[Quote, bool]:
    """The quote from the stored record, and whether the payment is stored as settled."""
    with rt.store.read() as tx:
        payment = st.get_payment(tx, payment_id)
        if payment is None:
            raise PaymentNotFound(f"no payment {payment_id!r}")
        return facts.quote(rt, tx, payment), payment.settled


def refresh(rt: Runtime, payment_id: str) -> Payment:
    """Ask the payment's gateway whether it has settled and is disputed; store what it says."""
    payment = get(rt, payment_id)
    remote = rt.gateway(payment.gateway).fetch_payment(payment.gateway_payment_id)
    return store_flags(rt, payment, remote.settled, remote.disputed)


def store_flags(rt: Runtime, payment: Payment, settled: bool, disputed: bool) -> Payment:
    if (payment.settled, payment.disputed) == (settled, disputed):
        return payment
    with rt.store.write() as tx:
        st.set_payment_flags(tx, payment.id, settled=settled, disputed=disputed)
    log.info("payment %s: settled=%s disputed=%s (gateway)", payment.id, settled, disputed)
    return attrs.evolve(payment, settled=settled, disputed=disputed)


def refresh_unsettled(rt: Runtime, payment_id: str) -> None:
    """An unsettled payment may have settled since it was recorded (Braintree settles within
    a day): without asking, its partial refunds would be refused for ever."""
    try:
        refresh(rt, payment_id)
    except RefundkitError as exc:
        # The stored answer stands: "not settled yet" is the safe one.
        log.warning("payment %s: could not ask its gateway about settlement: %s",
                    payment_id, exc)  # fmt: skip


def invoice(rt: Runtime, invoice_id: str) -> InvoiceBalance:
    """An invoice's payments and its refundable balance (their sum)."""
    check_id(invoice_id, "invoice id")
    with rt.store.read() as tx:
        payments = st.invoice_payments(tx, invoice_id)
    if not payments:
        raise NotFound(f"no payments on invoice {invoice_id!r}")
    return InvoiceBalance.of(invoice_id, tuple(payments))

"""The customer balance: its lots, spending it, and credit issued from a payment or invoice."""

from __future__ import annotations

from .. import _store as st
from .._balances import BalanceLot, CustomerBalance
from .._errors import (
    InsufficientBalance,
    InsufficientRefundableBalance,
    InvalidInput,
    InvalidMoney,
    PaymentNotFound,
    RefundNotAllowed,
)
from .._model import Destination, Payment, check_id, new_id
from .._money import MAX_AMOUNT, Money
from .._policy import check_request
from .._validate import check_money
from ._runtime import Runtime

REDEEM_ORDERS = ("oldest_first", "newest_first")


def balance(rt: Runtime, customer_id: str) -> CustomerBalance:
    """The customer's balance per currency, lot by lot with the payment that funded it."""
    with rt.store.read() as tx:
        rows = st.customer_lots(tx, check_id(customer_id, "customer id"))
    lots = tuple(rows)
    totals: dict[str, Money] = {}
    for lot in lots:
        cur = lot.remaining.currency
        totals[cur] = totals.get(cur, Money.zero(cur)) + lot.remaining
    return CustomerBalance(customer_id, totals, lots)


def redeem(rt: Runtime, customer_id: str, amount: Money, reference: str, order: str) -> Money:
    """Spend ``amount`` of the balance on ``reference`` lot by lot; returns what is left."""
    check_id(customer_id, "customer id")
    check_money(amount, "amount")
    check_id(reference, "reference")
    if order not in REDEEM_ORDERS:
        raise InvalidInput("order must be 'oldest_first' or 'newest_first'")
    if amount.amount <= 0:
        raise InvalidMoney("a redemption must be greater than zero")
    now = rt.clock()
    with rt.store.write() as tx:
        # Locked before they are read: two redemptions (or a redemption and a balance refund)
        # of one lot take turns, and the second sees what the first left.
        lots = [
            r
            for r in st.customer_lots(tx, customer_id, lock=True)
            if r.remaining.currency == amount.currency and r.remaining.amount > 0
        ]
        if order == "newest_first":
            lots.reverse()
        available = sum(r.remaining.amount for r in lots)
        if available < amount.amount:
            raise InsufficientBalance(
                f"the customer's balance holds {Money(available, amount.currency)}, "
                f"less than {amount}"
            )
        left = amount.amount
        for lot in lots:
            take = min(left, lot.remaining.amount)
            st.move_lot(tx, lot.id, -take, kind="redemption", now=now, reference=reference)
            left -= take
            if not left:
                break
    return Money(available - amount.amount, amount.currency)


def issue_credit(
    rt: Runtime, source_id: str, amount: Money, reference: str | None
) -> tuple[BalanceLot, ...]:
    """Move ``amount`` of a payment's (or an invoice's, newest first) refundable balance into
    the customer balance, as lots that remember the payment that funded them."""
    check_id(source_id, "payment or invoice id")
    check_money(amount, "amount")
    if reference is not None:
        check_id(reference, "reference")
    if amount.amount <= 0:
        raise InvalidMoney("a credit must be greater than zero")
    now = rt.clock()
    lots: list[BalanceLot] = []
    with rt.store.write() as tx:
        sources = _credit_sources(tx, source_id)
        for payment in sources:
            check_request(payment.amount.currency, amount)
        available = sum(p.refundable.amount for p in sources)
        if available < amount.amount:
            where = ", ".join(f"{p.id} has {p.refundable}" for p in sources)
            raise InsufficientRefundableBalance(
                f"only {Money(available, amount.currency)} of {source_id} can become "
                f"credit ({where})"
            )
        left = amount.amount
        for payment in sources:
            take = min(left, payment.refundable.amount)
            if take <= 0:
                continue
            lot_id = new_id("lot_")
            st.add_credited(tx, payment.id, take)
            st.insert_lot(tx, payment, lot_id, now, kind="credit", amount=take)
            st.record_movement(tx, lot_id, take, kind="credit_issued", now=now,
                               reference=reference)  # fmt: skip
            lot = st.get_lot(tx, lot_id)
            assert lot is not None
            lots.append(lot)
            left -= take
            if not left:
                break
    return tuple(lots)


def _credit_sources(tx: st.Tx, source_id: str) -> list[Payment]:
    """The payments a credit is drawn from: one payment, or an invoice's (newest first)."""
    payment = st.get_payment(tx, source_id, lock=True)
    payments = [payment] if payment is not None else st.invoice_payments(tx, source_id, lock=True)
    if not payments:
        raise PaymentNotFound(f"no payment or invoice {source_id!r}")
    for p in payments:
        if p.destination is Destination.CUSTOMER_BALANCE:
            raise InvalidInput(f"{p.id} already paid into the customer balance; it gives no credit")
        if p.disputed:
            raise RefundNotAllowed(f"{p.id} is disputed; no credit can be issued from it")
    return payments


def check_room(tx: st.Tx, payment: Payment) -> None:
    """A customer's balance in one currency must stay a storable amount (R-6.8)."""
    cur = payment.amount.currency
    held = sum(
        r.remaining.amount
        for r in st.customer_lots(tx, payment.customer_id)
        if r.remaining.currency == cur
    )
    if held + payment.amount.amount > MAX_AMOUNT:
        raise InvalidMoney(
            f"this top-up would take the customer's {cur} balance past the largest storable amount"
        )

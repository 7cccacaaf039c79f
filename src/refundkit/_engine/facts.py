"""What the policy needs to quote a payment, read in the caller's transaction."""

from __future__ import annotations

from typing import Any

from .. import _store as st
from .._balances import BalanceLot
from .._errors import InvalidInput
from .._model import Destination, Payment, Quote
from .._money import Money
from .._policy import PolicyContext
from .._policy import quote as make_quote
from ._runtime import Runtime


def context(
    rt: Runtime, tx: st.Tx, payment: Payment, lot: BalanceLot | None = None
) -> tuple[PolicyContext, int]:
    """The facts the policy reads, and how many of the payment's refunds are unknown.

    ``lot``: the balance lot the refund draws on; a credit lot bounds it (a top-up's own lot is
    read here anyway)."""
    count, unknown = st.refund_stats(tx, payment.id)
    cur = payment.amount.currency
    ctx = PolicyContext(
        payment=payment,
        held=payment.held or Money.zero(cur),
        refund_count=count,
        capabilities=rt.gateway(payment.gateway).capabilities,
        config=rt.policy,
        now=rt.clock(),
        lot_remaining=lot.remaining if lot is not None and lot.kind == "credit" else None,
        **_balance_facts(tx, payment),
    )
    return ctx, unknown


def _balance_facts(tx: st.Tx, payment: Payment) -> dict[str, Any]:
    """What of the payment's money was spent from the customer balance, and on what."""
    cur = payment.amount.currency
    facts: dict[str, Any] = {}
    if payment.destination is Destination.CUSTOMER_BALANCE:
        top_up = st.lot_for_payment(tx, payment.id)
        if top_up is None:
            return facts
        facts["balance_remaining"] = top_up.remaining
        # What left the lot other than through this payment's own refunds.
        held = payment.held.amount if payment.held else 0
        spent = top_up.amount.amount - top_up.remaining.amount - held
        if spent > 0:
            facts["balance_spent"] = Money(spent, cur)
            facts["balance_spent_on"] = tuple(st.lot_spent_on(tx, top_up.id))
    elif payment.credited:
        credit_lots = st.credit_lots_of_payment(tx, payment.id)
        used = sum(x.amount.amount - x.remaining.amount for x in credit_lots)
        if used > 0:
            facts["credit_spent"] = Money(used, cur)
            facts["credit_spent_on"] = tuple(
                ref for x in credit_lots for ref in st.lot_spent_on(tx, x.id)
            )
    return facts


def quote(rt: Runtime, tx: st.Tx, payment: Payment, lot: BalanceLot | None = None) -> Quote:
    """The payment's quote now, in the caller's transaction."""
    return make_quote(context(rt, tx, payment, lot)[0], rt.rules)


def source_lot(
    tx: st.Tx, payment: Payment, lot_id: str | None, *, lock: bool = True
) -> BalanceLot | None:
    """The balance lot a refund of ``payment`` draws on: the one asked for, or a top-up's own.

    Locked by default, for the refund about to spend it (after the payment's lock: the lock
    order); a preview that only reads passes ``lock=False``."""
    if lot_id is None:
        if payment.destination is Destination.CUSTOMER_BALANCE:
            return st.lot_for_payment(tx, payment.id, lock=lock)
        return None
    lot = st.get_lot(tx, lot_id, lock=lock)
    if lot is None or lot.funding_payment_id != payment.id:
        raise InvalidInput(f"balance lot {lot_id} was not funded by payment {payment.id}")
    return lot

"""Refund policy: pure rules that turn the facts about one payment into a quote.

No I/O and no clock of its own: the kit gathers a ``PolicyContext`` inside its transaction and
asks for a ``Quote``. Each rule returns the limits it imposes; a limit's ``amount`` is the most
that rule allows, so ``max_amount`` is simply the tightest one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

import attrs

from ._errors import CurrencyMismatch, InsufficientRefundableBalance, RefundNotAllowed
from ._gateway import Capabilities
from ._model import Destination, Limit, Payment, Quote
from ._money import Money


@attrs.frozen
class PolicyConfig:
    """Host-level policy settings; the gateway's capabilities may be stricter."""

    #: Days after capture during which refunds are allowed (None: no limit of our own).
    refund_window_days: int | None = None
    #: Most refunds per payment (None: no limit of our own).
    max_refunds_per_payment: int | None = None


@attrs.frozen
class PolicyContext:
    """Everything a rule may look at, read in the same transaction that reserves the refund."""

    payment: Payment
    held: Money  # refunds that hold balance: reserved, in flight, succeeded, manual review
    refund_count: int  # refunds that hold balance
    capabilities: Capabilities
    config: PolicyConfig
    now: datetime
    #: For a customer-balance payment: what is left of its money in the balance.
    balance_remaining: Money | None = None
    #: ... and what of it was spent, with the references it was spent on.
    balance_spent: Money | None = None
    balance_spent_on: tuple[str, ...] = ()
    #: Credit issued from this payment that was spent, and where (for the explanation).
    credit_spent: Money | None = None
    credit_spent_on: tuple[str, ...] = ()
    #: When the refund draws on a credit lot funded by this payment: what is left in that lot.
    lot_remaining: Money | None = None

    @property
    def credited(self) -> Money:
        return self.payment.credited or Money.zero(self.payment.amount.currency)

    @property
    def remaining(self) -> Money:
        """What may still go back: the credit lot's remainder, or the refundable balance."""
        if self.lot_remaining is not None:
            return self.lot_remaining
        return self.payment.amount - self.held - self.credited


Rule = Callable[[PolicyContext], Sequence[Limit]]


def payment_cap(ctx: PolicyContext) -> list[Limit]:
    if not ctx.held or ctx.lot_remaining is not None:
        return []  # a credit lot bounds a refund drawn from it (credit_balance)
    p = ctx.payment
    return [
        Limit(
            "payment_cap",
            ctx.remaining,
            f"{ctx.held} of this {p.amount} payment is already refunded or in flight; "
            f"at most {ctx.remaining} remains.",
        )
    ]


def _spent(clause: str, amount: Money | None, references: tuple[str, ...]) -> str:
    """``clause`` with the amount, and where it went: "; 20.00 USD was spent on inv_7"."""
    if not amount:
        return ""
    where = f" on {', '.join(references)}" if references else ""
    return clause.format(amount) + where


def customer_balance(ctx: PolicyContext) -> list[Limit]:
    if ctx.payment.destination is not Destination.CUSTOMER_BALANCE:
        return []
    left = ctx.balance_remaining
    if left is None or left >= ctx.remaining:
        return []
    spent = _spent("; {} was spent", ctx.balance_spent, ctx.balance_spent_on)
    return [
        Limit(
            "customer_balance",
            left,
            f"Only {left} of this top-up is still in the customer's balance{spent}.",
        )
    ]


def credit_issued(ctx: PolicyContext) -> list[Limit]:
    if not ctx.credited or ctx.lot_remaining is not None:
        return []
    spent = _spent(" and {} of it was spent", ctx.credit_spent, ctx.credit_spent_on)
    return [
        Limit(
            "credit_issued",
            ctx.remaining,
            f"{ctx.credited} of this payment was issued as customer credit{spent}, "
            f"so at most {ctx.remaining} can go back to the card.",
        )
    ]


def credit_balance(ctx: PolicyContext) -> list[Limit]:
    left = ctx.lot_remaining
    if left is None or left >= ctx.payment.amount:
        return []
    return [
        Limit(
            "credit_balance",
            left,
            f"Only {left} of the credit issued from this payment is still in the "
            "customer's balance.",
        )
    ]


def _tightest(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def refund_window(ctx: PolicyContext) -> list[Limit]:
    days = _tightest(ctx.config.refund_window_days, ctx.capabilities.refund_window_days)
    if days is None:
        return []
    ends = ctx.payment.captured_at + timedelta(days=days)
    if ctx.now <= ends:
        return []
    return [
        Limit(
            "refund_window",
            Money.zero(ctx.payment.amount.currency),
            f"The refund window of {days} days ended on {ends:%Y-%m-%d}.",
        )
    ]


def max_refunds(ctx: PolicyContext) -> list[Limit]:
    most = _tightest(ctx.config.max_refunds_per_payment, ctx.capabilities.max_refunds_per_payment)
    if most is None or ctx.refund_count < most:
        return []
    return [
        Limit(
            "max_refunds",
            Money.zero(ctx.payment.amount.currency),
            f"This payment already has {ctx.refund_count} refunds, the most allowed ({most}).",
        )
    ]


def disputed(ctx: PolicyContext) -> list[Limit]:
    if not ctx.payment.disputed:
        return []
    return [
        Limit(
            "disputed",
            Money.zero(ctx.payment.amount.currency),
            "This payment is disputed; money goes back through the dispute, not a refund.",
        )
    ]


def unsettled(ctx: PolicyContext) -> list[Limit]:
    p = ctx.payment
    if p.settled:
        return []
    if ctx.capabilities.void_if_unsettled and not ctx.held:
        return [
            Limit(
                "unsettled",
                p.amount,
                f"The payment has not settled yet: only a void of the whole {p.amount} is "
                "possible, not a partial refund.",
                full_only=True,
            )
        ]
    return [
        Limit(
            "unsettled",
            Money.zero(p.amount.currency),
            f"The payment has not settled yet and {p.gateway} cannot void it; "
            "refund it once it settles.",
        )
    ]


def partial_refunds(ctx: PolicyContext) -> list[Limit]:
    if ctx.capabilities.partial_refunds:
        return []
    p = ctx.payment
    if ctx.held:
        return [
            Limit(
                "partial_refunds",
                Money.zero(p.amount.currency),
                f"{p.gateway} refunds only whole payments, and this one is already refunded.",
            )
        ]
    return [
        Limit(
            "partial_refunds",
            p.amount,
            f"{p.gateway} refunds only whole payments: the refund must be {p.amount}.",
            full_only=True,
        )
    ]


BUILTIN_RULES: tuple[Rule, ...] = (
    payment_cap,
    credit_issued,
    credit_balance,
    customer_balance,
    refund_window,
    max_refunds,
    disputed,
    unsettled,
    partial_refunds,
)


def quote(ctx: PolicyContext, extra_rules: Iterable[Rule] = ()) -> Quote:
    """The quote for ``ctx.payment`` now: max is the tightest limit, default the max."""
    currency = ctx.payment.amount.currency
    limits: list[Limit] = []
    for rule in (*BUILTIN_RULES, *extra_rules):
        for limit in rule(ctx):
            if limit.amount.currency != currency:
                raise CurrencyMismatch(f"policy rule {limit.code!r} returned another currency")
            limits.append(limit)
    max_amount = ctx.remaining
    for limit in limits:
        max_amount = max_amount.min(limit.amount)
    if max_amount.amount < 0:
        max_amount = Money.zero(currency)
    binding = sorted(
        (lim for lim in limits if lim.amount < ctx.payment.amount or lim.full_only),
        key=lambda lim: lim.amount.amount,
    )
    return Quote(
        payment_id=ctx.payment.id,
        refundable=max_amount.amount > 0,
        default_amount=max_amount,
        max_amount=max_amount,
        limits=tuple(binding),
        full_only=any(lim.full_only for lim in limits) and max_amount.amount > 0,
    )


def check_request(currency: str, amount: Money) -> None:
    """Checks of the request itself, which no state can change: currency and sign."""
    if amount.currency != currency:
        raise CurrencyMismatch(
            f"the refund is in {amount.currency} but the payment was in {currency}"
        )
    if amount.amount <= 0:
        zero = Money.zero(currency)
        raise RefundNotAllowed(
            f"a refund must be more than {zero}",
            [Limit("amount_positive", zero, f"A refund must be more than {zero}.")],
        )


def check_amount(q: Quote, amount: Money) -> None:
    """Raise the refusal a person can act on, or return when ``amount`` may be refunded now."""
    if not q.refundable:
        blocking = [lim for lim in q.limits if lim.amount <= q.max_amount]
        raise RefundNotAllowed(
            " ".join(lim.message for lim in blocking) or "This payment cannot be refunded now.",
            blocking,
        )
    check_request(q.max_amount.currency, amount)
    if amount > q.max_amount:
        # With nothing tighter in the quote, the payment itself is the cap.
        binding = [lim for lim in q.limits if lim.amount < amount] or [
            Limit(
                "payment_cap",
                q.max_amount,
                f"A refund can never be more than the payment: {q.max_amount} here.",
            )
        ]
        reasons = " ".join(lim.message for lim in binding)
        raise InsufficientRefundableBalance(
            f"{amount} is more than the {q.max_amount} that may be refunded. {reasons}".strip(),
            binding,
        )
    if q.full_only and amount != q.max_amount:
        binding = [lim for lim in q.limits if lim.full_only]
        raise RefundNotAllowed(" ".join(lim.message for lim in binding), binding)

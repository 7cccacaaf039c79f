"""The policy's rules as pure functions (no kit, no store): each limit at its boundary, the
request checks, and the amount check the approvals path relies on.

Issue 24 found these could be broken without a test noticing; each test names the mutant of
``src/refundkit/_policy.py`` (``tools/mutate.py``) it kills."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from refundkit import (
    Capabilities,
    CurrencyMismatch,
    Destination,
    InsufficientRefundableBalance,
    Limit,
    Money,
    Payment,
    PolicyConfig,
    PolicyContext,
    Quote,
    RefundNotAllowed,
)
from refundkit._policy import check_amount, check_request, credit_balance, quote

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def payment(amount: int = 5000, **kw: object) -> Payment:
    fields: dict[str, object] = {
        "id": "pay_1", "customer_id": "cus_1", "amount": usd(amount), "gateway": "gw",
        "gateway_payment_id": "gw_1", "destination": Destination.INVOICE, "captured_at": T0,
    }  # fmt: skip
    return Payment(**(fields | kw))  # type: ignore[arg-type]


def context(
    held: int = 0, *, pay: Payment | None = None, caps: Capabilities | None = None, **kw: object
) -> PolicyContext:
    fields: dict[str, object] = {
        "payment": pay or payment(), "held": usd(held), "refund_count": 1 if held else 0,
        "capabilities": caps or Capabilities(), "config": PolicyConfig(), "now": T0,
    }  # fmt: skip
    return PolicyContext(**(fields | kw))  # type: ignore[arg-type]


def codes(q: Quote) -> list[str]:
    return [lim.code for lim in q.limits]


# --- the request itself: currency and sign (R-6.7) ------------------------------------------


@pytest.mark.parametrize("minor", [0, -1, -5000])
def test_a_refund_of_zero_or_less_is_refused(minor: int) -> None:
    """R-6.7: the amount is > 0. Kills ``amount.amount <= 0`` → ``< 0`` in ``check_request``
    (a zero refund passed every other test) and its statement removals."""
    with pytest.raises(RefundNotAllowed) as info:
        check_request("USD", usd(minor))
    assert [lim.code for lim in info.value.limits] == ["amount_positive"]
    assert str(info.value) == "a refund must be more than 0.00 USD"


def test_one_minor_unit_is_a_valid_request() -> None:
    check_request("USD", usd(1))  # the boundary on the other side: nothing raised


def test_a_refund_in_another_currency_is_refused_before_its_sign() -> None:
    """R-6.7: the refund currency must equal the payment's."""
    with pytest.raises(CurrencyMismatch, match="the refund is in EUR but the payment was in USD"):
        check_request("USD", Money(0, "EUR"))


# --- the amount check: what approvals call alone --------------------------------------------


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (usd(0), RefundNotAllowed),
        (usd(-100), RefundNotAllowed),
        (Money(100, "EUR"), CurrencyMismatch),
    ],
    ids=["zero", "negative", "another currency"],
)
def test_the_amount_check_makes_the_request_checks_itself(
    amount: Money, error: type[Exception]
) -> None:
    """The approvals path (``_approvals.py``) calls only ``check_amount``: it must refuse a
    zero, negative or wrong-currency amount on its own. Kills the removal of
    ``check_request(q.max_amount.currency, amount)`` inside ``check_amount``."""
    q = quote(context())
    with pytest.raises(error):
        check_amount(q, amount)


def test_the_amount_check_allows_exactly_the_maximum() -> None:
    """The over-cap check's boundary: the maximum passes, one unit more is refused. Kills
    ``amount > q.max_amount`` → ``>=`` (with ``Money.__gt__`` → ``>=`` in _money)."""
    q = quote(context(held=2000))
    check_amount(q, usd(3000))
    with pytest.raises(InsufficientRefundableBalance) as info:
        check_amount(q, usd(3001))
    assert [lim.code for lim in info.value.limits] == ["payment_cap"]
    assert str(info.value).startswith("30.01 USD is more than the 30.00 USD that may be refunded.")


def test_over_the_payment_itself_the_payment_is_named_as_the_cap() -> None:
    """With no limit tighter than the payment, the refusal still names a cap."""
    with pytest.raises(InsufficientRefundableBalance) as info:
        check_amount(quote(context()), usd(5001))
    assert [(lim.code, lim.amount) for lim in info.value.limits] == [("payment_cap", usd(5000))]
    assert "A refund can never be more than the payment: 50.00 USD here." in str(info.value)


def test_a_quote_that_is_not_refundable_refuses_with_its_blocking_limits() -> None:
    q = quote(context(pay=payment(disputed=True)))
    with pytest.raises(RefundNotAllowed) as info:
        check_amount(q, usd(1))
    assert not isinstance(info.value, InsufficientRefundableBalance)
    assert [lim.code for lim in info.value.limits] == ["disputed"]


# --- whole-payment-only gateways --------------------------------------------------------------


def test_a_gateway_without_partial_refunds_refunds_only_the_whole_payment() -> None:
    """Kills the removal of the ``partial_refunds`` limit (the rule's return, its entry in
    ``BUILTIN_RULES``, ``full_only=True``)."""
    q = quote(context(caps=Capabilities(partial_refunds=False)))
    assert (q.refundable, q.full_only, q.max_amount) == (True, True, usd(5000))
    assert codes(q) == ["partial_refunds"]
    assert q.limits[0].message == "gw refunds only whole payments: the refund must be 50.00 USD."
    check_amount(q, usd(5000))
    with pytest.raises(RefundNotAllowed, match="refunds only whole payments"):
        check_amount(q, usd(4999))


def test_a_whole_payment_only_gateway_refuses_a_second_refund() -> None:
    """Once something is held, "the rest of it" is not a whole payment: nothing more. Kills the
    removal of the ``held`` check in ``partial_refunds`` (which quoted the rest, full_only)."""
    q = quote(context(held=1000, caps=Capabilities(partial_refunds=False)))
    assert (q.refundable, q.full_only, q.max_amount) == (False, False, usd(0))
    assert "partial_refunds" in codes(q)
    with pytest.raises(RefundNotAllowed, match="refunds only whole payments, and this one is alre"):
        check_amount(q, usd(4000))


# --- unsettled payments -----------------------------------------------------------------------


def test_an_unsettled_payment_on_a_gateway_that_voids_can_go_back_whole() -> None:
    q = quote(context(pay=payment(settled=False), caps=Capabilities(void_if_unsettled=True)))
    assert (q.refundable, q.full_only, q.max_amount, codes(q)) == (True, True, usd(5000),
                                                                  ["unsettled"])  # fmt: skip
    with pytest.raises(RefundNotAllowed, match=r"only a void of the whole 50\.00 USD"):
        check_amount(q, usd(100))


def test_an_unsettled_payment_on_a_gateway_that_cannot_void_is_not_refundable() -> None:
    """Kills the removal of the rule for gateways that cannot void (its return, or the
    ``void_if_unsettled`` condition forced true)."""
    q = quote(context(pay=payment(settled=False)))
    assert (q.refundable, q.max_amount, codes(q)) == (False, usd(0), ["unsettled"])
    assert q.limits[0].message == (
        "The payment has not settled yet and gw cannot void it; refund it once it settles."
    )


def test_an_unsettled_payment_already_voided_in_flight_is_not_voided_twice() -> None:
    caps = Capabilities(void_if_unsettled=True)
    q = quote(context(held=5000, pay=payment(settled=False), caps=caps))
    assert (q.refundable, q.max_amount) == (False, usd(0))
    assert "unsettled" in codes(q)


# --- credit lots ------------------------------------------------------------------------------


def test_a_refund_from_a_credit_lot_is_capped_by_what_is_left_of_the_lot() -> None:
    """A refund drawn from a credit lot may take what is left of that lot, not the payment's
    refundable balance. Kills the removal of ``credit_balance`` (its return, its entry in
    ``BUILTIN_RULES``) and of ``remaining``'s lot branch."""
    pay = payment(credited=usd(4000))
    ctx = context(pay=pay, lot_remaining=usd(1500))
    assert ctx.remaining == usd(1500)
    q = quote(ctx)
    assert (q.max_amount, codes(q)) == (usd(1500), ["credit_balance"])
    assert q.limits[0].message == (
        "Only 15.00 USD of the credit issued from this payment is still in the customer's balance."
    )
    with pytest.raises(InsufficientRefundableBalance):
        check_amount(q, usd(1501))


def test_a_credit_lot_as_large_as_the_payment_adds_no_limit() -> None:
    """The lot binds only when it holds less than the payment: ``left >= amount`` returns no
    limit, so an untouched lot of the whole payment quotes the payment without limits."""
    q = quote(context(pay=payment(credited=usd(5000)), lot_remaining=usd(5000)))
    assert (q.max_amount, q.limits) == (usd(5000), ())


def test_a_lot_refund_ignores_the_payment_cap_and_the_credit_issued_limit() -> None:
    """Drawing on a lot, the payment's own cap and credited amount do not bind: the lot does.
    Kills ``ctx.lot_remaining is not None`` → ``is None`` in ``payment_cap`` and
    ``credit_issued``."""
    pay = payment(credited=usd(3000))
    q = quote(context(held=1000, pay=pay, lot_remaining=usd(2500)))
    assert (q.max_amount, codes(q)) == (usd(2500), ["credit_balance"])


def test_credit_issued_from_a_card_payment_binds_a_card_refund() -> None:
    q = quote(context(pay=payment(credited=usd(3000)), credit_spent=usd(1000),
                      credit_spent_on=("inv_9",)))  # fmt: skip
    assert (q.max_amount, codes(q)) == (usd(2000), ["credit_issued"])
    assert q.limits[0].message == (
        "30.00 USD of this payment was issued as customer credit and 10.00 USD of it was spent "
        "on inv_9, so at most 20.00 USD can go back to the card."
    )


# --- the maximum never goes below zero ---------------------------------------------------------


def test_the_maximum_is_never_negative() -> None:
    """More held and credited than the payment (a rule of a plugin may also return less than
    nothing): the maximum is clamped to zero, not negative. Kills the clamp's removal."""
    q = quote(context(held=4000, pay=payment(credited=usd(2000))))
    assert (q.refundable, q.max_amount, q.default_amount) == (False, usd(0), usd(0))


def test_a_rule_below_zero_is_clamped_too() -> None:
    def below(ctx: PolicyContext) -> Sequence[Limit]:
        return [Limit("below", usd(-1), "Less than nothing.")]

    q = quote(context(), [below])
    assert (q.refundable, q.max_amount, codes(q)) == (False, usd(0), ["below"])


def test_a_rule_in_another_currency_is_refused() -> None:
    def euros(ctx: PolicyContext) -> Sequence[Limit]:
        return [Limit("euros", Money(100, "EUR"), "In euros.")]

    with pytest.raises(CurrencyMismatch, match="policy rule 'euros' returned another currency"):
        quote(context(), [euros])


# --- windows, counts, disputes ----------------------------------------------------------------


@pytest.mark.parametrize(("host", "gateway"), [(30, None), (None, 30), (30, 60), (60, 30)])
def test_the_tighter_refund_window_binds_to_the_second(
    host: int | None, gateway: int | None
) -> None:
    caps = Capabilities(refund_window_days=gateway)
    config = PolicyConfig(refund_window_days=host)
    last = context(caps=caps, config=config, now=T0 + timedelta(days=30))
    assert quote(last).refundable
    late = attrs.evolve(last, now=T0 + timedelta(days=30, seconds=1))
    q = quote(late)
    assert (q.refundable, codes(q)) == (False, ["refund_window"])
    assert q.limits[0].message == "The refund window of 30 days ended on 2026-12-22."


@pytest.mark.parametrize("counted", [1, 2])
def test_max_refunds_binds_at_the_limit(counted: int) -> None:
    config = PolicyConfig(max_refunds_per_payment=2)
    q = quote(context(held=100, config=config, refund_count=counted))
    assert q.refundable is (counted < 2)
    assert ("max_refunds" in codes(q)) is (counted == 2)


def test_a_top_up_partly_spent_from_the_balance_is_capped_by_what_is_left() -> None:
    pay = payment(destination=Destination.CUSTOMER_BALANCE)
    q = quote(context(pay=pay, balance_remaining=usd(3000), balance_spent=usd(2000),
                      balance_spent_on=("inv_7",)))  # fmt: skip
    assert (q.max_amount, codes(q)) == (usd(3000), ["customer_balance"])
    assert q.limits[0].message == (
        "Only 30.00 USD of this top-up is still in the customer's balance; "
        "20.00 USD was spent on inv_7."
    )


# --- limits at their boundaries, and what a quote lists ----------------------------------------


def top_up(held: int = 0, **kw: object) -> PolicyContext:
    """A context for a top-up (a payment into the customer balance); ``kw``: more fields."""
    return attrs.evolve(
        context(held, pay=payment(destination=Destination.CUSTOMER_BALANCE)),
        **kw,  # type: ignore[arg-type]
    )


def test_a_top_up_still_whole_in_the_balance_adds_no_limit() -> None:
    """``left >= remaining`` binds nothing: with as much left as may go back, the payment's own
    cap is the only limit. Kills ``>=`` → ``>`` in ``customer_balance``."""
    q = quote(top_up(2000, balance_remaining=usd(3000)))
    assert (q.max_amount, codes(q)) == (usd(3000), ["payment_cap"])


def test_a_top_up_without_a_balance_figure_adds_no_limit() -> None:
    """Kills the ``left is None`` return removed (and ``or`` → ``and``)."""
    q = quote(top_up())
    assert (q.max_amount, q.limits) == (usd(5000), ())


def test_the_top_up_rule_leaves_a_card_payment_alone() -> None:
    """Kills the destination check's return removed in ``customer_balance``."""
    q = quote(context(balance_remaining=usd(100)))
    assert (q.max_amount, q.limits) == (usd(5000), ())


@pytest.mark.parametrize(
    ("spent", "on", "sentence"),
    [
        (None, (), "Only 30.00 USD of this top-up is still in the customer's balance."),
        (usd(2000), (), "Only 30.00 USD of this top-up is still in the customer's balance; "
                        "20.00 USD was spent."),
        (usd(2000), ("inv_7", "inv_8"), "Only 30.00 USD of this top-up is still in the "
                                        "customer's balance; 20.00 USD was spent on inv_7, inv_8."),
    ],
    ids=["nothing said to be spent", "spent, nowhere named", "spent on two invoices"],
)  # fmt: skip
def test_the_top_up_sentence_says_what_was_spent_only_when_known(
    spent: Money | None, on: tuple[str, ...], sentence: str
) -> None:
    """Kills, in ``_spent``: the ``not amount`` return removed and ``if references`` forced."""
    q = quote(top_up(balance_remaining=usd(3000), balance_spent=spent, balance_spent_on=on))
    assert [lim.message for lim in q.limits] == [sentence]


def test_the_credit_lot_rule_binds_only_below_the_payment() -> None:
    """As docs/policy.md says: when less of that credit is left than the payment. Kills
    ``left >= ctx.payment.amount`` → ``>`` (the quote hides it: a limit at the payment's amount
    is not listed, so the rule is asked directly)."""
    whole = context(pay=payment(credited=usd(5000)), lot_remaining=usd(5000))
    assert credit_balance(whole) == []
    less = attrs.evolve(whole, lot_remaining=usd(4999))
    assert [(lim.code, lim.amount) for lim in credit_balance(less)] == [
        ("credit_balance", usd(4999))
    ]


def test_a_limit_at_the_payments_amount_is_not_listed() -> None:
    """A quote lists the limits that keep a refund below the payment (and full-only ones).
    Kills ``lim.amount < ctx.payment.amount`` → ``<=``."""

    def at_payment(ctx: PolicyContext) -> Sequence[Limit]:
        return [Limit("at_payment", ctx.payment.amount, "No tighter than the payment.")]

    q = quote(context(), [at_payment])
    assert (q.max_amount, q.limits) == (usd(5000), ())


def test_one_minor_unit_left_is_refundable() -> None:
    """Kills ``refundable=max_amount.amount > 0`` → ``> 1``."""
    q = quote(context(held=4999))
    assert (q.refundable, q.max_amount) == (True, usd(1))
    check_amount(q, usd(1))


@pytest.mark.parametrize(
    ("ctx", "full_only"),
    [
        (context(pay=payment(1), caps=Capabilities(partial_refunds=False)), True),
        (context(pay=payment(disputed=True), caps=Capabilities(partial_refunds=False)), False),
    ],
    ids=["one minor unit, whole only", "nothing refundable"],
)
def test_a_quote_is_full_only_when_something_may_go_back_whole(
    ctx: PolicyContext, full_only: bool
) -> None:
    """Kills ``max_amount.amount > 0`` → ``>= 0`` / ``> 1`` in ``full_only``."""
    assert quote(ctx).full_only is full_only


def test_an_over_cap_refusal_names_only_the_limits_below_the_amount() -> None:
    """Asked for 30.00 with 25.00 left of the top-up and 30.00 under the payment cap: only the
    top-up's limit is why not. Kills ``lim.amount < amount`` → ``<=`` in ``check_amount``."""
    q = quote(top_up(2000, balance_remaining=usd(2500)))
    assert codes(q) == ["customer_balance", "payment_cap"]
    with pytest.raises(InsufficientRefundableBalance) as info:
        check_amount(q, usd(3000))
    assert [lim.code for lim in info.value.limits] == ["customer_balance"]

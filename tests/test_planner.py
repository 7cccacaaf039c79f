"""The refund planner: each strategy, laziness, the reasons people read, and its properties."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refundkit._errors import CurrencyMismatch, InvalidInput, InvalidMoney, InvalidMoneyType
from refundkit._model import Card, Limit
from refundkit._money import Money
from refundkit._planner import (
    STRATEGIES,
    Allocation,
    Leg,
    LegResult,
    Plan,
    PlanResult,
    Source,
    allocate,
    candidate_order,
    uses_cover_candidates,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
VISA = Card("visa", "4242", 12, 2030)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def src(
    n: int,
    available: str,
    *,
    days_ago: int | None = None,
    lot: str | None = None,
    limits: tuple[Limit, ...] = (),
    currency: str = "USD",
) -> Source:
    """Source ``pay_<n>`` paying ``inv_<n>`` (or funding balance lot ``lot``)."""
    return Source(
        payment_id=f"pay_{n}",
        gateway="sandbox",
        captured_at=T0 - timedelta(days=n if days_ago is None else days_ago),
        available=Money.parse(available, currency),
        invoice_id=None if lot else f"inv_{n}",
        lot_id=lot,
        card=VISA,
        limits=limits,
    )


def limit(message: str, amount: str = "0.00") -> Limit:
    return Limit("test_limit", usd(amount), message)


class Strict:
    """An iterator that fails the test if pulled past ``allowed`` items."""

    def __init__(self, sources: Iterable[Source], allowed: int) -> None:
        self.items = iter(sources)
        self.allowed = allowed
        self.pulled = 0

    def __iter__(self) -> Iterator[Source]:
        return self

    def __next__(self) -> Source:
        self.pulled += 1
        if self.pulled > self.allowed:
            pytest.fail(f"the planner pulled source #{self.pulled}; only {self.allowed} needed")
        return next(self.items)


def shape(allocation: Allocation) -> list[tuple[str, str]]:
    return [(leg.payment_id, leg.amount.decimal_str()) for leg in allocation.legs]


# --- candidate order -----------------------------------------------------------------------


def test_candidate_order_per_strategy() -> None:
    assert [candidate_order(s) for s in STRATEGIES] == ["newest", "oldest", "largest", "largest"]
    assert [uses_cover_candidates(s) for s in STRATEGIES] == [False, False, True, True]
    with pytest.raises(InvalidInput, match="newest_first, oldest_first"):
        candidate_order("biggest_first")


# --- newest_first / oldest_first -----------------------------------------------------------


def test_newest_first_takes_in_order_and_stops() -> None:
    sources = [src(1, "30.00"), src(2, "50.00"), src(3, "40.00"), src(4, "99.00")]
    feed = Strict(sources, allowed=3)
    plan = allocate(usd("90.00"), "newest_first", feed)
    assert shape(plan) == [("pay_1", "30.00"), ("pay_2", "50.00"), ("pay_3", "10.00")]
    assert plan.unrefundable == usd("0.00")
    assert plan.reason is None
    assert feed.pulled == 3


def test_oldest_first_covered_exactly_by_first_source_pulls_one() -> None:
    feed = Strict([src(9, "25.00"), src(8, "100.00")], allowed=1)
    plan = allocate(usd("25.00"), "oldest_first", feed)
    assert shape(plan) == [("pay_9", "25.00")]
    assert feed.pulled == 1


def test_laziness_over_a_huge_generator() -> None:
    pulled = 0

    def store() -> Iterator[Source]:
        nonlocal pulled
        for n in range(100_000):
            pulled += 1
            yield src(n, "10.00")

    plan = allocate(usd("25.00"), "newest_first", store())
    assert pulled == 3
    assert shape(plan) == [("pay_0", "10.00"), ("pay_1", "10.00"), ("pay_2", "5.00")]


def test_zero_available_sources_are_skipped() -> None:
    sources = [src(1, "0.00"), src(2, "20.00"), src(3, "-5.00"), src(4, "20.00")]
    plan = allocate(usd("30.00"), "newest_first", sources)
    assert shape(plan) == [("pay_2", "20.00"), ("pay_4", "10.00")]


def test_short_plan_says_what_to_refund_outside() -> None:
    credit = limit("30.00 USD of pay_1 was issued as customer credit and spent on inv_9.")
    sources = [src(1, "70.00", limits=(credit,))]
    plan = allocate(usd("90.00"), "newest_first", sources)
    assert shape(plan) == [("pay_1", "70.00")]
    assert plan.unrefundable == usd("20.00")
    assert plan.reason == (
        "Only 70.00 USD of the 90.00 USD can go back through the platform; "
        "refund the other 20.00 USD outside refundkit. "
        "30.00 USD of pay_1 was issued as customer credit and spent on inv_9."
    )


def test_short_reasons_are_deduplicated_labelled_and_bounded() -> None:
    disputed = limit("This payment is disputed.")
    window = limit("The refund window of 30 days ended on 2026-10-01.")
    sources = [
        src(1, "10.00", limits=(disputed,)),
        src(2, "0.00", limits=(window, disputed)),
        src(3, "0.00", lot="lot_ab12", limits=(disputed,)),
        src(4, "0.00", limits=(disputed,)),
        src(5, "0.00", limits=(disputed,)),
        src(6, "0.00", limits=(limit("Third."),)),
    ]
    plan = allocate(usd("50.00"), "newest_first", sources, max_listed=2)
    assert plan.reason == (
        "Only 10.00 USD of the 50.00 USD can go back through the platform; "
        "refund the other 40.00 USD outside refundkit. "
        "pay_1 (inv_1), pay_2 (inv_2), pay_3 (balance lot lot_ab12) and 2 more: "
        "This payment is disputed. "
        "pay_2 (inv_2): The refund window of 30 days ended on 2026-10-01. "
        "1 more reason not shown."
    )


def test_a_sentence_naming_another_payment_gets_the_label() -> None:
    sources = [src(1, "1.00", limits=(limit("pay_12 was refunded at the gateway."),))]
    plan = allocate(usd("5.00"), "newest_first", sources)
    assert plan.reason is not None
    assert plan.reason.endswith(" pay_1 (inv_1): pay_12 was refunded at the gateway.")
    named = [src(1, "1.00", limits=(limit("Most of it was spent before pay_1."),))]
    reason = allocate(usd("5.00"), "newest_first", named).reason
    assert reason is not None
    assert reason.endswith("outside refundkit. Most of it was spent before pay_1.")


def test_nothing_refundable() -> None:
    sources = [src(1, "0.00", limits=(limit("This payment is disputed."),))]
    plan = allocate(usd("5.00"), "oldest_first", sources)
    assert plan.legs == ()
    assert plan.unrefundable == usd("5.00")
    assert plan.reason == (
        "Nothing can be refunded to this customer's payments now. "
        "Refund the 5.00 USD outside refundkit. "
        "pay_1 (inv_1): This payment is disputed."
    )
    empty = allocate(usd("5.00"), "newest_first", [])
    assert empty.reason is not None
    assert empty.reason.startswith("Nothing can be refunded to this customer's payments now.")


def test_legs_carry_the_source_details() -> None:
    plan = allocate(usd("5.00"), "newest_first", [src(7, "9.00", lot="lot_ab12")])
    assert plan.legs == (
        Leg("pay_7", usd("5.00"), "sandbox", invoice_id=None, lot_id="lot_ab12", card=VISA),
    )


# --- fewest_refunds ------------------------------------------------------------------------


def test_fewest_refunds_one_cover_never_touches_candidates() -> None:
    covers = Strict([src(2, "100.00"), src(5, "300.00")], allowed=1)
    plan = allocate(usd("80.00"), "fewest_refunds", Strict([], 0), cover_candidates=covers)
    assert shape(plan) == [("pay_2", "80.00")]
    assert plan.reason is None
    assert covers.pulled == 1


def test_fewest_refunds_falls_back_to_largest_first() -> None:
    largest_first = Strict([src(1, "50.00"), src(2, "40.00"), src(3, "30.00")], allowed=2)
    plan = allocate(usd("80.00"), "fewest_refunds", largest_first, cover_candidates=[])
    assert shape(plan) == [("pay_1", "50.00"), ("pay_2", "30.00")]
    assert largest_first.pulled == 2


def test_fewest_refunds_without_cover_candidates_finds_the_newest_cover() -> None:
    sources = [
        src(1, "50.00", days_ago=9),
        src(2, "90.00", days_ago=5),
        src(3, "85.00", days_ago=1),
    ]
    plan = allocate(usd("80.00"), "fewest_refunds", sources)
    assert shape(plan) == [("pay_3", "80.00")]


def test_fewest_refunds_without_cover_candidates_orders_by_size_itself() -> None:
    sources = [src(1, "10.00"), src(2, "40.00"), src(3, "0.00"), src(4, "30.00")]
    plan = allocate(usd("60.00"), "fewest_refunds", sources)
    assert shape(plan) == [("pay_2", "40.00"), ("pay_4", "20.00")]


def test_fewest_refunds_skips_a_cover_candidate_that_does_not_cover() -> None:
    covers = [src(1, "10.00"), src(2, "90.00")]
    plan = allocate(usd("80.00"), "fewest_refunds", [], cover_candidates=covers)
    assert shape(plan) == [("pay_2", "80.00")]


# --- single_source -------------------------------------------------------------------------


def test_single_source_from_cover_candidates() -> None:
    plan = allocate(
        usd("60.00"), "single_source", Strict([], 0), cover_candidates=[src(4, "75.00")]
    )
    assert shape(plan) == [("pay_4", "60.00")]
    assert plan.unrefundable == usd("0.00")
    assert plan.reason is None


def test_single_source_scans_candidates_without_cover_candidates() -> None:
    feed = Strict([src(1, "75.00"), src(2, "50.00")], allowed=1)
    plan = allocate(usd("60.00"), "single_source", feed)
    assert shape(plan) == [("pay_1", "60.00")]


def test_single_source_refusal_lists_each_balance() -> None:
    plan = allocate(
        usd("90.00"),
        "single_source",
        [src(1, "70.00"), src(2, "50.00")],
        cover_candidates=[],
    )
    assert plan.legs == ()
    assert plan.unrefundable == usd("90.00")
    assert plan.reason == (
        "No single payment can refund 90.00 USD: pay_1 (inv_1) has 70.00 USD refundable, "
        "pay_2 (inv_2) has 50.00 USD. "
        "Together they hold 120.00 USD; the fewest_refunds strategy can split the refund."
    )


def test_single_source_refusal_and_n_more_largest_first() -> None:
    # Deliberately not largest first: the listing sorts what it keeps; ties keep arrival order.
    sources = [src(n, f"{n}.00") for n in range(1, 8)] + [src(8, "7.00"), src(9, "0.00")]
    plan = allocate(usd("100.00"), "single_source", sources, max_listed=3)
    assert plan.reason == (
        "No single payment can refund 100.00 USD: pay_7 (inv_7) has 7.00 USD refundable, "
        "pay_8 (inv_8) has 7.00 USD, pay_6 (inv_6) has 6.00 USD and 5 more."
    )


def test_single_source_nothing_refundable() -> None:
    plan = allocate(usd("10.00"), "single_source", [src(1, "0.00")])
    assert plan.reason == (
        "Nothing can be refunded to this customer's payments now. "
        "Refund the 10.00 USD outside refundkit."
    )


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("total", [usd("0.00"), usd("-1.00")])
def test_total_must_be_positive(total: Money) -> None:
    with pytest.raises(InvalidMoney, match=r"more than 0\.00 USD"):
        allocate(total, "newest_first", [src(1, "5.00")])


def test_total_must_be_money() -> None:
    with pytest.raises(InvalidMoneyType):
        allocate(5, "newest_first", [])  # type: ignore[arg-type]


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        allocate(usd("1.00"), "cheapest", [])
    assert str(info.value) == (
        "unknown strategy 'cheapest': use one of "
        "newest_first, oldest_first, fewest_refunds, single_source"
    )
    with pytest.raises(InvalidInput, match=r"^unknown strategy: use one of"):
        allocate(usd("1.00"), "4242 4242 4242 4242", [])


def test_source_in_another_currency_is_refused() -> None:
    with pytest.raises(CurrencyMismatch, match="pay_2 \\(inv_2\\) is in EUR"):
        allocate(usd("50.00"), "newest_first", [src(1, "10.00"), src(2, "10.00", currency="EUR")])


def test_a_source_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="listed twice"):
        allocate(usd("50.00"), "oldest_first", [src(1, "10.00"), src(1, "10.00")])


def test_max_listed_must_be_positive() -> None:
    with pytest.raises(InvalidInput, match="max_listed"):
        allocate(usd("5.00"), "single_source", [], max_listed=0)


def test_a_candidate_must_be_a_source() -> None:
    with pytest.raises(InvalidInput, match="must be a Source"):
        allocate(usd("5.00"), "newest_first", ["pay_1"])  # type: ignore[list-item]


# --- serialisation -------------------------------------------------------------------------


def test_allocation_round_trips_through_a_dict() -> None:
    plan = allocate(usd("90.00"), "newest_first", [src(1, "70.00"), src(2, "0.00", lot="lot_1")])
    d = plan.to_dict()
    assert d == {
        "currency": "USD",
        "total": 9000,
        "planned": 7000,
        "unrefundable": 2000,
        "reason": plan.reason,
        "legs": [
            {
                "payment_id": "pay_1",
                "amount": 7000,
                "currency": "USD",
                "gateway": "sandbox",
                "invoice_id": "inv_1",
                "lot_id": None,
                "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
            }
        ],
    }
    assert Allocation.from_dict(d) == plan
    assert Leg.from_dict(d["legs"][0]) == plan.legs[0]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"amount": 0}, InvalidMoney),
        ({"amount": 1.5}, InvalidMoneyType),
        ({"payment_id": "4242 4242"}, InvalidInput),
        ({"card": "visa"}, InvalidInput),
        ({"gateway": None}, InvalidInput),
    ],
)
def test_leg_from_dict_is_strict(change: dict[str, Any], error: type[Exception]) -> None:
    d = {"payment_id": "pay_1", "amount": 100, "currency": "USD", "gateway": "sandbox", **change}
    with pytest.raises(error):
        Leg.from_dict(d)


def test_leg_from_dict_names_a_missing_key() -> None:
    with pytest.raises(InvalidInput, match="'gateway'"):
        Leg.from_dict({"payment_id": "pay_1", "amount": 100, "currency": "USD"})


def test_allocation_from_dict_checks_derived_totals() -> None:
    d = allocate(usd("5.00"), "newest_first", [src(1, "9.00")]).to_dict()
    d["planned"] = 1
    with pytest.raises(InvalidInput, match="planned"):
        Allocation.from_dict(d)


# --- properties ----------------------------------------------------------------------------

GREEDY = ("newest_first", "oldest_first", "fewest_refunds")

source_lists = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
    ),
    min_size=1,
    max_size=30,
).map(
    lambda rows: [
        Source(
            payment_id=f"pay_{i}",
            gateway="sandbox",
            captured_at=at.replace(tzinfo=UTC),
            available=Money(amount, "USD"),
            invoice_id=f"inv_{i}",
        )
        for i, (amount, at) in enumerate(rows)
    ]
)
totals = st.one_of(st.integers(1, 10_000), st.integers(1, 320_000)).map(lambda n: Money(n, "USD"))


def by_size(sources: list[Source]) -> list[Source]:
    return sorted(sources, key=lambda s: -s.available.amount)


def by_age(sources: list[Source], *, newest: bool) -> list[Source]:
    return sorted(sources, key=lambda s: s.captured_at, reverse=newest)


def covers(total: Money, sources: list[Source]) -> list[Source]:
    return by_age([s for s in sources if s.available >= total], newest=True)


def run(
    strategy: str, total: Money, sources: list[Source], *, with_cover: bool = True
) -> Allocation:
    """Allocate with inputs in the documented order, as the store supplies them."""
    order = candidate_order(strategy)
    ordered = by_size(sources) if order == "largest" else by_age(sources, newest=order == "newest")
    cover = covers(total, sources) if with_cover and uses_cover_candidates(strategy) else None
    return allocate(total, strategy, ordered, cover_candidates=cover)


def check_invariants(plan: Allocation, total: Money, sources: list[Source]) -> None:
    by_id = {s.payment_id: s for s in sources}
    ids = [leg.payment_id for leg in plan.legs]
    assert len(ids) == len(set(ids))
    for leg in plan.legs:
        assert Money(0, "USD") < leg.amount <= by_id[leg.payment_id].available
    planned = sum(leg.amount.amount for leg in plan.legs)
    assert plan.unrefundable.amount == total.amount - planned
    assert (plan.reason is None) == (plan.unrefundable.amount == 0)


@settings(deadline=None)
@given(sources=source_lists, total=totals, strategy=st.sampled_from(GREEDY), cover=st.booleans())
def test_greedy_strategies_properties(
    sources: list[Source], total: Money, strategy: str, cover: bool
) -> None:
    plan = run(strategy, total, sources, with_cover=cover)
    check_invariants(plan, total, sources)
    refundable = sum(s.available.amount for s in sources)
    assert plan.planned.amount == min(total.amount, refundable)
    assert plan.total == total


@settings(deadline=None)
@given(sources=source_lists, total=totals, cover=st.booleans())
def test_fewest_refunds_uses_the_fewest_legs(
    sources: list[Source], total: Money, cover: bool
) -> None:
    plan = run("fewest_refunds", total, sources, with_cover=cover)
    cover_sources = covers(total, sources)
    if cover_sources:
        (leg,) = plan.legs
        chosen = next(s for s in cover_sources if s.payment_id == leg.payment_id)
        assert chosen.captured_at == cover_sources[0].captured_at  # the newest (ties: any)
        assert leg.amount == total
        return
    needed, running = 0, 0
    for amount in sorted((s.available.amount for s in sources if s.available), reverse=True):
        if running >= total.amount:
            break
        needed, running = needed + 1, running + amount
    assert len(plan.legs) == needed


@settings(deadline=None)
@given(sources=source_lists, total=totals, cover=st.booleans())
def test_single_source_properties(sources: list[Source], total: Money, cover: bool) -> None:
    plan = run("single_source", total, sources, with_cover=cover)
    check_invariants(plan, total, sources)
    assert len(plan.legs) in (0, 1)
    assert (len(plan.legs) == 1) == any(s.available >= total for s in sources)
    if plan.legs:
        assert plan.legs[0].amount == total


@settings(deadline=None)
@given(sources=source_lists, total=totals, newest=st.booleans())
def test_age_strategies_drain_in_order(sources: list[Source], total: Money, newest: bool) -> None:
    ordered = by_age(sources, newest=newest)
    plan = allocate(total, "newest_first" if newest else "oldest_first", ordered)
    expected = [s for s in ordered if s.available][: len(plan.legs)]
    assert [leg.payment_id for leg in plan.legs] == [s.payment_id for s in expected]
    for leg, source in zip(plan.legs[:-1], expected, strict=False):
        assert leg.amount == source.available


@settings(deadline=None)
@given(sources=source_lists, max_listed=st.integers(1, 12))
def test_single_source_refusal_lists_the_largest(sources: list[Source], max_listed: int) -> None:
    total = Money(10_001, "USD")  # more than any source holds: always a refusal
    plan = allocate(total, "single_source", sources, max_listed=max_listed)
    positive = [s for s in sources if s.available]
    assert plan.reason is not None
    if not positive:
        assert plan.reason.startswith("Nothing can be refunded")
        return
    listed = re.findall(r"(pay_\d+) \(inv_\d+\) has", plan.reason)
    assert listed == [s.payment_id for s in by_size(positive)[:max_listed]]
    more = len(positive) - len(listed)
    assert (f" and {more} more." in plan.reason) == (more > 0)


# --- gaps a mutation run found (issue 24; tools/mutate.py names each mutant) ------------------


def test_a_source_is_known_by_its_payment_invoice_and_lot() -> None:
    """Kills ``Source.key``'s return removed, and ``label``'s branches."""
    plain = Source("pay_9", "sandbox", T0, usd("1.00"))
    assert (plain.key, plain.label()) == (("pay_9", None, None), "pay_9")
    paid = src(1, "1.00")
    assert (paid.key, paid.label()) == (("pay_1", "inv_1", None), "pay_1 (inv_1)")
    lot = src(2, "1.00", lot="lot_ab")
    assert (lot.key, lot.label()) == (("pay_2", None, "lot_ab"), "pay_2 (balance lot lot_ab)")


def test_a_leg_without_a_card_says_so() -> None:
    """Kills ``self.card.to_dict() if self.card else None`` with the test forced true."""
    leg = Leg("pay_1", usd("1.00"), "sandbox")
    assert leg.to_dict()["card"] is None
    assert Leg.from_dict(leg.to_dict()) == leg


def test_a_leg_of_one_minor_unit_loads() -> None:
    """Kills ``amount.amount <= 0`` → ``<= 1`` in ``Leg.from_dict``."""
    leg = Leg.from_dict({"payment_id": "pay_1", "amount": 1, "currency": "USD", "gateway": "gw"})
    assert leg.amount == Money(1, "USD")


@pytest.mark.parametrize("load", [Leg.from_dict, Allocation.from_dict])
def test_a_leg_or_allocation_must_be_a_mapping(load: Any) -> None:
    """Kills the body of ``if not isinstance(d, Mapping)`` removed (a list raised TypeError)."""
    with pytest.raises(InvalidInput, match="must be a mapping, not list"):
        load([("amount", 100)])


def _saved(**change: Any) -> dict[str, Any]:
    d = allocate(usd("5.00"), "newest_first", [src(1, "9.00")]).to_dict()
    return {**d, **change}


def test_a_saved_plan_with_legs_in_mixed_currencies_does_not_load() -> None:
    """A saved allocation in USD whose leg is in EUR is refused. Kills the removal of the
    leg-currency check in ``Allocation.from_dict`` (the loop, or the body of its ``if``)."""
    leg = {**_saved()["legs"][0], "currency": "EUR"}
    with pytest.raises(CurrencyMismatch, match="a leg of pay_1 is not in USD"):
        Allocation.from_dict(_saved(legs=[leg]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"legs": "pay_1"}, "an allocation's legs must be a list"),
        ({"reason": 7}, "an allocation's reason must be a string or null"),
    ],
)
def test_a_saved_allocation_is_checked_as_strictly_as_new_input(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        Allocation.from_dict(_saved(**change))


def test_a_saved_allocation_names_a_missing_key() -> None:
    d = _saved()
    del d["unrefundable"]
    with pytest.raises(InvalidInput, match="an allocation needs 'unrefundable'"):
        Allocation.from_dict(d)


def test_a_refusal_lists_ten_sources_unless_told_otherwise() -> None:
    """``max_listed`` defaults to 10. Kills its default ``10`` → ``11``."""
    sources = [src(n, f"{n}.00") for n in range(1, 13)]
    refusal = allocate(usd("100.00"), "single_source", sources).reason
    assert refusal is not None
    assert refusal.count(" has ") == 10
    assert "and 2 more." in refusal


@pytest.mark.parametrize(("length", "echoed"), [(32, True), (33, False)])
def test_an_unknown_strategy_is_echoed_only_when_short(length: int, echoed: bool) -> None:
    """A refused name is echoed only if it looks like one (at most 32 characters). Kills
    ``len(strategy) <= 32`` → ``< 32`` / ``<= 33``."""
    name = "x" * length
    with pytest.raises(InvalidInput) as info:
        allocate(usd("1.00"), name, [])
    assert (name in str(info.value)) is echoed


def test_of_two_equally_new_covers_the_first_met_is_taken() -> None:
    """Ties go to the source met first, as in the refusal's listing. Kills ``>`` → ``>=`` in
    ``_newest_cover``."""
    plan = allocate(usd("5.00"), "fewest_refunds", [src(1, "9.00", days_ago=3),
                                                    src(2, "8.00", days_ago=3)])  # fmt: skip
    assert [leg.payment_id for leg in plan.legs] == ["pay_1"]


def test_single_source_with_nothing_available_says_why() -> None:
    """With no source to list, the refusal gives the sources' limits. Kills the removal of
    ``reasons.add(source)`` in ``_single_source``."""
    blocked = src(1, "0.00", limits=(limit("This payment is disputed."),))
    plan = allocate(usd("10.00"), "single_source", [blocked])
    assert plan.reason == (
        "Nothing can be refunded to this customer's payments now. "
        "Refund the 10.00 USD outside refundkit. pay_1 (inv_1): This payment is disputed."
    )


def test_single_source_refusal_counts_what_the_store_counted() -> None:
    """``listed_totals`` gives how many sources there are and their sum when the store cut
    the list. Kills the removal of its use (the ``if`` body, either assignment)."""
    plan = allocate(usd("100.00"), "single_source", [src(1, "60.00"), src(2, "30.00")],
                    listed_totals=lambda: (5, usd("120.00")))  # fmt: skip
    assert plan.reason == (
        "No single payment can refund 100.00 USD: pay_1 (inv_1) has 60.00 USD refundable, "
        "pay_2 (inv_2) has 30.00 USD and 3 more. Together they hold 120.00 USD; the "
        "fewest_refunds strategy can split the refund."
    )


def test_single_source_refusal_suggests_splitting_when_together_they_hold_exactly_enough() -> None:
    """Kills ``self.together >= total.amount`` → ``>``."""
    plan = allocate(usd("90.00"), "single_source", [src(1, "60.00"), src(2, "30.00")])
    assert plan.reason is not None
    assert plan.reason.endswith(
        "Together they hold 90.00 USD; the fewest_refunds strategy can split the refund."
    )


# --- plans and their results -------------------------------------------------------------------


def _plan() -> Plan:
    allocation = allocate(usd("90.00"), "newest_first", [src(1, "70.00"), src(2, "0.00")])
    return Plan("plan_1", "cus_1", "newest_first", None, allocation, {"payment:pay_1": 0},
                "2026-11-22T10:00:00Z")  # fmt: skip


def test_a_plan_reads_its_allocation() -> None:
    """Kills the returns of ``Plan.legs``, ``total``, ``unrefundable``, ``reason`` and
    ``leg_key`` removed."""
    plan = _plan()
    assert plan.legs == plan.allocation.legs
    assert len(plan.legs) == 1
    assert (plan.total, plan.unrefundable) == (usd("90.00"), usd("20.00"))
    assert plan.reason is not None
    assert plan.reason.startswith("Only 70.00 USD of the 90.00 USD can go back")
    assert plan.leg_key(0) == "plan_1.0"


def test_a_plan_round_trips_through_a_dict() -> None:
    plan = _plan()
    d = plan.to_dict()
    assert {k: d[k] for k in ("id", "customer_id", "strategy", "scope", "created", "basis")} == {
        "id": "plan_1", "customer_id": "cus_1", "strategy": "newest_first", "scope": None,
        "created": "2026-11-22T10:00:00Z", "basis": {"payment:pay_1": 0},
    }  # fmt: skip
    assert Plan.from_dict(d) == plan


@pytest.mark.parametrize(
    "basis",
    [["payment:pay_1"], {"payment:pay_1": "0"}, {"payment:pay_1": 1.0}, {1: 0}],
    ids=["a list", "a string", "a float", "a number as name"],
)
def test_a_saved_plan_basis_maps_names_to_whole_numbers(basis: Any) -> None:
    """Kills each part of the basis check in ``Plan.from_dict`` (``or`` → ``and``, a ``not``
    dropped, ``and`` → ``or``, ``is int`` → ``is not int``, the check forced or removed)."""
    with pytest.raises(InvalidInput, match="plan basis must map names to whole numbers"):
        Plan.from_dict({**_plan().to_dict(), "basis": basis})


def test_a_saved_plan_names_a_missing_key() -> None:
    d = _plan().to_dict()
    del d["customer_id"]
    with pytest.raises(InvalidInput, match="a plan needs 'customer_id'"):
        Plan.from_dict(d)


def test_a_plan_result_by_status_and_as_a_dict() -> None:
    """Kills ``PlanResult.by_status``'s filter (``==`` → ``!=``, its return removed), its and
    ``LegResult``'s ``to_dict`` removed, and the error's ``if`` forced either way."""
    leg = _plan().legs[0]
    done = LegResult(0, leg, "succeeded", refund_id="rf_1")
    refused = LegResult(1, leg, "refused", error={"code": "refund_not_allowed"})
    result = PlanResult("plan_1", (done, refused))
    assert result.by_status("succeeded") == (done,)
    assert result.by_status("failed") == ()
    assert result.to_dict() == {
        "plan_id": "plan_1",
        "legs": [
            {"index": 0, "leg": leg.to_dict(), "status": "succeeded", "refund_id": "rf_1",
             "error": None},
            {"index": 1, "leg": leg.to_dict(), "status": "refused", "refund_id": None,
             "error": {"code": "refund_not_allowed"}},
        ],
    }  # fmt: skip

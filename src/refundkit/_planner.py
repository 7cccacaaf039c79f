"""Refund planning: spread a wanted total over sources (legs) and say what cannot go back.

Pure, like the policy: the kit computes each source's ``available`` now (its quote's max,
lot-limited) and hands the sources over lazily, in the order the strategy needs
(``candidate_order``). The planner pulls from them only until the total is covered, so a plan
that a few sources cover costs only those few, however many payments the customer has. A plan
that falls short, and a ``single_source`` refusal that names every source, read them all.
Whatever the legs cannot
cover is the ``unrefundable`` remainder, with a reason a person can act on: refund it outside
refundkit.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from ._errors import (
    CardDataRefused,
    CurrencyMismatch,
    InvalidInput,
    InvalidMoney,
    InvalidMoneyType,
    InvalidPlan,
)
from ._model import Card, Limit, check_id
from ._money import Money

STRATEGIES = ("newest_first", "oldest_first", "fewest_refunds", "single_source")

# The order in which the store must supply ``candidates`` for each strategy.
_CANDIDATE_ORDER = {
    "newest_first": "newest",
    "oldest_first": "oldest",
    "fewest_refunds": "largest",
    "single_source": "largest",
}
# Strategies that look at ``cover_candidates`` (sources that alone cover the total, newest first).
_USES_COVER = frozenset({"fewest_refunds", "single_source"})
# How many sources one repeated limit sentence names before "and N more".
_LABELS_PER_REASON = 3


@attrs.frozen
class Source:
    """One place money can go back from, as the kit computed it now."""

    payment_id: str
    gateway: str
    captured_at: datetime
    #: The most this source can refund now (its quote's max, limited by its balance lot).
    available: Money
    invoice_id: str | None = None
    #: Set when the money comes out of a customer-balance lot funded by ``payment_id``.
    lot_id: str | None = None
    card: Card | None = None
    #: Why not more, each with a sentence for people (may be empty).
    limits: tuple[Limit, ...] = ()

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """What makes two sources the same place: a plan takes from each at most once."""
        return (self.payment_id, self.invoice_id, self.lot_id)

    def label(self) -> str:
        """How people see this source: ``pay_1 (inv_1)`` or ``pay_7 (balance lot lot_ab12)``."""
        if self.lot_id is not None:
            return f"{self.payment_id} (balance lot {self.lot_id})"
        if self.invoice_id is not None:
            return f"{self.payment_id} ({self.invoice_id})"
        return self.payment_id


@attrs.frozen
class Leg:
    """One refund of one payment within a plan."""

    payment_id: str
    amount: Money
    gateway: str
    invoice_id: str | None = None
    lot_id: str | None = None
    card: Card | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "gateway": self.gateway,
            "invoice_id": self.invoice_id,
            "lot_id": self.lot_id,
            "card": self.card.to_dict() if self.card else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Leg:
        """Read a leg back (e.g. a plan saved as JSON), checking it as strictly as new input."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"a leg must be a mapping, not {type(d).__name__}")
        try:
            amount = Money(d["amount"], d["currency"])
            leg = cls(
                payment_id=check_id(d["payment_id"], "payment_id"),
                amount=amount,
                gateway=check_id(d["gateway"], "gateway"),
                invoice_id=_optional_id(d.get("invoice_id"), "invoice_id"),
                lot_id=_optional_id(d.get("lot_id"), "lot_id"),
                card=_card_from_dict(d.get("card")),
            )
        except KeyError as missing:
            raise InvalidInput(f"a leg needs {missing.args[0]!r}") from None
        if amount.amount <= 0:
            raise InvalidMoney(f"a leg must refund more than {Money.zero(amount.currency)}")
        return leg


def _optional_id(value: object, what: str) -> str | None:
    return None if value is None else check_id(value, what)


def _card_from_dict(value: object) -> Card | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput("a leg's card must be a mapping (brand, last4, exp_month, exp_year)")
    return Card(
        brand=value["brand"],
        last4=value["last4"],
        exp_month=value.get("exp_month"),
        exp_year=value.get("exp_year"),
    )


@attrs.frozen
class Allocation:
    """A wanted total spread over legs, plus what cannot go back through the platform and why."""

    legs: tuple[Leg, ...]
    #: What cannot go back through the platform (zero when the legs cover the total).
    unrefundable: Money
    #: Sentences for people when ``unrefundable`` > 0 (or a refusal), else None.
    reason: str | None

    @property
    def currency(self) -> str:
        return self.unrefundable.currency

    @property
    def planned(self) -> Money:
        """What the legs refund together."""
        return Money(sum(leg.amount.amount for leg in self.legs), self.currency)

    @property
    def total(self) -> Money:
        """The wanted total: the legs plus the unrefundable remainder."""
        return self.planned + self.unrefundable

    def to_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "total": self.total.amount,
            "planned": self.planned.amount,
            "unrefundable": self.unrefundable.amount,
            "reason": self.reason,
            "legs": [leg.to_dict() for leg in self.legs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Allocation:
        """Read an allocation back; ``total`` and ``planned`` are derived, so they are checked."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"an allocation must be a mapping, not {type(d).__name__}")
        try:
            unrefundable = Money(d["unrefundable"], d["currency"])
            raw_legs = d["legs"]
            if not isinstance(raw_legs, list | tuple):
                raise InvalidInput("an allocation's legs must be a list")
            legs = tuple(Leg.from_dict(leg) for leg in raw_legs)
            reason = d.get("reason")
        except KeyError as missing:
            raise InvalidInput(f"an allocation needs {missing.args[0]!r}") from None
        if reason is not None and type(reason) is not str:
            raise InvalidInput("an allocation's reason must be a string or null")
        for leg in legs:
            if leg.amount.currency != unrefundable.currency:
                raise CurrencyMismatch(f"a leg of {leg.payment_id} is not in {d['currency']}")
        allocation = cls(legs, unrefundable, reason)
        for derived in ("total", "planned"):
            if derived in d and d[derived] != getattr(allocation, derived).amount:
                raise InvalidInput(f"the allocation's {derived} does not match its legs")
        return allocation


# --- strategy order ------------------------------------------------------------------------


def candidate_order(strategy: str) -> str:
    """The order the store must hand ``candidates`` over in: newest, oldest or largest first.

    The planner trusts it and stops pulling as soon as the total is covered; that is what makes
    a plan over 100k payments cost only the few it uses.
    """
    return _CANDIDATE_ORDER[_check_strategy(strategy)]


def uses_cover_candidates(strategy: str) -> bool:
    """Whether ``allocate`` reads ``cover_candidates`` (the sources that alone cover the total,
    newest first) for this strategy; the store can skip that query for the others."""
    return _check_strategy(strategy) in _USES_COVER


# --- allocation ----------------------------------------------------------------------------


def allocate(
    total: Money,
    strategy: str,
    candidates: Iterable[Source],
    *,
    cover_candidates: Iterable[Source] | None = None,
    max_listed: int = 10,
    listed_totals: Callable[[], tuple[int, Money]] | None = None,
) -> Allocation:
    """Spread ``total`` over ``candidates`` by ``strategy``; no side effect.

    ``candidates`` come in ``candidate_order(strategy)``; ``cover_candidates`` (read only by
    ``fewest_refunds`` and ``single_source``) are the sources whose ``available`` alone covers
    ``total``, newest first. Both are pulled lazily and never past the point where the plan is
    decided. Sources with nothing available are skipped; a source listed twice is refused.
    ``max_listed`` bounds the sources and sentences a reason names. ``listed_totals``: for a
    ``single_source`` refusal when ``candidates`` hold only the largest sources (the store
    already sorted and cut them): a callable giving how many sources have something available
    and their sum, called only if the plan is refused.
    """
    _check_total(total)
    _check_strategy(strategy)
    _check_max_listed(max_listed)
    if strategy == "fewest_refunds":
        return _fewest_refunds(total, candidates, cover_candidates, max_listed)
    if strategy == "single_source":
        return _single_source(total, candidates, cover_candidates, max_listed, listed_totals)
    return _greedy(total, _checked(total, candidates), max_listed)


def _check_total(total: object) -> None:
    if not isinstance(total, Money):
        raise InvalidMoneyType(f"the total must be Money, not {type(total).__name__}")
    if total.amount <= 0:
        raise InvalidMoney(f"the total to refund must be more than {Money.zero(total.currency)}")


def _check_strategy(strategy: object) -> str:
    if type(strategy) is not str or strategy not in _CANDIDATE_ORDER:
        # Echo only what looks like a name: a refused value may be anything a person typed.
        shown = (
            f" {strategy!r}"
            if type(strategy) is str and len(strategy) <= 32 and strategy.isidentifier()
            else ""
        )
        raise InvalidInput(f"unknown strategy{shown}: use one of {', '.join(STRATEGIES)}")
    return strategy


def _check_max_listed(max_listed: object) -> None:
    if type(max_listed) is not int or max_listed < 1:
        raise InvalidInput("max_listed must be a whole number of at least 1")


def _checked(total: Money, sources: Iterable[Source]) -> Iterator[Source]:
    """Pull ``sources`` one at a time, refusing foreign currencies and repeats as they come.

    A generator, so it asks its input for the next source only when the planner asks it.
    """
    currency = total.currency
    seen: set[tuple[str, str | None, str | None]] = set()
    for source in sources:
        if not isinstance(source, Source):
            raise InvalidInput(f"a candidate must be a Source, not {type(source).__name__}")
        if source.available.currency != currency:
            raise CurrencyMismatch(
                f"{source.label()} is in {source.available.currency} but the total is in {currency}"
            )
        # Inline rather than ``source.key``: this loop may see every payment of a customer.
        key = (source.payment_id, source.invoice_id, source.lot_id)
        if key in seen:
            raise InvalidInput(f"{source.label()} is listed twice; a plan takes from it once")
        seen.add(key)
        yield source


def _leg(source: Source, amount: Money) -> Leg:
    return Leg(
        payment_id=source.payment_id,
        amount=amount,
        gateway=source.gateway,
        invoice_id=source.invoice_id,
        lot_id=source.lot_id,
        card=source.card,
    )


def _one_leg(total: Money, source: Source) -> Allocation:
    """The whole total from one source that covers it."""
    return Allocation((_leg(source, total),), Money.zero(total.currency), None)


def _first_cover(total: Money, sources: Iterator[Source]) -> Source | None:
    """The first source that covers ``total`` alone; stops pulling there."""
    for source in sources:
        if source.available.amount >= total.amount:
            return source
    return None


def _greedy(total: Money, sources: Iterator[Source], max_listed: int) -> Allocation:
    """Take ``min(available, remaining)`` from each source in order until the total is covered.

    Stops pulling the moment it is covered. Largest first, this is also the fewest legs.
    """
    remaining = total.amount
    legs: list[Leg] = []
    reasons = _Reasons(max_listed)
    for source in sources:
        if source.limits:
            reasons.add(source)
        available = source.available.amount
        if available <= 0:
            continue
        if available >= remaining:
            part = source.available if available == remaining else Money(remaining, total.currency)
            legs.append(_leg(source, part))
            remaining = 0
            break
        legs.append(_leg(source, source.available))
        remaining -= available
    return _short_or_covered(total, legs, remaining, reasons)


def _short_or_covered(
    total: Money, legs: list[Leg], remaining: int, reasons: _Reasons
) -> Allocation:
    unrefundable = Money(remaining, total.currency)
    if remaining == 0:
        return Allocation(tuple(legs), unrefundable, None)
    planned = Money(total.amount - remaining, total.currency)
    if planned:
        head = (
            f"Only {planned} of the {total} can go back through the platform; "
            f"refund the other {unrefundable} outside refundkit."
        )
    else:
        head = f"{_NOTHING} Refund the {total} outside refundkit."
    return Allocation(tuple(legs), unrefundable, " ".join([head, *reasons.sentences()]))


_NOTHING = "Nothing can be refunded to this customer's payments now."


def _fewest_refunds(
    total: Money,
    candidates: Iterable[Source],
    cover_candidates: Iterable[Source] | None,
    max_listed: int,
) -> Allocation:
    """One refund when any single source covers the total (the newest such), else greedy
    largest first, which needs the fewest legs."""
    if cover_candidates is not None:
        cover = _first_cover(total, _checked(total, cover_candidates))
        if cover is not None:
            return _one_leg(total, cover)
        return _greedy(total, _checked(total, candidates), max_listed)
    pool = list(_checked(total, candidates))
    cover = _newest_cover(total, pool)
    if cover is not None:
        return _one_leg(total, cover)
    # All of them are in memory anyway; sorting (stably) makes the result not depend on the
    # caller having ordered them.
    pool.sort(key=lambda source: -source.available.amount)
    return _greedy(total, iter(pool), max_listed)


def _newest_cover(total: Money, sources: list[Source]) -> Source | None:
    best: Source | None = None
    for source in sources:
        if source.available.amount >= total.amount and (
            best is None or source.captured_at > best.captured_at
        ):
            best = source
    return best


def _single_source(
    total: Money,
    candidates: Iterable[Source],
    cover_candidates: Iterable[Source] | None,
    max_listed: int,
    listed_totals: Callable[[], tuple[int, Money]] | None = None,
) -> Allocation:
    """One refund of the whole total, or a refusal naming what each source could give."""
    if cover_candidates is not None:
        cover = _first_cover(total, _checked(total, cover_candidates))
        if cover is not None:
            return _one_leg(total, cover)
    listing = _Listing(max_listed)
    reasons = _Reasons(max_listed)
    for source in _checked(total, candidates):
        # With cover_candidates given, candidates only describe the refusal: the covers
        # were already tried with their full quotes.
        if cover_candidates is None and source.available.amount >= total.amount:
            return _one_leg(total, source)
        listing.add(source)
        if source.limits:
            reasons.add(source)
    if listed_totals is not None:
        listing.count, together = listed_totals()
        listing.together = together.amount
    return Allocation((), total, listing.refusal(total, reasons))


# --- explanations --------------------------------------------------------------------------


class _Reasons:
    """The limit sentences of the sources a plan drew on, deduplicated, in the order met.

    The order met is the strategy's own order (the order of the legs), so the sources a person
    reads about first are the ones the plan leaned on first. A sentence shared by several
    sources is said once, naming them; one that does not name its payment gets its label.
    """

    def __init__(self, max_listed: int) -> None:
        self.max_listed = max_listed
        self.sources: dict[str, list[Source]] = {}
        self.counts: dict[str, int] = {}

    def add(self, source: Source) -> None:
        for limit in source.limits:
            named = self.sources.setdefault(limit.message, [])
            if len(named) < _LABELS_PER_REASON:
                named.append(source)
            self.counts[limit.message] = self.counts.get(limit.message, 0) + 1

    def sentences(self) -> list[str]:
        messages = list(self.sources)
        shown = [self._attributed(m) for m in messages[: self.max_listed]]
        hidden = len(messages) - len(shown)
        if hidden:
            shown.append(f"{hidden} more reason{'s' if hidden > 1 else ''} not shown.")
        return shown

    def _attributed(self, message: str) -> str:
        named, count = self.sources[message], self.counts[message]
        if count == 1 and _names(message, named[0].payment_id):
            return message
        labels = ", ".join(source.label() for source in named)
        if count > len(named):
            labels += f" and {count - len(named)} more"
        return f"{labels}: {message}"


def _names(message: str, payment_id: str) -> bool:
    """Does the sentence already say which payment it is about (``pay_1``, not ``pay_12``)?"""
    return re.search(rf"(?<![\w.:-]){re.escape(payment_id)}(?![\w:-]|\.\w)", message) is not None


class _Listing:
    """The ``max_listed`` largest sources by ``available`` (first met wins a tie), and a count.

    A bounded heap, so listing 100k sources keeps only a handful.
    """

    def __init__(self, max_listed: int) -> None:
        self.max_listed = max_listed
        self.heap: list[tuple[int, int, Source]] = []
        self.count = 0
        self.together = 0

    def add(self, source: Source) -> None:
        available = source.available.amount
        if available <= 0:
            return
        self.count += 1
        self.together += available
        if len(self.heap) < self.max_listed:
            heapq.heappush(self.heap, (available, -self.count, source))
        elif available > self.heap[0][0]:  # a tie loses to the source met first
            heapq.heapreplace(self.heap, (available, -self.count, source))

    def refusal(self, total: Money, reasons: _Reasons) -> str:
        if not self.count:
            return " ".join(
                [f"{_NOTHING} Refund the {total} outside refundkit.", *reasons.sentences()]
            )
        largest = [source for _, _, source in sorted(self.heap, reverse=True)]
        parts = [f"{source.label()} has {source.available}" for source in largest]
        parts[0] += " refundable"
        more = self.count - len(largest)
        text = f"No single payment can refund {total}: {', '.join(parts)}"
        text += f" and {more} more." if more else "."
        if self.together >= total.amount:
            together = Money(self.together, total.currency)
            text += (
                f" Together they hold {together}; the fewest_refunds strategy can split the refund."
            )
        return text


# --- plans and their execution ---------------------------------------------------------------


@attrs.frozen
class Plan:
    """An allocation with what it was based on, so a stale plan can be refused at execution.

    ``basis`` maps ``"payment:<id>"`` to the payment's held + credited total and
    ``"lot:<id>"`` to a lot's remaining amount, both in minor units, as they were when planned.
    """

    id: str
    customer_id: str
    strategy: str
    scope: str | None
    allocation: Allocation
    basis: Mapping[str, int]
    created: str

    @property
    def legs(self) -> tuple[Leg, ...]:
        return self.allocation.legs

    @property
    def total(self) -> Money:
        return self.allocation.total

    @property
    def unrefundable(self) -> Money:
        return self.allocation.unrefundable

    @property
    def reason(self) -> str | None:
        return self.allocation.reason

    def leg_key(self, index: int) -> str:
        """The idempotency key of leg ``index``: executing the plan again replays it."""
        return f"{self.id}.{index}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "strategy": self.strategy,
            "scope": self.scope,
            "created": self.created,
            "basis": dict(self.basis),
            **self.allocation.to_dict(),
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        """A plan saved as JSON (``json.dumps(plan.to_dict())``); anything else, however
        malformed or deeply nested, is ``InvalidPlan`` (an ``InvalidInput``)."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise InvalidPlan(f"not a plan: not JSON ({why})") from None
        return cls.read(data)

    @classmethod
    def read(cls, data: object) -> Plan:
        """A plan from the mapping ``plan.to_dict()`` gives (e.g. read back from JSON), checked
        as strictly as new input; anything else is ``InvalidPlan``."""
        if not isinstance(data, Mapping):
            raise InvalidPlan(
                f"a plan is a Plan or the mapping plan.to_dict() gives, not {type(data).__name__}"
            )
        try:
            return cls.from_dict(data)
        except (InvalidPlan, CardDataRefused):
            raise  # a card number in a plan is refused as one, wherever it is
        except InvalidInput as exc:
            raise InvalidPlan(f"not a usable plan: {exc.message}") from None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        if not isinstance(d, Mapping):
            raise InvalidPlan(f"a plan is a JSON object (plan.to_dict()), not {type(d).__name__}")
        try:
            basis = d["basis"]
            if not isinstance(basis, Mapping) or not all(
                isinstance(k, str) and type(v) is int for k, v in basis.items()
            ):
                raise InvalidInput("plan basis must map names to whole numbers")
            return cls(
                id=check_id(d["id"], "plan id"),
                customer_id=check_id(d["customer_id"], "customer id"),
                strategy=_check_strategy(d["strategy"]),
                scope=_optional_id(d.get("scope"), "scope"),
                allocation=Allocation.from_dict(d),
                basis=dict(basis),
                created=str(d["created"]),
            )
        except KeyError as exc:
            raise InvalidInput(f"a plan needs {exc.args[0]!r}") from None


LegStatus = Literal["succeeded", "pending", "unknown", "manual_review", "failed", "refused"]


@attrs.frozen
class LegResult:
    """What happened to one leg: the refund made (or found again) or why there is none."""

    index: int
    leg: Leg
    status: LegStatus
    refund_id: str | None = None
    error: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leg": self.leg.to_dict(),
            "status": self.status,
            "refund_id": self.refund_id,
            "error": dict(self.error) if self.error else None,
        }


@attrs.frozen
class PlanResult:
    """What executing a plan did, leg by leg."""

    plan_id: str
    legs: tuple[LegResult, ...]

    def by_status(self, status: LegStatus) -> tuple[LegResult, ...]:
        return tuple(r for r in self.legs if r.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "legs": [r.to_dict() for r in self.legs]}

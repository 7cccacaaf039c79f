"""Spending one customer balance from several workers at once (issue 14, point 8).

A balance lot's ``remaining`` is guarded by ``CHECK (remaining >= 0)``. A worker that decides
on a lot it read without a lock (a redemption, a balance refund, a plan's leg) used to hit that
CHECK on PostgreSQL when another worker spent the lot meanwhile: a raw ``CheckViolation``
instead of the refusal it stands for, and a plan's remaining legs never ran. Now every path that
spends a lot locks it (payment, then the customer's lots: the documented lock order) and reads
it under the lock, and a lot that cannot cover a movement is refused as ``InsufficientBalance``
in the store itself, so the refusal is always typed and nothing of it is written.

The interleaving tests pause the first worker right after it read the lot (a seam: the store
or engine function it reads through is wrapped) and let the second spend the same lot in the
pause; the process test races many workers over one balance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import refundkit._store as st
from refundkit import (
    Destination,
    InsufficientBalance,
    Money,
    RefundKit,
    RefundkitError,
    RefundStatus,
)
from refundkit._engine import facts

from ._balance_workers import spend_worker
from .conftest import FakeClock, open_kit, record, row_counts, usd
from .test_concurrency import run_processes

BALANCE = Destination.CUSTOMER_BALANCE
#: How long the first worker waits, paused, for the second to finish (it cannot while the
#: first holds the lot's lock, so with the fix this pause always runs out).
PAUSE = 1.5


@pytest.fixture
def other(db_url: str, sandbox_path: str) -> Iterator[RefundKit]:
    """A second worker: its own kit, engine and connections, on the same store."""
    k = open_kit(db_url, sandbox_path, retry_backoff=0)
    yield k
    k.close()


class Outcome:
    """What a call returned or raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        try:
            self.value = fn()
        except Exception as exc:
            self.error = exc


def interleave(
    monkeypatch: pytest.MonkeyPatch,
    seam: tuple[Any, str],
    pause_when: Callable[..., bool],
    first: Callable[[], Any],
    second: Callable[[], Any],
) -> tuple[Outcome, Outcome]:
    """Run ``first`` here; when it has read through ``seam`` (module, function) with
    arguments ``pause_when`` accepts, pause it and run ``second`` in another thread, then let
    ``first`` go on once ``second`` is done or ``PAUSE`` has passed."""
    module, name = seam
    original = getattr(module, name)
    me = threading.get_ident()
    paused, done = threading.Event(), threading.Event()

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if threading.get_ident() == me and not paused.is_set() and pause_when(*args, **kwargs):
            paused.set()
            done.wait(PAUSE)
        return result

    monkeypatch.setattr(module, name, wrapped)
    got: dict[str, Outcome] = {}

    def run_second() -> None:
        if paused.wait(60):
            got["second"] = Outcome(second)
        done.set()

    thread = threading.Thread(target=run_second)
    thread.start()
    one = Outcome(first)
    thread.join(120)
    assert not thread.is_alive(), "the second worker never finished (a deadlock?)"
    assert paused.is_set(), "the first worker never read through the seam"
    return one, got["second"]


def typed(outcome: Outcome) -> RefundkitError | None:
    """The refusal, which must be typed (a raw driver error fails the test)."""
    if outcome.error is None:
        return None
    assert isinstance(outcome.error, RefundkitError), repr(outcome.error)
    return outcome.error


def lots_ok(kit: RefundKit) -> dict[str, int]:
    """Every lot within 0..amount; returns each funding payment's lot remainder."""
    lots = kit.balance("cus_1").lots
    for lot in lots:
        assert 0 <= lot.remaining.amount <= lot.amount.amount
    return {str(lot.funding_payment_id): lot.remaining.amount for lot in lots}


def test_two_redemptions_of_one_lot_at_once_one_is_refused_typed(
    kit: RefundKit, other: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8.00 and 5.00 of a 10.00 balance at once: one goes through, the other is refused with
    ``InsufficientBalance`` and writes nothing (it used to be a raw CheckViolation on
    PostgreSQL, the second redemption having spent the lot the first had read)."""
    record(kit, "pay_b", "10.00", destination=BALANCE)
    first, second = interleave(
        monkeypatch,
        (st, "customer_lots"),
        lambda *a, **kw: True,
        lambda: kit.redeem_balance("cus_1", usd("8.00"), reference="inv_a"),
        lambda: other.redeem_balance("cus_1", usd("5.00"), reference="inv_b"),
    )
    errors = [typed(first), typed(second)]
    assert [type(e) for e in errors if e is not None] == [InsufficientBalance]
    spent = 800 if errors[0] is None else 500
    assert lots_ok(kit) == {"pay_b": 1000 - spent}
    assert kit.balance("cus_1").totals == {"USD": Money(1000 - spent, "USD")}


def test_a_balance_refund_and_a_redemption_of_one_lot_at_once(
    kit: RefundKit, other: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refund of 8.00 of a 10.00 top-up reads the lot and quotes; a 5.00 redemption spends
    it meanwhile. The refund holds the lot's lock, so the redemption waits and is then refused
    (only 2.00 left): typed, nothing written, and the books add up."""
    record(kit, "pay_b", "10.00", destination=BALANCE)
    first, second = interleave(
        monkeypatch,
        (facts, "context"),
        lambda *a, **kw: True,
        lambda: kit.refund("pay_b", usd("8.00"), idempotency_key="r-1"),
        lambda: other.redeem_balance("cus_1", usd("5.00"), reference="inv_b"),
    )
    refund_error, redeem_error = typed(first), typed(second)
    refunded = 0 if refund_error else 800
    redeemed = 0 if redeem_error else 500
    assert (refund_error is None) != (redeem_error is None)  # exactly one fits in 10.00
    if refund_error is None:
        assert first.value.status is RefundStatus.SUCCEEDED
    assert lots_ok(kit) == {"pay_b": 1000 - refunded - redeemed}
    assert kit.payment("pay_b").refunded == Money(refunded, "USD")
    assert [r.amount for r in kit.refunds("pay_b")] == ([usd("8.00")] if refunded else [])


def test_a_plan_leg_refused_by_a_concurrent_spend_does_not_stop_the_others(
    kit: RefundKit, other: RefundKit, monkeypatch: pytest.MonkeyPatch, store_kind: str
) -> None:
    """Three top-ups of 10.00, a plan refunding all 30.00 (newest first: pay_3, pay_2,
    pay_1). While its first leg holds pay_3's lot, another worker spends 10.00 of the balance
    newest first. The spend waits for the leg, then takes pay_2's lot; the plan's second leg
    is then refused (typed) and its third still runs. It used to raise a raw CheckViolation
    out of ``execute`` on PostgreSQL, and the remaining legs never ran."""
    for pid in ("pay_1", "pay_2", "pay_3"):
        record(kit, pid, "10.00", destination=BALANCE)
    plan = kit.plan_refund("cus_1", usd("30.00"), scope="balance", strategy="newest_first")
    assert [leg.payment_id for leg in plan.legs] == ["pay_3", "pay_2", "pay_1"]
    first_lot = plan.legs[0].lot_id
    first, second = interleave(
        monkeypatch,
        (facts, "context"),
        lambda rt, tx, payment, lot=None: lot is not None and lot.id == first_lot,
        lambda: kit.execute(plan, reason="closing", actor="support:sam"),
        lambda: other.redeem_balance("cus_1", usd("10.00"), reference="inv_x",
                                     order="newest_first"),
    )  # fmt: skip
    assert first.error is None, repr(first.error)
    result = first.value
    assert len(result.legs) == 3  # every leg ran, whatever happened to the one before
    for leg in result.legs:
        assert leg.status in ("succeeded", "refused")
        if leg.status == "refused":
            assert leg.error is not None
            assert leg.error["code"] in ("refund_not_allowed", "insufficient_refundable_balance")
    redeemed = 0 if typed(second) else 1000
    refunded = sum(leg.leg.amount.amount for leg in result.by_status("succeeded"))
    assert refunded + redeemed == 3000  # all the balance went somewhere, once
    assert sum(lots_ok(kit).values()) == 0
    if store_kind == "postgresql":
        # Row locks make the order certain: the spend commits before leg 2 reads pay_2's lot.
        assert [leg.status for leg in result.legs] == ["succeeded", "refused", "succeeded"]
        assert second.error is None


@pytest.mark.slow
def test_many_workers_spend_and_refund_one_balance_without_an_untyped_error(
    db_url: str, sandbox_path: str, clock: FakeClock
) -> None:
    """4 processes of 4 threads, each alternating a 3.00 redemption and a 3.00 refund of a
    top-up, over 60.00 of balance in twelve 5.00 top-ups: far more is asked than there is.
    Every refusal is typed, no lot goes below zero, and what left the balance is exactly what
    was redeemed plus what was refunded."""
    kit = open_kit(db_url, sandbox_path)
    pids = [f"pay_{i}" for i in range(12)]
    for pid in pids:
        record(kit, pid, "5.00", destination=BALANCE)
    args = [(db_url, sandbox_path, "cus_1", pids, 4, 6)] * 4
    results = run_processes(spend_worker, args)
    untyped = [e for r in results for e in r["untyped"]]
    assert untyped == []
    redeemed = sum(r["redeemed"] for r in results)
    refunded = sum(r["refunded"] for r in results)
    codes = {code for r in results for code in r["refused"]}
    assert codes <= {"insufficient_balance", "refund_not_allowed",
                     "insufficient_refundable_balance"}  # fmt: skip
    left = sum(lots_ok(kit).values())
    assert left + redeemed + refunded == 6000
    assert sum(money.amount for pid in pids if (money := kit.payment(pid).refunded)) == refunded
    assert row_counts(kit)["payments"] == 12
    kit.close()


def test_a_lot_movement_beyond_what_is_left_is_insufficient_balance_and_writes_nothing(
    kit: RefundKit,
) -> None:
    """The store's own guard, for any path that spends a lot it did not lock: the movement is
    refused as ``InsufficientBalance`` (not the CHECK constraint's driver error) and nothing of
    the transaction is written."""
    record(kit, "pay_b", "10.00", destination=BALANCE)
    [lot] = kit.balance("cus_1").lots
    before = row_counts(kit)

    def spend_twice() -> None:
        with kit.store.write() as tx:
            for ref in ("inv_a", "inv_b"):
                st.move_lot(tx, lot.id, -600, kind="redemption", now=kit.clock(), reference=ref)

    with pytest.raises(InsufficientBalance) as info:
        spend_twice()
    assert info.value.code == "insufficient_balance"
    assert row_counts(kit) == before
    assert kit.balance("cus_1").totals == {"USD": usd("10.00")}

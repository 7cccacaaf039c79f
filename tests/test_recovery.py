"""Recovery on its schedule (R-2.5) and many recovery workers at once (R-2.6)."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from refundkit import RefundKit, RefundStatus
from refundkit._kit import DEFAULT_RETRY_SCHEDULE
from refundkit._schedule import format_schedule, parse_schedule
from refundkit.gateways.sandbox import SandboxGateway

from ._workers import janitor_worker
from .conftest import T0, FakeClock, open_kit, record, usd

CTX = multiprocessing.get_context("spawn")


class CountingLookups:
    """Counts the sandbox's lookups and refund calls in this process."""

    def __init__(self, gw: SandboxGateway) -> None:
        self.lookups = 0
        self.refunds = 0
        lookup, refund = gw.lookup_refund, gw.refund

        def counted_lookup(request: Any) -> Any:
            self.lookups += 1
            return lookup(request)

        def counted_refund(request: Any) -> Any:
            self.refunds += 1
            return refund(request)

        gw.lookup_refund = counted_lookup  # type: ignore[method-assign]
        gw.refund = counted_refund  # type: ignore[method-assign]


def test_r2_5_the_schedule_then_manual_review(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock
) -> None:
    """R-2.5 with a frozen clock: 15s, 1m, 3m, 1h, then daily x5; one lookup per attempt, no
    refund ever created; nothing happens before an attempt is due; then manual_review."""
    kill_bill = (
        timedelta(seconds=15), timedelta(minutes=1), timedelta(minutes=3), timedelta(hours=1),
        *(timedelta(days=1),) * 5,
    )  # fmt: skip
    assert kill_bill == DEFAULT_RETRY_SCHEDULE
    record(kit)
    clock.advance(hours=25)  # the payment is old; its refund's key is soon outside the window
    refund = kit.refund("pay_1", usd("10.95")).id  # .95: timeout before applying → unknown
    assert kit.get_refund(refund).status is RefundStatus.UNKNOWN
    clock.advance(days=2)  # past the sandbox's 24h idempotency window: lookups only
    calls = CountingLookups(sandbox)
    assert kit.recover().still_unknown  # the first attempt is long due
    assert (calls.lookups, calls.refunds) == (1, 0)
    for wait in DEFAULT_RETRY_SCHEDULE[1:]:
        clock.advance(seconds=wait.total_seconds() - 1)
        kit.recover()  # one second early: not due
        clock.advance(seconds=1)
        before = calls.lookups
        report = kit.recover()
        assert calls.lookups == before + 1
        if report.manual_review:
            break
    assert calls.refunds == 0
    assert calls.lookups == len(DEFAULT_RETRY_SCHEDULE)
    final = kit.get_refund(refund)
    assert final.status is RefundStatus.MANUAL_REVIEW
    assert final.attempts == len(DEFAULT_RETRY_SCHEDULE)
    assert sandbox.refund_count("sbx_ch_pay_1") == 0
    assert kit.payment("pay_1").held == usd("10.95")  # still counted against the cap
    clock.advance(days=30)
    kit.recover()
    assert calls.lookups == len(DEFAULT_RETRY_SCHEDULE)  # manual_review is left to a person


def test_a_configured_schedule(db_url: str, sandbox_path: str, clock: FakeClock) -> None:
    """``retry_schedule`` replaces the default: two attempts, then manual_review."""
    kit = open_kit(db_url, sandbox_path, clock=clock, retry_schedule=[timedelta(minutes=5)] * 2)
    record(kit)
    clock.advance(days=2)
    rid = kit.refund("pay_1", usd("1.95")).id
    clock.advance(days=2)  # outside the key's window
    assert kit.recover().still_unknown
    [(refund, due)] = kit.recovery_due()
    assert (refund.id, due) == (rid, clock.now + timedelta(minutes=5))
    clock.advance(minutes=5)
    assert [r.id for r in kit.recover().manual_review] == [rid]
    assert kit.recovery_due() == []
    kit.close()


def test_r2_5_a_refund_still_pending_at_the_gateway_reaches_manual_review(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock
) -> None:
    """R-2.5 for pending refunds: every lookup that finds the refund still pending is one
    attempt of the schedule, so it reaches manual_review instead of being looked up forever;
    it stays held, and the gateway's late webhook still settles it."""
    record(kit)
    rid = kit.refund("pay_1", usd("1.92")).id  # .92: pending, then succeeded when settled
    assert kit.get_refund(rid).status is RefundStatus.PENDING
    calls = CountingLookups(sandbox)
    for attempt in range(1, len(DEFAULT_RETRY_SCHEDULE) + 1):
        [(refund, due)] = kit.recovery_due()
        assert (refund.id, refund.attempts) == (rid, attempt - 1)
        clock.advance(seconds=(due - clock.now).total_seconds() + 1)
        kit.recover()
        assert calls.lookups == attempt  # one lookup per attempt, never a second refund
    assert calls.refunds == 0
    final = kit.get_refund(rid)
    assert final.status is RefundStatus.MANUAL_REVIEW
    assert final.failure_message == "still pending at the gateway"
    assert kit.payment("pay_1").held == usd("1.92")
    assert kit.recovery_due() == []
    [(headers, body)] = sandbox.settle_pending()
    [settled] = kit.handle_gateway_webhook("sandbox", headers, body)
    assert settled.status is RefundStatus.SUCCEEDED
    assert kit.payment("pay_1").refunded == usd("1.92")


JANITORS = 8
UNKNOWN = 200


def janitors(
    db_url: str, sandbox_path: str, log_dir: Path, rounds: int, *, naive: bool
) -> list[Counter[str]]:
    """200 unknown refunds, then ``rounds`` passes of 8 janitor processes started together;
    the lookups each refund got in each round."""
    kit = open_kit(db_url, sandbox_path, clock=FakeClock(T0))
    for i in range(UNKNOWN):
        record(kit, f"pay_{i}", "5.00")
        kit.refund(f"pay_{i}", usd("1.95"), idempotency_key=f"u{i}")  # timeout before effect
    assert len(kit.refunds(status="unknown")) == UNKNOWN
    kit.close()
    at = T0 + timedelta(days=2)  # outside the sandbox's key window: no resend, lookups only
    per_round = []
    for r in range(rounds):
        round_dir = log_dir / f"round{r}"
        round_dir.mkdir()
        barrier = CTX.Barrier(JANITORS)
        out = CTX.Queue()
        args = (db_url, sandbox_path, str(round_dir), at, naive, barrier, out)
        procs = [CTX.Process(target=janitor_worker, args=args) for _ in range(JANITORS)]
        for p in procs:
            p.start()
        for _ in procs:
            out.get(timeout=240)
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        lines = [line for f in round_dir.iterdir() for line in f.read_text().splitlines()]
        per_round.append(Counter(lines))
        at += DEFAULT_RETRY_SCHEDULE[r + 1]
    return per_round


@pytest.mark.slow
@pytest.mark.postgresql_only  # SKIP LOCKED claiming is PostgreSQL's; SQLite runs claims in turn
def test_r2_6_eight_janitors_look_each_refund_up_once_per_attempt(
    db_url: str, sandbox_path: str, tmp_path: Path
) -> None:
    """R-2.6: 8 janitor processes on PostgreSQL, 200 unknown refunds, two scheduled attempts:
    every refund is looked up exactly once per attempt, and none is sent again."""
    rounds = janitors(db_url, sandbox_path, tmp_path, 2, naive=False)
    kit = open_kit(db_url, sandbox_path)
    ids = {r.id for r in kit.refunds()}
    for seen in rounds:
        assert seen == Counter({f"lookup {rid}": 1 for rid in ids})
    assert {r.attempts for r in kit.refunds()} == {2}
    kit.close()


@pytest.mark.slow
@pytest.mark.postgresql_only
def test_r2_6_the_janitor_test_catches_recovery_without_a_claim(
    db_url: str, sandbox_path: str, tmp_path: Path
) -> None:
    """R-2.6 mutation: janitors that only list the unknown refunds look some up twice."""
    [seen] = janitors(db_url, sandbox_path, tmp_path, 1, naive=True)
    assert max(seen.values()) > 1


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("15s,1m,3m,1h,1d*5", DEFAULT_RETRY_SCHEDULE),
        ("90s", (timedelta(seconds=90),)),
        (" 2h , 2h ", (timedelta(hours=2),) * 2),
    ],
)
def test_schedules_read_and_written_back(text: str, steps: tuple[timedelta, ...]) -> None:
    assert parse_schedule(text) == steps
    assert parse_schedule(format_schedule(steps)) == steps
    assert format_schedule(DEFAULT_RETRY_SCHEDULE) == "15s,1m,3m,1h,1d*5"

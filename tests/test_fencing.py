"""Fencing (DESIGN "Fencing", issue 14), R-2.4: only a refund that certainly never reached the
gateway is released, so a refund that recovery released is never sent afterwards, and
recovery judges a stalled worker by the database's clock, never by its own.

Two kits on one store and one sandbox stand for two processes, a worker and a recovery
process. The worker pauses at a named checkpoint (threads and events, no sleeps) while
recovery runs, then goes on. Each round uses a payment of its own; after each, no refund may
be released locally and made at the gateway ("released and sent").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from threading import Event
from typing import Any, cast

import attrs
import pytest

from refundkit import Refund, RefundKit, RefundkitError, RefundReleased, RefundStatus
from refundkit._engine import recovery, refunds
from refundkit.gateways.sandbox import SandboxGateway

from ._workers import unfenced_submit
from .conftest import open_kit, record, usd

S = RefundStatus
#: Rounds of each race in CI (issue 14): every round is a few milliseconds.
ROUNDS = 200
#: How long one side waits for the other before the round fails (never reached when it works).
WAIT = 20.0

Outcome = Refund | RefundkitError


@attrs.define
class Pair:
    """A worker and a recovery process on one store and one sandbox."""

    worker: RefundKit
    recovery: RefundKit
    pool: ThreadPoolExecutor

    @property
    def sandbox(self) -> SandboxGateway:
        return cast(SandboxGateway, self.worker.gateway("sandbox"))


@pytest.fixture
def pairs(db_url: str, sandbox_path: str) -> Iterator[Callable[..., Pair]]:
    """Open a worker kit (the real clocks) and a recovery kit with ``recovery_options``."""
    opened: list[Pair] = []

    def open_pair(**recovery_options: Any) -> Pair:
        worker = open_kit(db_url, sandbox_path, retry_backoff=0)
        rec = open_kit(db_url, sandbox_path, retry_backoff=0, **recovery_options)
        opened.append(Pair(worker, rec, ThreadPoolExecutor(max_workers=1)))
        return opened[-1]

    yield open_pair
    for pair in opened:
        pair.pool.shutdown()
        pair.worker.close()
        pair.recovery.close()


def wait(event: Event) -> None:
    assert event.wait(WAIT), "the other side never got there"


def stall(arrived: Event, go_on: Event) -> Callable[[], None]:
    """A pause at a checkpoint: say it is there, then wait to be let go on."""

    def pause() -> None:
        arrived.set()
        wait(go_on)

    return pause


def pause_at(kit: RefundKit, points: dict[str, Callable[[], None]]) -> None:
    def checkpoint(name: str) -> None:
        action = points.get(name)
        if action is not None:
            action()

    kit.runtime.checkpoint = checkpoint


def outcome(call: Future[Refund]) -> Outcome:
    try:
        return call.result(timeout=WAIT)
    except RefundkitError as exc:
        return exc


def released_and_sent(pair: Pair, payment_id: str) -> list[str]:
    """Refunds released locally (failed, reversed) that the gateway made all the same."""
    made = {
        row["refund_id"]
        for row in pair.sandbox.refunds(f"sbx_ch_{payment_id}")
        if row["status"] in ("succeeded", "pending")
    }
    return [
        r.id for r in pair.worker.refunds(payment_id) if r.id in made and not r.status.holds_balance
    ]


def check_books(pair: Pair, payment_id: str) -> None:
    """Nothing released and sent; nothing left in flight; local status = the gateway's."""
    assert released_and_sent(pair, payment_id) == []
    payment = pair.worker.payment(payment_id)
    assert payment.held == payment.refunded
    rows = {row["refund_id"]: row["status"] for row in pair.sandbox.refunds(f"sbx_ch_{payment_id}")}
    for r in pair.worker.refunds(payment_id):
        assert rows.get(r.id, "failed") == r.status.value


def stalled_while_recovering(pair: Pair, i: int) -> tuple[str, Outcome]:
    """The worker pauses after its reserve commit while recovery runs a scheduled pass, then
    goes on: (the payment, what its caller got)."""
    pid = f"pay_{i}"
    record(pair.worker, pid, "5.00")
    reserved, resume = Event(), Event()
    pause_at(pair.worker, {"reserved": stall(reserved, resume)})
    call = pair.pool.submit(pair.worker.refund, pid, usd("1.00"), idempotency_key=f"stall-{i}")
    wait(reserved)
    pair.recovery.recover()
    resume.set()
    return pid, outcome(call)


def release_racing_the_mark(
    pair: Pair, i: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Outcome]:
    """Recovery reads the refund ``reserved`` and looks it up (nothing there yet); meanwhile
    the worker marks it submitted and waits, about to send, until recovery has decided."""
    pid = f"pay_{i}"
    record(pair.worker, pid, "5.00")
    reserved, looking, marked, decided = Event(), Event(), Event(), Event()
    pause_at(
        pair.worker, {"reserved": stall(reserved, looking), "submitted": stall(marked, decided)}
    )
    gw = pair.recovery.gateway("sandbox")
    lookup = gw.lookup_refund

    def slow_lookup(request: Any) -> Any:
        looking.set()
        wait(marked)
        return lookup(request)

    with monkeypatch.context() as m:
        m.setattr(gw, "lookup_refund", slow_lookup)
        call = pair.pool.submit(pair.worker.refund, pid, usd("1.00"), idempotency_key=f"mark-{i}")
        wait(reserved)
        pair.recovery.recover()
    assert looking.is_set(), "recovery must have looked the reserved refund up"
    decided.set()
    return pid, outcome(call)


def test_r2_4_a_stalled_worker_never_sends_a_refund_recovery_released(
    pairs: Callable[..., Pair],
) -> None:
    """The worker pauses after its reserve commit longer than recovery's in-flight timeout
    (here 0 s: any pause), recovery releases the refund (`not_submitted`), the worker goes
    on: it finds its refund moved, never calls the gateway, and its caller gets
    ``RefundReleased`` with the released refund; the same key replays that. 200 rounds."""
    pair = pairs(in_flight_timeout=timedelta(0))
    for i in range(ROUNDS):
        pid, got = stalled_while_recovering(pair, i)
        assert isinstance(got, RefundReleased), got
        assert got.refund is not None
        assert (got.refund.status, got.refund.failure_code) == (S.FAILED, "not_submitted")
        assert pair.sandbox.refund_count(f"sbx_ch_{pid}") == 0
        check_books(pair, pid)
        with pytest.raises(RefundReleased):
            pair.worker.refund(pid, usd("1.00"), idempotency_key=f"stall-{i}")
        assert pair.sandbox.refund_count(f"sbx_ch_{pid}") == 0


def test_r2_4_recovery_never_releases_a_refund_its_worker_marked_submitted(
    pairs: Callable[..., Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery's release is a move from ``reserved`` only: a refund the worker marked
    ``submitted`` after recovery read it is not released, and the worker's send settles it.
    200 rounds."""
    pair = pairs(in_flight_timeout=timedelta(0))
    for i in range(ROUNDS):
        pid, got = release_racing_the_mark(pair, i, monkeypatch)
        assert isinstance(got, Refund), got
        assert got.status is S.SUCCEEDED
        check_books(pair, pid)


def test_r2_4_a_recovery_whose_clock_runs_ahead_releases_nothing(
    pairs: Callable[..., Pair],
) -> None:
    """A recovery process whose own clock is an hour ahead (the default 2-minute in-flight
    timeout): by the database's clock the paused worker's refund is fresh, so recovery
    leaves it alone and the worker's refund succeeds."""
    pair = pairs(clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    for i in range(20):
        pid, got = stalled_while_recovering(pair, i)
        assert isinstance(got, Refund), got
        assert got.status is S.SUCCEEDED
        assert pair.sandbox.refund_count(f"sbx_ch_{pid}") == 1
        check_books(pair, pid)


# --- the tests can see what they guard against (mutations, as) -----------------------


def test_the_stall_test_catches_a_worker_that_sends_whatever_its_mark_says(
    pairs: Callable[..., Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the fence (the mark's outcome ignored) the released refund is sent anyway."""
    monkeypatch.setattr(refunds, "submit", unfenced_submit)
    pair = pairs(in_flight_timeout=timedelta(0))
    for i in range(3):
        pid, got = stalled_while_recovering(pair, i)
        assert isinstance(got, Refund)
        assert released_and_sent(pair, pid) == [got.id]


def test_the_race_test_catches_a_release_from_submitted(
    pairs: Callable[..., Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With recovery's release allowed from any in-flight state (``TRANSITIONS[FAILED]``) the
    refund being sent is released, then made by the gateway."""
    monkeypatch.setattr(recovery, "NEVER_SENT", attrs.evolve(recovery.NEVER_SENT, froms=None))
    pair = pairs(in_flight_timeout=timedelta(0))
    for i in range(3):
        pid, got = release_racing_the_mark(pair, i, monkeypatch)
        assert isinstance(got, Refund)
        assert released_and_sent(pair, pid) == [got.id]


def test_the_skew_test_catches_recovery_judging_by_its_own_clock(
    pairs: Callable[..., Pair],
) -> None:
    """Recovery that judges staleness by its own clock, an hour ahead, releases the refund of
    a worker that is merely paused (the fence then keeps it from being sent)."""
    pair = pairs(clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    pair.recovery.runtime.db_clock = pair.recovery.runtime.clock
    pid, got = stalled_while_recovering(pair, 0)
    assert isinstance(got, RefundReleased)
    assert pair.sandbox.refund_count(f"sbx_ch_{pid}") == 0

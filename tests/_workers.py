"""Code that runs in child processes (spawned, so it must be importable, not nested in tests)."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from refundkit import InsufficientRefundableBalance, Money, RefundKit, RefundNotAllowed
from refundkit import _store as st
from refundkit._kit import _Ask, _new_refund
from refundkit._model import Refund
from refundkit._policy import check_amount


def naive_reserve(self: RefundKit, ask: _Ask, *, ignore_unknown: bool = False) -> Refund | bool:
    """The check-then-insert every hand-written refund path starts as (R-3.2 mutation): the
    quote is read in one transaction and the refund written in another, so two workers can
    both pass the check. Used only to prove the race test can see a race (R-7.6)."""
    payment_id, amount = ask.payment_id, ask.amount
    q = self.quote(payment_id)
    assert amount is not None
    check_amount(q, amount)
    payment = self.payment(payment_id)
    refund = _new_refund(payment, amount, ask.reason, ask.actor, ask.key, self.clock())
    with self.store.write() as tx:
        st.insert_refund(tx, refund, ask.fingerprint, void=False)
        # Lost update: sets the held total from what was read, not from what it is now.
        held = payment.held.amount if payment.held else 0
        current = st.get_payment(tx, payment_id)
        assert current is not None
        assert current.held is not None
        st.add_held(tx, payment_id, held + amount.amount - current.held.amount)
    return self._submit(refund, payment)


def race_worker(
    db_url: str, payment_id: str, threads: int, barrier: Any, naive: bool, out: Any
) -> None:
    """One process of the R-3.1 race: ``threads`` concurrent refunds of 1.00 after a barrier."""
    kit = RefundKit.open(db_url, autoload=False, retry_backoff=0)
    if naive:
        kit._reserve = naive_reserve.__get__(kit)  # type: ignore[method-assign]
    counts = {"succeeded": 0, "refused": 0, "other": 0}
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            kit.refund(payment_id, Money(100, "USD"), idempotency_key=f"{os.getpid()}-{i}")
            outcome = "succeeded"
        except (InsufficientRefundableBalance, RefundNotAllowed):
            outcome = "refused"
        except Exception:
            outcome = "other"
        with lock:
            counts[outcome] += 1

    barrier.wait()
    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    kit.close()
    out.put(counts)


def crash_worker(db_url: str, payment_id: str, point: str) -> None:
    """Refund, and die with os._exit at ``point``: no finally, no atexit (R-7.3)."""
    kit = RefundKit.open(db_url, autoload=False)

    def checkpoint(name: str) -> None:
        if name == point:
            os._exit(137)

    kit._checkpoint = checkpoint
    kit.refund(payment_id, Money(1000, "USD"), idempotency_key="crash-test")
    os._exit(0)


def recover_worker(db_url: str, minutes_later: int, out: Any) -> None:
    """A fresh process, later: recovery with a clock moved forward."""
    later = datetime.now(UTC) + timedelta(minutes=minutes_later)
    kit = RefundKit.open(db_url, autoload=False, clock=lambda: later)
    report = kit.recover()
    out.put(report.to_dict())
    kit.close()

"""Code that runs in child processes (spawned, so it must be importable, not nested in tests)."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from refundkit import (
    InsufficientRefundableBalance,
    Money,
    RefundKit,
    RefundNotAllowed,
    RefundStatus,
    hookimpl,
)
from refundkit import _store as st
from refundkit._engine import Runtime, outcomes, payments, recovery, refunds
from refundkit._engine.gateways import refund_request
from refundkit._model import Refund
from refundkit._policy import check_amount


def naive_reserve(
    rt: Runtime, ask: refunds.Ask, *, ignore_unknown: bool = False, refreshed: bool = False
) -> refunds.Reserved:
    """The check-then-insert every hand-written refund path starts as (R-3.2 mutation): the
    quote is read in one transaction and the refund written in another, so two workers can
    both pass the check. Used only to prove the race test can see a race (R-7.6)."""
    payment_id, amount = ask.payment_id, ask.amount
    q = payments.quote(rt, payment_id)
    assert amount is not None
    check_amount(q, amount)
    payment = payments.get(rt, payment_id)
    refund = refunds.new_refund(payment, amount, ask.reason, ask.actor, ask.key, rt.clock())
    with rt.store.write() as tx:
        st.insert_refund(tx, refund, ask.fingerprint, void=False)
        # Lost update: sets the held total from what was read, not from what it is now.
        held = payment.held.amount if payment.held else 0
        current = st.get_payment(tx, payment_id)
        assert current is not None
        assert current.held is not None
        st.add_held(tx, payment_id, held + amount.amount - current.held.amount)
    return refunds.Reservation(refund, payment, void=False, keep_key=False)


def unfenced_submit(rt: Runtime, reservation: refunds.Reservation) -> Refund:
    """The submit every refund path had before fencing (mutation): the ``submitted`` mark's
    outcome is ignored, so a worker whose refund recovery released while it stalled sends it
    anyway. Used only to prove the stall test can see a released refund being sent."""
    refund, payment = reservation.refund, reservation.payment
    with rt.store.write() as tx:
        submitted = {"status": "submitted", "updated_at": rt.db_stamp()}
        st.transition_refund(tx, refund.id, ("reserved",), submitted)  # result ignored
    refund = attrs.evolve(refund, status=RefundStatus.SUBMITTED)
    rt.checkpoint("submitted")
    gw = rt.gateway(payment.gateway)
    result = refunds.call_gateway(rt, gw, refund_request(refund, payment, reservation.void))
    rt.checkpoint("gateway_returned")
    return outcomes.apply_result(rt, refund, payment, result)


def open_worker_kit(db_url: str, sandbox_path: str, **options: Any) -> RefundKit:
    """A worker's own kit (own engine and pool), sharing the sandbox's state file."""
    return RefundKit.open(
        db_url, autoload=False, gateways={"sandbox": {"path": sandbox_path}}, **options
    )


def race_worker(
    db_url: str,
    sandbox_path: str,
    payment_id: str,
    threads: int,
    per_thread: int,
    naive: bool,
    barrier: Any,
    out: Any,
) -> None:
    """One process of the R-3.1 race: ``threads`` threads after a barrier, each making
    ``per_thread`` refunds of 1.00 one after another."""
    kit = open_worker_kit(db_url, sandbox_path, retry_backoff=0)
    if naive:
        refunds.reserve = naive_reserve  # this spawned process only
    counts = {"succeeded": 0, "refused": 0, "other": 0}
    lock = threading.Lock()

    def one(i: int) -> None:
        for j in range(per_thread):
            try:
                key = f"{os.getpid()}-{i}-{j}"
                kit.refund(payment_id, Money(100, "USD"), idempotency_key=key)
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


def two_caps_worker(
    db_url: str, sandbox_path: str, invoice_id: str, payment_ids: list[str], n: int,
    barrier: Any, out: Any,
) -> None:  # fmt: skip
    """R-3.5: refunds on an invoice's payments and credits from the whole invoice at once,
    interleaved, so one process takes payment locks alone and the invoice's locks together."""
    kit = open_worker_kit(db_url, sandbox_path, retry_backoff=0)
    counts = {"refunded": 0, "credited": 0, "refused": 0, "other": 0}
    errors: list[str] = []
    barrier.wait()
    for i in range(n):
        try:
            if i % 2:
                kit.issue_credit(invoice_id, Money(100, "USD"))
                counts["credited"] += 100
            else:
                payment_id = payment_ids[(i // 2) % len(payment_ids)]
                kit.refund(payment_id, Money(100, "USD"), idempotency_key=f"{os.getpid()}-{i}")
                counts["refunded"] += 100
        except (InsufficientRefundableBalance, RefundNotAllowed):
            counts["refused"] += 1
        except Exception as exc:  # a deadlock (40P01) or an IntegrityError would land here
            counts["other"] += 1
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    kit.close()
    out.put((counts, errors))


class DeliveryLog:
    """An event listener that appends each delivered event id to a file (one per line), so
    deliveries made by a process that was then killed are still counted."""

    def __init__(self, path: str) -> None:
        self.path = path

    @hookimpl
    def refundkit_on_event(self, event: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(event["id"] + "\n")
            f.flush()
            os.fsync(f.fileno())


def crash_worker(
    db_url: str, sandbox_path: str, log_path: str, payment_id: str, point: str
) -> None:
    """Refund, and die with os._exit at ``point``: no finally, no atexit (R-7.3)."""
    kit = open_worker_kit(db_url, sandbox_path, plugins=[DeliveryLog(log_path)])

    def checkpoint(name: str) -> None:
        if name == point:
            os._exit(137)

    kit.runtime.checkpoint = checkpoint
    kit.refund(payment_id, Money(1000, "USD"), idempotency_key="crash-test")
    os._exit(0)


def recover_worker(
    db_url: str, sandbox_path: str, log_path: str, minutes_later: int, out: Any
) -> None:
    """A fresh process, later: recovery with a clock moved forward."""
    later = datetime.now(UTC) + timedelta(minutes=minutes_later)
    kit = open_worker_kit(
        db_url, sandbox_path, plugins=[DeliveryLog(log_path)], clock=lambda: later
    )
    kit.runtime.db_clock = lambda: later  # later for the database too: the worker is dead
    report = kit.recover()
    out.put(report.to_dict())
    kit.close()


def naive_claim(rt: Runtime, payment_id: str | None, now: datetime) -> list[Refund]:
    """Recovery without a claim (R-2.6 mutation): every worker reads the same unknown refunds
    (the list recovery used to scan) and looks each one up."""
    with rt.store.connect() as conn:
        refunds = st.list_refunds(conn, payment_id=payment_id, statuses=("unknown",))
    return refunds


def janitor_worker(
    db_url: str, sandbox_path: str, log_dir: str, at: datetime, naive: bool,
    barrier: Any, out: Any,
) -> None:  # fmt: skip
    """One recovery worker at time ``at``: logs every gateway lookup it makes, one line each."""
    kit = open_worker_kit(db_url, sandbox_path, clock=lambda: at)
    if naive:
        recovery.claim_due = naive_claim  # this spawned process only
    gw = kit.gateway("sandbox")
    lookup = gw.lookup_refund
    sent = gw.refund
    log = open(os.path.join(log_dir, f"lookups-{os.getpid()}.log"), "a", encoding="utf-8")  # noqa: SIM115

    def logged_lookup(request: Any) -> Any:
        log.write(f"lookup {request.refund_id}\n")
        return lookup(request)

    def logged_refund(request: Any) -> Any:
        log.write(f"refund {request.refund_id}\n")
        return sent(request)

    gw.lookup_refund = logged_lookup  # type: ignore[method-assign]
    gw.refund = logged_refund  # type: ignore[method-assign]
    barrier.wait()
    report = kit.recover()
    log.close()
    kit.close()
    out.put(len(report.still_unknown) + len(report.manual_review) + len(report.resolved))

"""Child-process code for the balance races (spawned, so importable, not nested in tests)."""

from __future__ import annotations

import os
import threading
from typing import Any

from refundkit import InsufficientBalance, Money, RefundkitError

from ._workers import open_worker_kit


def spend_worker(
    db_url: str,
    sandbox_path: str,
    customer_id: str,
    payment_ids: list[str],
    threads: int,
    per_thread: int,
    barrier: Any,
    out: Any,
) -> None:
    """One process of the balance race: each thread alternates spending 3.00 of the balance
    and refunding 3.00 of a top-up (so the same lots are drained both ways at once).

    Reports what was spent and refunded, typed refusals by code, and anything untyped."""
    kit = open_worker_kit(db_url, sandbox_path, retry_backoff=0)
    counts: dict[str, Any] = {"redeemed": 0, "refunded": 0, "refused": {}, "untyped": []}
    lock = threading.Lock()
    amount = Money(300, "USD")

    def one(i: int) -> None:
        for j in range(per_thread):
            try:
                if (i + j) % 2:
                    kit.redeem_balance(customer_id, amount, reference=f"inv_{os.getpid()}_{i}_{j}")
                    what = "redeemed"
                else:
                    pid = payment_ids[(i + j) % len(payment_ids)]
                    kit.refund(pid, amount, idempotency_key=f"{os.getpid()}-{i}-{j}")
                    what = "refunded"
                with lock:
                    counts[what] += amount.amount
            except (InsufficientBalance, RefundkitError) as exc:
                with lock:
                    counts["refused"][exc.code] = counts["refused"].get(exc.code, 0) + 1
            except Exception as exc:  # a raw CheckViolation / IntegrityError lands here
                with lock:
                    counts["untyped"].append(f"{type(exc).__name__}: {exc}"[:200])

    barrier.wait()
    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    kit.close()
    out.put(counts)

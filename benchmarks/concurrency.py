"""Refunds per second with 1, 2, 4 and 8 worker processes on PostgreSQL, and over-refunds.

Two workloads, each in a fresh database of its own (created and dropped here):

* ``distinct``: every worker refunds its own payments (1.00 off a 5.00 payment, 5 times
  each): no two workers ever wait on the same row lock;
* ``hot``: every worker refunds 1.00 at a time from ONE payment whose cap lets only part of
  the attempts through: they all queue on that payment's row lock (``SELECT ... FOR UPDATE``),
  and the refused attempts are counted as well.

Each worker process has its own kit (engine and connections) and the sandbox gateway on a
shared state file. After a run, over-refunds are counted from the database and from the
sandbox: refunded beyond a payment's amount, or gateway refunds beyond what the store holds
as succeeded. Both must be 0. Not a test:

    REFUNDKIT_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        uv run python benchmarks/concurrency.py -n 200
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from refundkit import (
    Destination,
    InsufficientRefundableBalance,
    Money,
    RefundKit,
    RefundNotAllowed,
)
from refundkit.gateways.sandbox import SandboxGateway

CTX = multiprocessing.get_context("spawn")


def open_kit(url: str, sandbox: str) -> RefundKit:
    return RefundKit.open(
        url, autoload=False, retry_backoff=0, gateways={"sandbox": {"path": sandbox}}
    )


def worker(url: str, sandbox: str, payments: list[str], n: int, barrier: Any, out: Any) -> None:
    kit = open_kit(url, sandbox)
    ok = refused = 0
    barrier.wait()
    start = time.perf_counter()
    for i in range(n):
        try:
            kit.refund(payments[i % len(payments)], Money(100, "USD"))
            ok += 1
        except (InsufficientRefundableBalance, RefundNotAllowed):
            refused += 1
    out.put((ok, refused, time.perf_counter() - start))
    kit.close()


def run(admin: str, workers: int, n: int, hot: bool) -> dict[str, Any]:
    name = f"refundkit_bench_{secrets.token_hex(4)}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    tmp = tempfile.mkdtemp()
    sandbox = str(Path(tmp) / "sandbox.db")
    try:
        kit = open_kit(url, sandbox)
        total = workers * n
        if hot:
            # The cap admits half the attempts: the rest are refused under the same lock.
            amounts = {"hot": Money(total * 50, "USD")}
            plans = [["hot"]] * workers
        else:
            amounts = {f"p{w}_{j}": Money(500, "USD") for w in range(workers) for j in range(n)}
            plans = [[f"p{w}_{j}" for j in range(n // 5 + 1)] for w in range(workers)]
        for pid, amount in amounts.items():
            kit.record_payment(
                id=pid, customer_id="cus", amount=amount, gateway="sandbox",
                gateway_payment_id=f"ch_{pid}", destination=Destination.INVOICE,
            )  # fmt: skip
        barrier = CTX.Barrier(workers)
        out = CTX.Queue()
        procs = [
            CTX.Process(target=worker, args=(url, sandbox, plans[w], n, barrier, out))
            for w in range(workers)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        ok = sum(r[0] for r in results)
        refused = sum(r[1] for r in results)
        seconds = max(r[2] for r in results)
        gw = kit.gateway("sandbox")
        assert isinstance(gw, SandboxGateway)
        over = 0
        for pid, amount in amounts.items():
            payment = kit.payment(pid)
            succeeded = len(kit.refunds(pid, status="succeeded"))
            refunded = payment.refunded.amount if payment.refunded else 0
            over += max(0, refunded - amount.amount)
            over += max(0, gw.refund_count(f"ch_{pid}") - succeeded)
        kit.close()
        return {"ok": ok, "refused": refused, "seconds": seconds, "over": over}
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=200, help="refund attempts per worker")
    parser.add_argument("--workers", default="1,2,4,8")
    args = parser.parse_args()
    admin = os.environ.get(
        "REFUNDKIT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    print(f"{'workload':<9} {'workers':>7} {'attempts':>8} {'refunded':>8} {'refused':>7} "
          f"{'refunds/s':>9} {'attempts/s':>10} {'over-refunds':>12}")  # fmt: skip
    for hot in (False, True):
        for w in (int(x) for x in args.workers.split(",")):
            r = run(admin, w, args.n, hot)
            attempts = r["ok"] + r["refused"]
            print(
                f"{'hot' if hot else 'distinct':<9} {w:>7} {attempts:>8} {r['ok']:>8} "
                f"{r['refused']:>7} {r['ok'] / r['seconds']:>9.0f} "
                f"{attempts / r['seconds']:>10.0f} {r['over']:>12}"
            )


if __name__ == "__main__":
    main()

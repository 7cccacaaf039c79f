"""How much does a refund through refundkit cost over the durable writes it cannot avoid?

Runs N refunds through the kit with the sandbox gateway on a file SQLite store and compares
the median per refund with two floors, each the same number of pairs of durable SQLite
transactions (one insert + one update each; WAL, synchronous=FULL, BEGIN IMMEDIATE, the
stdlib driver, the kit's own settings):

* ``toy``: a four-column table with only a primary key;
* ``schema``: refundkit's own ``refunds`` table, with the constraints every refund must pass
  (the idempotency-key and gateway-refund-id uniques, the payment index, the in-flight index).
  It is the cheapest way to durably record a refund and its outcome in this store.

Prints both medians per refund and the ratios. Not a test:
``uv run python benchmarks/refund_overhead.py -n 1000``.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from refundkit import Destination, Money, RefundKit

Pair = Callable[[sqlite3.Connection, int], None]


def durable(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def toy_pair(conn: sqlite3.Connection, i: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO refunds VALUES (?, 'pay', 100, 'reserved')", (f"rf_{i}",))
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE refunds SET status = 'succeeded' WHERE id = ?", (f"rf_{i}",))
    conn.execute("COMMIT")


def schema_pair(conn: sqlite3.Connection, i: int) -> None:
    rid = f"rf_{i:024d}"
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO refunds (id, payment_id, gateway, currency, amount, status,"
        " idempotency_key, request_fingerprint, gateway_idempotency_key, created_at,"
        " updated_at) VALUES (?, 'pay_1', 'sandbox', 'USD', 100, 'reserved', ?, 'f', ?,"
        " '2026-11-22T10:00:00.000000Z', '2026-11-22T10:00:00.000000Z')",
        (rid, f"bench-{i}", f"refundkit-{rid}"),
    )
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "UPDATE refunds SET status = 'succeeded', gateway_refund_id = ?,"
        " updated_at = '2026-11-22T10:00:01.000000Z' WHERE id = ?",
        (f"sbx_re_{i}", rid),
    )
    conn.execute("COMMIT")


def floor(conn: sqlite3.Connection, pair: Pair, n: int) -> list[float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        pair(conn, i)
        times.append(time.perf_counter() - t0)
    conn.close()
    return times


def toy_floor(path: Path, n: int) -> list[float]:
    conn = durable(path)
    conn.execute(
        "CREATE TABLE refunds (id TEXT PRIMARY KEY, payment_id TEXT NOT NULL,"
        " amount INTEGER NOT NULL, status TEXT NOT NULL) STRICT"
    )
    return floor(conn, toy_pair, n)


def schema_floor(path: Path, n: int) -> list[float]:
    kit = RefundKit.open(f"sqlite:///{path}", autoload=False)  # creates the real schema
    record(kit, 1)
    kit.close()
    conn = durable(path)
    conn.execute("PRAGMA foreign_keys=ON")
    return floor(conn, schema_pair, n)


def record(kit: RefundKit, payments: int) -> None:
    for p in range(payments):
        kit.record_payment(
            id=f"pay_{p + 1}",
            customer_id="cus_bench",
            amount=Money(100 * 100, "USD"),
            gateway="sandbox",
            gateway_payment_id=f"sbx_ch_{p + 1}",
            destination=Destination.INVOICE,
        )


def kit_refunds(path: Path, n: int) -> list[float]:
    kit = RefundKit.open(f"sqlite:///{path}", autoload=False)
    record(kit, (n + 99) // 100)
    one = Money(100, "USD")
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        kit.refund(f"pay_{i // 100 + 1}", one, reason="benchmark", idempotency_key=f"bench-{i}")
        times.append(time.perf_counter() - t0)
    kit.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1000, help="refunds (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        # Warm up every path once so imports and caches do not count.
        toy_floor(d / "w1.db", 50)
        schema_floor(d / "w2.db", 50)
        kit_refunds(d / "w3.db", 50)
        toy = statistics.median(toy_floor(d / "toy.db", args.n))
        schema = statistics.median(schema_floor(d / "schema.db", args.n))
        kit = statistics.median(kit_refunds(d / "kit.db", args.n))
    print(f"refunds:                                   {args.n}")
    print(f"floor, toy table (2 durable tx) median:    {toy * 1000:.3f} ms")
    print(f"floor, refunds table (2 durable tx):       {schema * 1000:.3f} ms")
    print(f"refundkit refund median:                   {kit * 1000:.3f} ms")
    print(f"ratio to the toy-table floor:              {kit / toy:.2f}")
    print(f"ratio to the refunds-table floor:          {kit / schema:.2f}")


if __name__ == "__main__":
    main()

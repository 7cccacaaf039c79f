"""How does ``kit.plan_refund`` grow with the number of payments a customer has?

Builds one customer with 1k, one with 10k and one with 100k payments in a file SQLite store
(a few recorded through ``kit.record_payment``, the rest bulk-inserted into ``payments`` with
the stdlib driver, in the kit's own columns and timestamp format), then times
``kit.plan_refund(customer, total, strategy=s)`` for every strategy: the median of several
runs after a warm-up. The payments are 5.00-60.00 USD, with every 50th one 100.00-300.00 USD,
captured an hour apart.

* ``covered``: a total of 120.00 USD. A few payments cover it (newest_first and oldest_first
  take four or five); one recent large payment covers it alone (fewest_refunds, single_source).
* ``no single cover``: 400.00 USD, more than any one payment. single_source refuses, naming
  the largest refundable balances; fewest_refunds falls back to largest first.

Prints the medians in ms, the growth per tenfold (10k / 1k and 100k / 10k) and which cases stay
under 100 ms at 100k. Planning writes nothing and calls no gateway, so the bulk-inserted
payments are not registered at the sandbox. Not a test:
``uv run python benchmarks/planner_scale.py``.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from refundkit import Destination, Money, RefundKit
from refundkit._planner import STRATEGIES
from refundkit._schema import to_db_time
from refundkit._store import _PAYMENT_COLUMNS

T0 = datetime(2016, 1, 1, tzinfo=UTC)
STEP = timedelta(hours=1)
RECORDED = 3  # payments recorded through the kit; the rest are bulk-inserted
COVERED = Money(12000, "USD")
NO_SINGLE_COVER = Money(40000, "USD")
TARGET_MS = 100.0

#: (label, strategy, total): every strategy on a covered total, then two with no single cover.
Case = tuple[str, str, Money]
CASES: tuple[Case, ...] = (
    *((f"{s}, covered", s, COVERED) for s in STRATEGIES),
    ("single_source, no single cover", "single_source", NO_SINGLE_COVER),
    ("fewest_refunds, no single cover", "fewest_refunds", NO_SINGLE_COVER),
)


def amount_cents(rng: random.Random, i: int) -> int:
    if i % 50 == 25:
        return rng.randint(10000, 30000)
    return rng.randint(500, 6000)


def build(kit: RefundKit, db: Path, customer: str, n: int) -> None:
    """``n`` payments for ``customer``: ``RECORDED`` through the kit, the rest in bulk."""
    rng = random.Random(n)
    amounts = [amount_cents(rng, i) for i in range(n)]
    for i in range(RECORDED):
        kit.record_payment(
            id=f"{customer}_pay_{i}",
            customer_id=customer,
            amount=Money(amounts[i], "USD"),
            gateway="sandbox",
            gateway_payment_id=f"sbx_ch_{customer}_{i}",
            destination=Destination.INVOICE,
            invoice_id=f"{customer}_inv_{i}",
            captured_at=T0 + i * STEP,
        )
    now = to_db_time(datetime.now(UTC))
    rows = [
        (
            f"{customer}_pay_{i}",  # id
            customer,  # customer_id
            "USD",  # currency
            amounts[i],  # amount
            0,  # held
            0,  # refunded
            0,  # credited
            "sandbox",  # gateway
            f"sbx_ch_{customer}_{i}",  # gateway_payment_id
            "invoice",  # destination
            f"{customer}_inv_{i}",  # invoice_id
            to_db_time(T0 + i * STEP),  # captured_at
            "visa",  # card_brand
            "4242",  # card_last4
            None,  # card_first6
            12,  # card_exp_month
            2030,  # card_exp_year
            0,  # disputed
            1,  # settled
            now,  # created_at
        )
        for i in range(RECORDED, n)
    ]
    columns = [c.strip() for c in _PAYMENT_COLUMNS.split(",")]
    assert len(columns) == len(rows[0])
    sql = f"INSERT INTO payments ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        (count,) = conn.execute(
            "SELECT count(*) FROM payments WHERE customer_id = ?", (customer,)
        ).fetchone()
    finally:
        conn.close()
    assert count == n, (count, n)


def time_case(kit: RefundKit, customer: str, case: Case, runs: int, warmup: int) -> float:
    """The median time of one ``plan_refund`` call, in ms."""
    _, strategy, total = case
    for _ in range(warmup):
        kit.plan_refund(customer, total, strategy=strategy)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        kit.plan_refund(customer, total, strategy=strategy)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def describe(kit: RefundKit, customer: str, case: Case) -> str:
    _, strategy, total = case
    plan = kit.plan_refund(customer, total, strategy=strategy)
    shown = f"{len(plan.legs)} leg{'s' if len(plan.legs) != 1 else ''}"
    if plan.unrefundable:
        shown += f", {plan.unrefundable} unrefundable"
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="payments per customer, comma-separated (default 1000,10000,100000)",
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs per case (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "planner.db"
        kit = RefundKit.open(f"sqlite:///{db}", autoload=False)
        customers = {n: f"cus_{n}" for n in sizes}
        for n, customer in customers.items():
            t0 = time.perf_counter()
            build(kit, db, customer, n)
            print(f"built {customer}: {n} payments in {time.perf_counter() - t0:.1f} s")
        ms: dict[tuple[str, int], float] = {}
        legs: dict[str, str] = {}
        for case in CASES:
            for n, customer in customers.items():
                ms[case[0], n] = time_case(kit, customer, case, args.runs, args.warmup)
            legs[case[0]] = describe(kit, customers[sizes[-1]], case)
        kit.close()

    report(sizes, ms, legs, args.runs, args.warmup)


def report(
    sizes: list[int], ms: dict[tuple[str, int], float], legs: dict[str, str], runs: int, warmup: int
) -> None:
    pairs = list(itertools.pairwise(sizes))
    width = max(len(case[0]) for case in CASES)
    print()
    print(f"plan_refund, median of {runs} runs after {warmup} warm-up, in ms")
    print(f"covered = {COVERED}, no single cover = {NO_SINGLE_COVER}")
    print()
    head = f"{'case':<{width}}" + "".join(f"{n:>10}" for n in sizes)
    head += "".join(f"{f'{b}/{a}':>14}" for a, b in pairs)
    print(head + f"   plan at {sizes[-1]}")
    for label, _, _ in CASES:
        line = f"{label:<{width}}" + "".join(f"{ms[label, n]:>10.2f}" for n in sizes)
        line += "".join(f"{ms[label, b] / ms[label, a]:>14.1f}" for a, b in pairs)
        print(line + f"   {legs[label]}")
    print()
    print("the growth columns are time ratios (a tenfold step: 10 means linear)")
    largest = sizes[-1]
    under = [c[0] for c in CASES if ms[c[0], largest] < TARGET_MS]
    over = [c[0] for c in CASES if ms[c[0], largest] >= TARGET_MS]
    print(f"under {TARGET_MS:.0f} ms at {largest} payments: {'; '.join(under) or 'none'}")
    print(f"over {TARGET_MS:.0f} ms at {largest} payments:  {'; '.join(over) or 'none'}")


if __name__ == "__main__":
    main()

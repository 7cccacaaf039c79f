"""What does webhook delivery cost per event, and what does an idle pass cost as the outbox grows?

Fills a file SQLite store's outbox with 1k and 10k events (bulk-inserted with the stdlib driver
in the kit's own format, one refund id per two events so ordering is exercised), then with one
endpoint and a sender that answers 200 at once (no network):

* ``fan-out``: creating one delivery row per event (``Deliverer.fan_out``);
* ``deliver``: one ``run_once`` pass that claims, renews, signs, "sends" and finishes every
  delivery; printed as deliveries per second (the store's write transactions dominate: claim
  per batch of 50, then a lease renewal and a finish per delivery);
* ``idle pass``: a pass with nothing to do, which every ``deliver --forever`` loop pays; it
  scans the outbox for events without a delivery, so it grows with the outbox.

Not a test: ``uv run python benchmarks/webhook_delivery.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from refundkit import RefundKit
from refundkit._delivery import Deliverer, Endpoint, Outcome
from refundkit.webhooks import new_secret

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def fill(path: Path, count: int) -> None:
    db = sqlite3.connect(path)
    rows = []
    for i in range(count):
        event_id = f"evt_{i:024x}"
        refund = {"id": f"rf_{i // 2}", "amount": 100, "currency": "USD"}
        created = "2026-11-22T10:00:00Z"
        payload = {"id": event_id, "type": "charge.refunded", "created": created,
                   "data": {"refund": refund}}  # fmt: skip
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        rows.append((event_id, "charge.refunded", created, f"rf_{i // 2}", text))
    db.executemany(
        "INSERT INTO events (id, type, created, refund_id, payload) VALUES (?, ?, ?, ?, ?)", rows
    )
    db.commit()
    db.close()


def ok(url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
    return Outcome(200)


def measure(count: int, directory: Path) -> dict[str, float]:
    path = directory / f"bench_{count}.db"
    RefundKit.open(f"sqlite:///{path}", autoload=False).close()
    fill(path, count)
    kit = RefundKit.open(f"sqlite:///{path}", autoload=False, clock=lambda: T0)
    try:
        endpoint = Endpoint.create("https://billing.example.com/hooks", new_secret(), backfill=True)
        deliverer = Deliverer(kit.store, [endpoint], clock=lambda: T0, send=ok)
        start = time.perf_counter()
        added = deliverer.fan_out()
        fan_out = time.perf_counter() - start
        assert added == count, added
        start = time.perf_counter()
        report = deliverer.run_once()
        deliver = time.perf_counter() - start
        assert len(report.delivered) == count, report.attempts
        start = time.perf_counter()
        idle = deliverer.run_once()
        idle_pass = time.perf_counter() - start
        assert idle.attempts == 0
    finally:
        kit.close()
    return {"fan_out_ms": fan_out * 1000, "per_s": count / deliver, "idle_ms": idle_pass * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {n: measure(n, Path(tmp)) for n in args.sizes}
    print(f"{'events':>8} {'fan-out ms':>11} {'deliveries/s':>13} {'idle pass ms':>13}")
    for n, r in results.items():
        print(f"{n:>8} {r['fan_out_ms']:>11.1f} {r['per_s']:>13.0f} {r['idle_ms']:>13.1f}")
    sizes = sorted(results)
    for small, big in itertools.pairwise(sizes):
        growth = results[big]["idle_ms"] / results[small]["idle_ms"]
        print(f"idle pass grows x{growth:.1f} from {small} to {big} events")


if __name__ == "__main__":
    main()

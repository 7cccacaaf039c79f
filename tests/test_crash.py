"""R-2.2 / R-7.3: a worker killed with os._exit mid-refund, then recovery in a fresh process,
at each of R-2.2's five crash points, on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from refundkit import RefundKit, RefundStatus
from refundkit.gateways.sandbox import SandboxGateway

from ._workers import crash_worker, recover_worker
from .conftest import open_kit, record, usd

CTX = multiprocessing.get_context("spawn")


def crash_and_recover(db_url: str, sandbox_path: str, log_path: Path, point: str) -> RefundKit:
    kit = open_kit(db_url, sandbox_path)
    record(kit)
    kit.close()
    child = CTX.Process(
        target=crash_worker, args=(db_url, sandbox_path, str(log_path), "pay_1", point)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 137, "the worker must die at the crash point"
    out = CTX.Queue()
    # Ten minutes later, so a refund the dead worker left in flight counts as abandoned.
    fresh = CTX.Process(target=recover_worker, args=(db_url, sandbox_path, str(log_path), 10, out))
    fresh.start()
    out.get(timeout=60)
    fresh.join(timeout=60)
    assert fresh.exitcode == 0
    return open_kit(db_url, sandbox_path)


def delivered(log_path: Path) -> list[str]:
    return log_path.read_text().split() if log_path.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "gateway_refunds", "status", "deliveries"),
    [
        # 1. after the reserve commit: never sent, so recovery releases it
        ("reserved", 0, RefundStatus.FAILED, 1),
        # 2. request about to go out: resent with the same key, inside its window
        ("submitted", 1, RefundStatus.SUCCEEDED, 1),
        # 3. the gateway applied it, the worker died before confirm: found by lookup
        ("gateway_returned", 1, RefundStatus.SUCCEEDED, 1),
        # 4. confirm committed, the relay never ran: recovery's relay publishes it
        ("confirmed", 1, RefundStatus.SUCCEEDED, 1),
        # 5. the relay published, then died before marking it sent: published again
        ("published", 1, RefundStatus.SUCCEEDED, 2),
    ],
)
def test_r2_2_every_crash_point_ends_consistent(
    db_url: str,
    sandbox_path: str,
    tmp_path: Path,
    point: str,
    gateway_refunds: int,
    status: RefundStatus,
    deliveries: int,
) -> None:
    """R-2.2: one gateway refund per refund id, local status equals the gateway's, exactly
    one event id (delivered at least once), and the cap intact."""
    log_path = tmp_path / "delivered.log"
    kit = crash_and_recover(db_url, sandbox_path, log_path, point)
    sandbox = kit.gateway("sandbox")
    assert isinstance(sandbox, SandboxGateway)
    [refund] = kit.refunds("pay_1")
    gateway_rows = sandbox.refunds("sbx_ch_pay_1")
    assert sandbox.refund_count("sbx_ch_pay_1") == gateway_refunds
    assert refund.status is status
    if gateway_refunds:
        assert [row["status"] for row in gateway_rows] == [status.value]
        assert [row["refund_id"] for row in gateway_rows] == [refund.id]
    [event] = kit.events()  # exactly one event id for the refund's outcome
    assert event.type == ("charge.refunded" if gateway_refunds else "refund.failed")
    assert delivered(log_path) == [event.id] * deliveries
    payment = kit.payment("pay_1")
    assert payment.held is not None
    assert payment.held <= payment.amount
    assert payment.refunded == (usd("10.00") if gateway_refunds else usd("0.00"))
    assert payment.held == payment.refunded  # nothing left reserved
    kit.close()

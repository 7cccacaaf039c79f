"""R-2.2 / R-7.3: a worker killed with os._exit mid-refund, then recovery in a fresh process."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from refundkit import RefundKit, RefundStatus
from refundkit.gateways.sandbox import SandboxGateway

from ._workers import crash_worker, recover_worker
from .conftest import record, usd

CTX = multiprocessing.get_context("spawn")


def crash_and_recover(tmp_path: Path, point: str) -> RefundKit:
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    kit = RefundKit.open(db_url, autoload=False)
    record(kit)
    kit.close()
    child = CTX.Process(target=crash_worker, args=(db_url, "pay_1", point))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 137, "the worker must die at the crash point"
    out = CTX.Queue()
    # Ten minutes later, so a refund the dead worker left in flight counts as abandoned.
    fresh = CTX.Process(target=recover_worker, args=(db_url, 10, out))
    fresh.start()
    out.get(timeout=60)
    fresh.join(timeout=60)
    assert fresh.exitcode == 0
    return RefundKit.open(db_url, autoload=False)


@pytest.mark.slow
def test_r2_2_killed_after_the_gateway_applied_then_recovered_once(tmp_path: Path) -> None:
    """The headline case: the sandbox applied the refund, the worker died before confirm."""
    kit = crash_and_recover(tmp_path, "gateway_returned")
    sandbox = kit.gateway("sandbox")
    assert isinstance(sandbox, SandboxGateway)
    [refund] = kit.refunds("pay_1")
    assert refund.status is RefundStatus.SUCCEEDED
    assert sandbox.refund_count("sbx_ch_pay_1") == 1
    assert [e.type for e in kit.events()] == ["charge.refunded"]
    assert kit.payment("pay_1").refunded == usd("10.00")
    kit.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "gateway_refunds", "status"),
    [
        ("reserved", 0, RefundStatus.FAILED),  # never sent: released
        ("submitted", 1, RefundStatus.SUCCEEDED),  # resent with the same key, inside its window
        ("gateway_returned", 1, RefundStatus.SUCCEEDED),  # found by lookup
        ("confirmed", 1, RefundStatus.SUCCEEDED),  # already done: nothing to recover
    ],
)
def test_r2_2_every_crash_point_ends_consistent(
    tmp_path: Path, point: str, gateway_refunds: int, status: RefundStatus
) -> None:
    kit = crash_and_recover(tmp_path, point)
    sandbox = kit.gateway("sandbox")
    assert isinstance(sandbox, SandboxGateway)
    [refund] = kit.refunds("pay_1")
    gateway_rows = sandbox.refunds("sbx_ch_pay_1")
    # one gateway refund per refund id, and local status equals the gateway's
    assert sandbox.refund_count("sbx_ch_pay_1") == gateway_refunds
    assert refund.status is status
    if gateway_refunds:
        assert [row["status"] for row in gateway_rows] == [status.value]
        assert [row["refund_id"] for row in gateway_rows] == [refund.id]
    succeeded_events = [e for e in kit.events() if e.type == "charge.refunded"]
    assert len(succeeded_events) == gateway_refunds
    payment = kit.payment("pay_1")
    assert payment.held is not None
    assert payment.held <= payment.amount
    assert payment.refunded == (usd("10.00") if gateway_refunds else usd("0.00"))
    kit.close()

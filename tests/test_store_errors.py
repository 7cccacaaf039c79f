"""A database that fails mid-way (connection lost, lock timeout, deadlock victim) is a typed
``StoreUnavailable``: that transaction wrote nothing, and retrying is safe."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from refundkit import RefundKit, RefundStatus, StoreUnavailable
from refundkit import _store as st
from refundkit.cli import cli
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, record, row_counts, usd


def db_error(kit: RefundKit, text: str) -> Exception:
    """The driver's own OperationalError (sqlite3's or psycopg's)."""
    dbapi = kit.store.engine.dialect.loaded_dbapi
    error: Exception = dbapi.OperationalError(text)
    return error


def test_a_lost_connection_is_store_unavailable_and_writes_nothing(
    kit: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(kit)
    before = row_counts(kit)

    def lost() -> Any:
        raise db_error(kit, "server closed the connection unexpectedly")

    with monkeypatch.context() as m:
        m.setattr(kit.store.engine, "raw_connection", lost)
        with pytest.raises(StoreUnavailable, match="server closed the connection") as info:
            kit.refund("pay_1", usd("10.00"), idempotency_key="k1")
        with pytest.raises(StoreUnavailable):
            kit.quote("pay_1")
    assert info.value.code == "store_unavailable"
    assert "nothing of it was written" in str(info.value)
    assert row_counts(kit) == before


def test_a_deadlock_victim_rolls_back_and_the_same_key_then_refunds_once(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reservation's transaction dies half-way (the refund row written, the hold not):
    nothing of it stays, and a retry with the same key makes one refund."""
    record(kit)
    before = row_counts(kit)
    run = st.Tx.run

    def deadlock(self: st.Tx, name: str, **values: Any) -> Any:
        if name == "add_held":
            raise db_error(kit, "deadlock detected")
        return run(self, name, **values)

    with monkeypatch.context() as m:
        m.setattr(st.Tx, "run", deadlock)
        with pytest.raises(StoreUnavailable, match="deadlock detected"):
            kit.refund("pay_1", usd("10.00"), idempotency_key="k1")
    assert row_counts(kit) == before
    assert sandbox.refund_count("sbx_ch_pay_1") == 0
    first = kit.refund("pay_1", usd("10.00"), idempotency_key="k1")
    again = kit.refund("pay_1", usd("10.00"), idempotency_key="k1")
    assert first.id == again.id
    assert first.status is RefundStatus.SUCCEEDED
    assert sandbox.refund_count("sbx_ch_pay_1") == 1


@pytest.mark.parametrize(
    ("lost_at", "sent", "settled"),
    [(1, 0, RefundStatus.FAILED), (2, 1, RefundStatus.SUCCEEDED)],
    ids=["the submitted mark", "the confirmation"],
)
def test_a_lost_status_write_is_settled_by_recovery_as_after_a_crash(
    kit: RefundKit,
    sandbox: SandboxGateway,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    lost_at: int,
    sent: int,
    settled: RefundStatus,
) -> None:
    """The reservation committed, then a later write of its status fails: before the gateway
    call (the submitted mark) nothing is sent; after it (the confirmation) the refund stays
    held, and recovery settles it either way: one gateway refund at most, no over-refund."""
    record(kit)
    transition = st.transition_refund
    calls = [0]

    def lost(*args: Any, **kwargs: Any) -> bool:
        calls[0] += 1
        if calls[0] == lost_at:
            raise db_error(kit, "connection lost")
        return transition(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(st, "transition_refund", lost)
        with pytest.raises(StoreUnavailable):
            kit.refund("pay_1", usd("10.00"))
    assert sandbox.refund_count("sbx_ch_pay_1") == sent
    [refund] = kit.refunds("pay_1")
    assert refund.status in (RefundStatus.RESERVED, RefundStatus.SUBMITTED)
    assert kit.quote("pay_1").max_amount == usd("40.00")  # still held: no over-refund
    clock.advance(seconds=kit.in_flight_timeout.total_seconds() + 1)
    kit.recover()
    assert kit.get_refund(refund.id).status is settled
    assert sandbox.refund_count("sbx_ch_pay_1") == sent
    assert kit.payment("pay_1").refunded == usd("10.00" if sent else "0.00")


def test_cli_prints_one_line_and_exits_1(
    db_url: str, kit: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(kit)

    def lost(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the store could not complete the transaction (test)")

    monkeypatch.setattr(st.Store, "read", lost)
    out = CliRunner(env={"REFUNDKIT_DB": None}).invoke(cli, ["--db", db_url, "quote", "pay_1"])
    assert out.exit_code == 1
    assert out.output.count("\n") == 1
    assert "store_unavailable" in out.output

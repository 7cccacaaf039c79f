"""The look-ups made on the way to a new refund (R-2.9) use no attempt of the recovery schedule
(R-2.5), so a busy payment does not push its pending refunds into manual review (issue 14)."""

from __future__ import annotations

from refundkit import Money, RefundKit, RefundStatus
from refundkit._kit import DEFAULT_RETRY_SCHEDULE
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, record, usd
from .test_recovery import CountingLookups

S = RefundStatus


def test_r2_9_lookups_before_new_refunds_use_no_scheduled_attempt(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock
) -> None:
    """A pending refund and an unknown one on a payment, then more new refunds on it than the
    schedule has attempts, minutes apart: each new refund looks both up first (R-2.9), yet
    neither uses an attempt, so neither reaches manual_review. Scheduled passes still count."""
    record(kit)
    pending = kit.refund("pay_1", usd("1.92"))  # .92: pending at the gateway
    unknown = kit.refund("pay_1", usd("1.95"))  # .95: timed out, never made: unknown
    assert (pending.status, unknown.status) == (S.PENDING, S.UNKNOWN)
    calls = CountingLookups(sandbox)
    rounds = len(DEFAULT_RETRY_SCHEDULE) + 2
    for i in range(rounds):
        clock.advance(minutes=3)  # past the in-flight timeout: the unknown one is re-sent too
        assert kit.refund("pay_1", usd("1.00"), idempotency_key=f"new-{i}").status is (S.SUCCEEDED)
    for before in (pending, unknown):
        after = kit.get_refund(before.id)
        assert (after.status, after.attempts) == (before.status, 0)
    assert calls.lookups >= 2 * rounds  # both were looked up before every new refund
    assert kit.payment("pay_1").held == Money(192 + 195 + 100 * rounds, "USD")
    clock.advance(days=1)
    kit.recover()  # a scheduled pass: one attempt each
    assert {kit.get_refund(r.id).attempts for r in (pending, unknown)} == {1}

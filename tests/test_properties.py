"""Hypothesis: no sequence of refunds, retries, faults, recoveries and webhooks ever lets the
money out (or held) exceed the payment, and local books always agree with the gateway."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refundkit import Money, RefundKit, RefundkitError, RefundStatus
from refundkit.gateways.sandbox import OUTCOMES, SIGNATURE_HEADER, SandboxGateway

from .conftest import FakeClock, record

AMOUNT = 5000  # 50.00 USD

refund_op = st.tuples(
    st.just("refund"),
    st.integers(min_value=-5, max_value=AMOUNT + 5),  # includes 0, negatives and over-cap
    st.sampled_from([None, "k0", "k1", "k2"]),  # reused keys force replays and conflicts
    st.sampled_from(OUTCOMES),
)
other_ops = st.sampled_from(
    [
        ("recover", 0),
        ("recover", 10),
        ("settle", 0),
        ("settle_twice", 0),
        ("reverse", 0),
        ("late_failure", 0),
    ]
)
ops = st.lists(st.one_of(refund_op, other_ops), max_size=20)


def check_invariants(kit: RefundKit, sandbox: SandboxGateway) -> None:
    payment = kit.payment("pay_1")
    assert payment.held is not None
    assert payment.refunded is not None
    refunds = kit.refunds("pay_1")
    held = sum(r.amount.amount for r in refunds if r.status.holds_balance)
    succeeded = sum(r.amount.amount for r in refunds if r.status is RefundStatus.SUCCEEDED)
    # refunded + held never exceed the payment, and the counters match the refunds
    assert payment.refunded.amount <= payment.held.amount <= AMOUNT
    assert payment.held.amount == held
    assert payment.refunded.amount == succeeded
    # whatever the gateway paid out (or may still pay) is held locally by the same refund
    local = {r.id: r for r in refunds}
    out_at_gateway = 0
    for row in sandbox.refunds("sbx_ch_pay_1"):
        if row["status"] in ("succeeded", "pending"):
            out_at_gateway += row["amount"]
            assert local[row["refund_id"]].status.holds_balance
    assert out_at_gateway <= held
    # one journal per succeeded refund, balanced; event ids unique
    events = kit.events()
    assert len({e.id for e in events}) == len(events)


def apply(kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "refund":
        _, amount, key, outcome = op
        sandbox.script(outcome)  # left queued if the kit refuses before calling the gateway
        # Refusals and declines are expected; the invariants say what matters.
        with contextlib.suppress(RefundkitError):
            kit.refund("pay_1", Money(amount, "USD"), idempotency_key=key)
    elif kind == "recover":
        clock.advance(minutes=op[1])
        kit.recover(force=True)
    elif kind in ("settle", "settle_twice"):
        for headers, body in sandbox.settle_pending():
            for _ in range(2 if kind == "settle_twice" else 1):
                kit.handle_gateway_webhook("sandbox", headers, body)
    elif kind == "late_failure":
        # A "failed" report for a refund that already succeeded: it must become a reversal.
        done = [r for r in kit.refunds("pay_1") if r.status is RefundStatus.SUCCEEDED]
        if done:
            assert done[0].gateway_refund_id is not None
            sandbox.reverse(done[0].gateway_refund_id)  # the gateway's side; its webhook is lost
            body = json.dumps(
                {
                    "id": "sbx_evt_late",
                    "type": "refund.updated",
                    "created": 0,
                    "data": {
                        "id": done[0].gateway_refund_id,
                        "refund_id": done[0].id,
                        "status": "failed",
                        "amount": done[0].amount.amount,
                        "currency": "USD",
                        "failure_code": "refund_failed",
                    },
                }
            ).encode()
            ts = int(clock().timestamp())
            kit.handle_gateway_webhook("sandbox", {SIGNATURE_HEADER: sandbox.sign(body, ts)}, body)
            assert kit.get_refund(done[0].id).status is RefundStatus.REVERSED
    elif kind == "reverse":
        rows = [r for r in sandbox.refunds("sbx_ch_pay_1") if r["status"] == "succeeded"]
        if rows:
            headers, body = sandbox.reverse(rows[0]["gateway_refund_id"])
            kit.handle_gateway_webhook("sandbox", headers, body)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops)
def test_no_sequence_over_refunds(ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    kit = RefundKit.open("sqlite://", autoload=False, clock=clock, retry_backoff=0)
    try:
        sandbox = kit.gateway("sandbox")
        assert isinstance(sandbox, SandboxGateway)
        record(kit)
        for op in ops:
            apply(kit, sandbox, clock, op)
            check_invariants(kit, sandbox)
    finally:
        kit.close()

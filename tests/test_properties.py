"""Hypothesis (R-7.1): no sequence of refunds, retries, faults, recoveries and webhooks ever lets
the money out (or held) exceed the payment, every succeeded refund has exactly one balanced
journal, and local books always agree with the gateway. The kit must also *do* things: a
refund its own quote allows is never refused, and enough refunds go through that a kit refusing
everything fails the property (tests/test_properties.py's last tests show it does)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from refundkit import (
    InsufficientRefundableBalance,
    Money,
    RefundKit,
    RefundkitError,
    RefundNotAllowed,
    RefundStatus,
)
from refundkit.gateways.sandbox import OUTCOMES, SIGNATURE_HEADER, SandboxGateway

from ._invariants import check_every_journal, refuse_by_rule, refuse_in_the_amount_check
from .conftest import FakeClock, record

AMOUNT = 5000  # 50.00 USD

refund_op = st.tuples(
    st.just("refund"),
    st.one_of(
        st.integers(min_value=-5, max_value=AMOUNT + 5),  # includes 0, negatives and over-cap
        st.integers(min_value=1, max_value=AMOUNT // 10),  # small ones: several fit the cap
    ),
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

#: Outcomes in which the kit refused a refund on its own rules (no gateway call).
POLICY_REFUSALS = (RefundNotAllowed, InsufficientRefundableBalance)


@dataclass
class Tally:
    """What the refund operations of every sequence came to, across all examples."""

    examples: int = 0
    asked: int = 0  # refunds of a positive amount
    allowed: int = 0  # ... without a key, within the quote just before
    succeeded: int = 0  # ... (with or without a key) that came back succeeded

    def assert_enough_went_through(self) -> None:
        """A kit that refuses everything, or nearly, fails here. Measured: about three refunds
        of a positive amount per example; a fifth of them fit their quote without a key, and
        close to a third succeed at once (a scripted "succeed", a replay, a magic amount)."""
        assert self.asked >= self.examples, f"too few refunds were asked for: {self}"
        assert self.allowed >= self.asked // 10, f"the quotes allowed too few refunds: {self}"
        assert self.succeeded >= self.asked // 10, f"too few refunds succeeded: {self}"


def check_invariants(kit: RefundKit, sandbox: SandboxGateway) -> None:
    payment = kit.payment("pay_1")
    assert payment.held is not None
    assert payment.refunded is not None
    refunds = kit.refunds("pay_1")
    held = sum(r.amount.amount for r in refunds if r.status.holds_balance)
    succeeded = sum(r.amount.amount for r in refunds if r.status is RefundStatus.SUCCEEDED)
    # refunded + held never exceed the payment (the cap), and the counters match the refunds
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
    check_every_journal(kit, "pay_1")
    events = kit.events()
    assert len({e.id for e in events}) == len(events)


def apply_refund(
    kit: RefundKit, sandbox: SandboxGateway, op: tuple[Any, ...], tally: Tally
) -> None:
    _, amount, key, outcome = op
    sandbox.script(outcome)  # left queued if the kit refuses before calling the gateway
    if amount <= 0:  # never a refund: refused, or a conflict with the key's first request
        with pytest.raises(RefundNotAllowed if key is None else RefundkitError):
            kit.refund("pay_1", Money(amount, "USD"), idempotency_key=key)
        return
    tally.asked += 1
    allowed = key is None and amount <= kit.quote("pay_1").max_amount.amount
    tally.allowed += allowed
    try:
        refund = kit.refund("pay_1", Money(amount, "USD"), idempotency_key=key)
    except POLICY_REFUSALS:
        assert not allowed, f"a refund of {amount} that the quote allowed was refused"
        return
    except RefundkitError:
        return  # declines, conflicts with a reused key, a gateway that gave up
    tally.succeeded += refund.status is RefundStatus.SUCCEEDED


def late_failure(kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock) -> None:
    """A "failed" report for a refund that already succeeded: it must become a reversal."""
    done = [r for r in kit.refunds("pay_1") if r.status is RefundStatus.SUCCEEDED]
    if not done:
        return
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


def apply(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock, op: tuple[Any, ...], tally: Tally
) -> None:
    kind = op[0]
    if kind == "refund":
        apply_refund(kit, sandbox, op, tally)
    elif kind == "recover":
        clock.advance(minutes=op[1])
        kit.recover(force=True)
    elif kind in ("settle", "settle_twice"):
        for headers, body in sandbox.settle_pending():
            for _ in range(2 if kind == "settle_twice" else 1):
                kit.handle_gateway_webhook("sandbox", headers, body)
    elif kind == "late_failure":
        late_failure(kit, sandbox, clock)
    elif kind == "reverse":
        rows = [r for r in sandbox.refunds("sbx_ch_pay_1") if r["status"] == "succeeded"]
        if rows:
            headers, body = sandbox.reverse(rows[0]["gateway_refund_id"])
            kit.handle_gateway_webhook("sandbox", headers, body)


def run_sequence(ops: list[tuple[Any, ...]], tally: Tally, plugins: Sequence[object]) -> None:
    clock = FakeClock()
    kit = RefundKit.open(
        "sqlite://", autoload=False, clock=clock, retry_backoff=0, plugins=list(plugins)
    )
    try:
        sandbox = kit.gateway("sandbox")
        assert isinstance(sandbox, SandboxGateway)
        record(kit)
        for op in ops:
            apply(kit, sandbox, clock, op, tally)
            check_invariants(kit, sandbox)
    finally:
        kit.close()


def check_the_kit(examples: int, *, plugins: Sequence[object] = (), shrink: bool = True) -> None:
    """The property over ``examples`` random sequences, then the share that went through.
    ``shrink=False`` (the tests that show it can fail) skips shrinking and the example database."""
    tally = Tally()
    quick = {"phases": (Phase.explicit, Phase.generate), "database": None}

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        report_multiple_bugs=False,
        **({} if shrink else quick),  # type: ignore[arg-type]
    )
    @given(ops=ops)
    def sequences(ops: list[tuple[Any, ...]]) -> None:
        tally.examples += 1
        run_sequence(ops, tally, plugins)

    sequences()
    tally.assert_enough_went_through()


def test_no_sequence_over_refunds() -> None:
    check_the_kit(120)


# --- the property can fail: a kit that refuses everything does not pass it ---------------------


@pytest.mark.parametrize(
    ("refuse", "failure"),
    [
        (refuse_by_rule, "the quotes allowed too few refunds"),
        (refuse_in_the_amount_check, "that the quote allowed was refused"),
    ],
    ids=["a policy rule allows nothing", "the amount check refuses every refund"],
)
def test_the_property_fails_when_the_kit_refuses_every_refund(
    monkeypatch: pytest.MonkeyPatch,
    refuse: Callable[[pytest.MonkeyPatch], list[object]],
    failure: str,
) -> None:
    """Without the share of refunds that went through, and the check that a refund the quote
    allows is not refused, a kit that refunds nothing would pass every invariant above."""
    plugins = refuse(monkeypatch)
    with pytest.raises(AssertionError, match=failure):
        check_the_kit(30, plugins=plugins, shrink=False)

"""The refund use cases end to end through the facade, with the sandbox gateway."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import attrs
import pytest

from refundkit import (
    Destination,
    GatewayDeclined,
    GatewayError,
    GatewayRateLimited,
    GatewayRefundRequest,
    GatewayRefundResult,
    IdempotencyConflict,
    InsufficientRefundableBalance,
    RefundKit,
    RefundNotAllowed,
    RefundStatus,
    RequestInProgress,
    hookimpl,
)
from refundkit._engine import outcomes
from refundkit._gateway import GatewayRefundUpdate
from refundkit._ledger import is_balanced
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, record, row_counts, usd


def test_full_refund_of_untouched_payment_uses_the_default_amount(kit: RefundKit) -> None:
    record(kit)
    q = kit.quote("pay_1")
    assert (q.refundable, q.default_amount, q.max_amount, q.limits) == (
        True,
        usd("50.00"),
        usd("50.00"),
        (),
    )
    refund = kit.refund("pay_1", reason="requested_by_customer", actor="support:alice")
    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.amount == usd("50.00")
    assert refund.gateway_refund_id is not None
    assert refund.gateway_refund_id.startswith("sbx_re_")
    after = kit.quote("pay_1")
    assert not after.refundable
    assert [lim.code for lim in after.limits] == ["payment_cap"]
    assert "50.00 USD of this 50.00 USD payment" in after.limits[0].message


def test_charge_refunded_event_has_exactly_the_design_payload(kit: RefundKit) -> None:
    record(kit, destination=Destination.CUSTOMER_BALANCE)
    refund = kit.refund("pay_1", usd("15.00"), reason="requested_by_customer")
    [event] = kit.events()
    payload = event.to_dict()
    assert payload["type"] == "charge.refunded"
    assert payload["id"].startswith("evt_")
    assert payload["created"] == "2026-11-22T10:00:00Z"
    assert payload["data"] == {
        "refund": {
            "id": refund.id,
            "amount": 1500,
            "currency": "USD",
            "status": "succeeded",
            "reason": "requested_by_customer",
            "gateway_refund_id": refund.gateway_refund_id,
        },
        "payment": {
            "id": "pay_1",
            "gateway": "sandbox",
            "gateway_payment_id": "sbx_ch_pay_1",
            "destination": "customer_balance",
            "amount": 5000,
            "amount_refunded": 1500,
        },
        "customer_id": "cus_1",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
        "refunded_at": "2026-11-22T10:00:00Z",
    }


@pytest.mark.parametrize(
    ("destination", "debit"),
    [(Destination.INVOICE, "refunds"), (Destination.CUSTOMER_BALANCE, "customer_balance:cus_1")],
)
def test_journal_is_balanced_and_has_the_same_shape_for_both_destinations(
    kit: RefundKit, destination: Destination, debit: str
) -> None:
    record(kit, destination=destination)
    refund = kit.refund("pay_1", usd("20.00"))
    lines = kit.journal(refund.id)
    assert is_balanced(lines)
    assert [(x.account, x.side, x.amount) for x in lines] == [
        (debit, "debit", usd("20.00")),
        ("gateway_clearing:sandbox", "credit", usd("20.00")),
    ]


def test_partial_refunds_up_to_the_payment_then_refused(kit: RefundKit) -> None:
    record(kit)
    for amount in ("10.00", "15.00", "25.00"):
        assert kit.refund("pay_1", usd(amount)).status is RefundStatus.SUCCEEDED
    before = row_counts(kit)
    with pytest.raises(RefundNotAllowed) as info:
        kit.refund("pay_1", usd("0.01"))
    assert info.value.code == "refund_not_allowed"
    assert [lim.code for lim in info.value.limits] == ["payment_cap"]
    assert row_counts(kit) == before
    assert kit.payment("pay_1").refunded == usd("50.00")


def test_over_refund_names_the_binding_limit_and_writes_nothing(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    kit.refund("pay_1", usd("30.00"))
    before = row_counts(kit)
    with pytest.raises(InsufficientRefundableBalance) as info:
        kit.refund("pay_1", usd("20.01"))
    assert info.value.code == "insufficient_refundable_balance"
    assert "at most 20.00 USD remains" in str(info.value)
    assert row_counts(kit) == before
    assert sandbox.refund_count("sbx_ch_pay_1") == 1


def test_r1_3_replay_returns_stored_refund_without_calling_the_gateway(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    first = kit.refund("pay_1", usd("10.00"), idempotency_key="ticket-981")
    again = kit.refund("pay_1", usd("10.00"), idempotency_key="ticket-981")
    assert again == first
    assert sandbox.refund_count() == 1
    assert len(kit.refunds("pay_1")) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"amount": usd("10.01")},
        {"payment_id": "pay_2"},
        {"reason": "duplicate"},
    ],
)
def test_r1_2_same_key_with_other_parameters_is_a_conflict(
    kit: RefundKit, sandbox: SandboxGateway, change: dict[str, Any]
) -> None:
    record(kit)
    record(kit, "pay_2")
    kit.refund("pay_1", usd("10.00"), idempotency_key="k-1", reason="requested_by_customer")
    before = row_counts(kit)
    args: dict[str, Any] = {
        "payment_id": "pay_1",
        "amount": usd("10.00"),
        "reason": "requested_by_customer",
    } | change
    with pytest.raises(IdempotencyConflict) as info:
        kit.refund(args.pop("payment_id"), args.pop("amount"), idempotency_key="k-1", **args)
    assert info.value.code == "idempotency_conflict"
    assert row_counts(kit) == before
    assert sandbox.refund_count() == 1


def test_r1_1_same_key_from_many_threads_makes_one_refund(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    results: list[object] = []
    barrier = threading.Barrier(20)

    def call() -> None:
        barrier.wait()
        try:
            results.append(kit.refund("pay_1", usd("5.00"), idempotency_key="same"))
        except RequestInProgress as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refunds = [r for r in results if not isinstance(r, RequestInProgress)]
    assert len(results) == 20
    assert len({r.id for r in refunds}) == 1  # type: ignore[attr-defined]
    assert len(kit.refunds("pay_1")) == 1
    assert sandbox.refund_count() == 1


def test_r2_3_unknown_outcome_holds_balance_until_recovery_resolves_it(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock
) -> None:
    record(kit)
    sandbox.script("timeout_before", "decline")  # the resend during recovery is declined
    first = kit.refund("pay_1", usd("30.00"))
    assert first.status is RefundStatus.UNKNOWN
    with pytest.raises(InsufficientRefundableBalance):
        kit.refund("pay_1", usd("30.00"))  # 20.00 available while 30.00 is unknown
    clock.advance(minutes=5)
    report = kit.recover()
    assert [r.status for r in report.resolved] == [RefundStatus.FAILED]
    assert kit.refund("pay_1", usd("30.00")).status is RefundStatus.SUCCEEDED
    assert sandbox.refund_count() == 1


def test_timeout_after_the_gateway_applied_is_found_by_lookup_not_resent(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    sandbox.script("timeout_after")
    refund = kit.refund("pay_1", usd("12.00"))
    assert refund.status is RefundStatus.UNKNOWN
    assert kit.events() == []
    report = kit.recover(force=True)
    assert [r.id for r in report.resolved] == [refund.id]
    assert kit.get_refund(refund.id).status is RefundStatus.SUCCEEDED
    assert sandbox.refund_count() == 1
    assert [e.type for e in kit.events()] == ["charge.refunded"]


def test_r2_9_new_refund_first_looks_up_unknown_ones(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    sandbox.script("timeout_after")
    unknown = kit.refund("pay_1", usd("40.00"))
    with pytest.raises(InsufficientRefundableBalance):
        kit.refund("pay_1", usd("20.00"))
    assert kit.get_refund(unknown.id).status is RefundStatus.SUCCEEDED  # resolved on the fly
    assert sandbox.refund_count() == 1


def test_pending_then_webhook_succeeds_once_even_if_delivered_twice(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is RefundStatus.PENDING
    assert kit.quote("pay_1").max_amount == usd("40.00")  # pending holds its amount
    [(headers, body)] = sandbox.settle_pending()
    [done] = kit.handle_gateway_webhook("sandbox", headers, body)
    assert done.status is RefundStatus.SUCCEEDED
    kit.handle_gateway_webhook("sandbox", headers, body)  # duplicate delivery
    assert [e.type for e in kit.events()] == ["refund.pending", "charge.refunded"]
    assert len(kit.journal(refund.id)) == 2
    assert kit.payment("pay_1").refunded == usd("10.00")


def test_pending_then_failure_releases_the_balance(kit: RefundKit, sandbox: SandboxGateway) -> None:
    record(kit)
    sandbox.script("pending_fail")
    refund = kit.refund("pay_1", usd("10.00"))
    [(headers, body)] = sandbox.settle_pending()
    [failed] = kit.handle_gateway_webhook("sandbox", headers, body)
    assert failed.status is RefundStatus.FAILED
    assert kit.quote("pay_1").max_amount == usd("50.00")
    assert [e.type for e in kit.events()] == ["refund.pending", "refund.failed"]
    assert kit.journal(refund.id) == []


def test_a_webhook_about_another_gateway_refund_never_moves_ours(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update that names our refund id but a different gateway refund (money moved twice
    at the gateway) is not applied: its failure must not reverse ours and reopen the cap."""
    record(kit)
    refund = kit.refund("pay_1", usd("10.00"))
    other = GatewayRefundUpdate("failed", refund.id, "sbx_re_other", usd("10.00"), "declined")
    monkeypatch.setattr(sandbox, "parse_webhook", lambda headers, body: [other])
    events = len(kit.events())
    assert kit.handle_gateway_webhook("sandbox", {}, b"{}") == []
    after = kit.get_refund(refund.id)
    assert (after.status, after.gateway_refund_id) == (
        RefundStatus.SUCCEEDED,
        refund.gateway_refund_id,
    )
    assert kit.quote("pay_1").max_amount == usd("40.00")
    assert len(kit.events()) == events
    same = attrs.evolve(other, gateway_refund_id=refund.gateway_refund_id)
    monkeypatch.setattr(sandbox, "parse_webhook", lambda headers, body: [same])
    assert refund.gateway_refund_id is not None
    sandbox.reverse(refund.gateway_refund_id)  # a failure after success is looked up first
    [moved] = kit.handle_gateway_webhook("sandbox", {}, b"{}")  # the same one does apply
    assert moved.status is RefundStatus.REVERSED


def test_reversed_refund_posts_the_reversing_journal_and_reopens_the_balance(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.gateway_refund_id is not None
    headers, body = sandbox.reverse(refund.gateway_refund_id)
    [reversed_] = kit.handle_gateway_webhook("sandbox", headers, body)
    assert reversed_.status is RefundStatus.REVERSED
    lines = kit.journal(refund.id)
    assert [(x.kind, x.account, x.side) for x in lines] == [
        ("refund", "refunds", "debit"),
        ("refund", "gateway_clearing:sandbox", "credit"),
        ("reversal", "gateway_clearing:sandbox", "debit"),
        ("reversal", "refunds", "credit"),
    ]
    assert is_balanced(lines)
    assert kit.quote("pay_1").max_amount == usd("50.00")
    assert kit.payment("pay_1").refunded == usd("0.00")
    assert [e.type for e in kit.events()] == ["charge.refunded", "refund.reversed"]


def test_decline_is_kept_as_failed_and_replayed_from_the_store(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    sandbox.script("decline")
    with pytest.raises(GatewayDeclined) as info:
        kit.refund("pay_1", usd("10.00"), idempotency_key="k")
    assert info.value.refund is not None
    assert info.value.refund.status is RefundStatus.FAILED
    assert kit.quote("pay_1").max_amount == usd("50.00")
    with pytest.raises(GatewayDeclined):
        kit.refund("pay_1", usd("10.00"), idempotency_key="k")
    assert len(kit.refunds("pay_1")) == 1
    assert [e.type for e in kit.events()] == ["refund.failed"]


def test_rate_limit_is_retried_with_the_same_key(kit: RefundKit, sandbox: SandboxGateway) -> None:
    record(kit)
    sandbox.script("rate_limit")
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is RefundStatus.SUCCEEDED
    assert sandbox.refund_count() == 1


def test_rate_limit_that_persists_fails_and_frees_the_key_for_a_retry(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    sandbox.script("rate_limit", "rate_limit", "rate_limit")
    with pytest.raises(GatewayRateLimited) as info:
        kit.refund("pay_1", usd("10.00"), idempotency_key="k")
    assert info.value.refund is not None
    assert info.value.refund.status is RefundStatus.FAILED
    later = kit.refund("pay_1", usd("10.00"), idempotency_key="k")
    assert later.status is RefundStatus.SUCCEEDED
    assert sandbox.refund_count() == 1


def test_amount_mismatch_from_the_gateway_goes_to_manual_review(kit: RefundKit) -> None:
    from refundkit import GatewayRefundResult

    record(kit)
    refund = kit.refund("pay_1", usd("5.00"))
    payment = kit.payment("pay_1")
    pending = kit.refund("pay_1", usd("6.00"))
    assert refund.status is pending.status is RefundStatus.SUCCEEDED
    # Replaying a webhook that reports another amount for a refund still in flight:
    sandbox = kit.gateway("sandbox")
    assert isinstance(sandbox, SandboxGateway)
    sandbox.script("pending_succeed")
    third = kit.refund("pay_1", usd("7.00"))
    wrong = GatewayRefundResult("succeeded", third.gateway_refund_id, usd("7.01"))
    review = outcomes.apply_result(kit.runtime, third, payment, wrong)
    assert review.status is RefundStatus.MANUAL_REVIEW
    assert review.failure_code == "amount_mismatch"
    assert kit.quote("pay_1").max_amount == usd("32.00")  # still held


class VagueSandbox(SandboxGateway):
    """Applies the refund, then reports a bare GatewayError (e.g. an SDK error it did not map)."""

    name = "vague"

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        super().refund(request)
        raise GatewayError("something went wrong talking to the gateway")


class VaguePlugin:
    @hookimpl
    def refundkit_register_gateways(self, register: Any) -> None:
        register(VagueSandbox)


def test_r2_4_only_definite_refusals_release_the_reservation(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A bare GatewayError may hide an applied refund: it stays unknown and held, and
    recovery finds the refund instead of letting a second one through."""
    kit = RefundKit.open(
        f"sqlite:///{tmp_path / 'v.db'}", autoload=False, clock=clock, plugins=[VaguePlugin()],
        gateways={"vague": {"path": str(tmp_path / "vague.db"), "clock": clock}},
    )  # fmt: skip
    kit.record_payment(id="pay_v", customer_id="cus_1", amount=usd("50.00"), gateway="vague",
                       gateway_payment_id="v_1")  # fmt: skip
    with pytest.raises(GatewayError) as info:
        kit.refund("pay_v", usd("30.00"))
    assert info.value.refund is not None
    assert info.value.refund.status is RefundStatus.UNKNOWN
    assert kit.quote("pay_v").max_amount == usd("20.00")
    kit.recover(force=True)
    assert kit.get_refund(info.value.refund.id).status is RefundStatus.SUCCEEDED
    kit.close()

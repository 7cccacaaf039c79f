"""Gateway webhooks converge on the gateway's truth, whatever order they arrive in (issue 15;
DESIGN "Gateway truth"; R-4.6): an update is applied by the state the gateway reports now, an
update that contradicts what the kit holds is checked with a lookup first where the gateway
has one, duplicates change nothing, and a late success never resurrects a failed refund.

Every test runs on both stores. The deliveries are the sandbox's own (``settle_pending``,
``reverse``) or built here and signed with its secret: what a plugin reporting the state its
gateway names would hand the kit (Stripe's failure-before-success is ``failed`` then
``succeeded``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from refundkit import (
    Capabilities,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayTimeout,
    Money,
    Refund,
    RefundKit,
    RefundStatus,
    hookimpl,
)
from refundkit._ledger import is_balanced
from refundkit._model import new_id
from refundkit.gateways.sandbox import SIGNATURE_HEADER, SandboxGateway

from .conftest import FakeClock, open_kit, record, row_counts, usd

S = RefundStatus
Delivery = tuple[dict[str, str], bytes]


def said(
    sandbox: SandboxGateway, refund: Refund, status: str, *, failure_code: str | None = None
) -> Delivery:
    """A signed sandbox ``refund.updated`` saying ``refund`` is ``status`` (fresh event id)."""
    ts = int(sandbox._books.now().timestamp())
    body = json.dumps(
        {
            "id": new_id("sbx_evt_"),
            "type": "refund.updated",
            "created": ts,
            "data": {
                "id": refund.gateway_refund_id,
                "refund_id": refund.id,
                "status": status,
                "amount": refund.amount.amount,
                "currency": refund.amount.currency,
                "failure_code": failure_code,
            },
        }
    ).encode()
    return {SIGNATURE_HEADER: sandbox.sign(body, ts)}, body


def deliver(kit: RefundKit, gateway: str, *deliveries: Delivery) -> None:
    for headers, body in deliveries:
        kit.handle_gateway_webhook(gateway, headers, body)


def count_lookups(monkeypatch: pytest.MonkeyPatch, gateway: SandboxGateway) -> list[str]:
    """The refund ids ``gateway.lookup_refund`` is asked about, in order."""
    asked: list[str] = []
    real = gateway.lookup_refund

    def lookup(request: GatewayRefundRequest) -> GatewayRefundResult | None:
        asked.append(request.refund_id)
        return real(request)

    monkeypatch.setattr(gateway, "lookup_refund", lookup)
    return asked


def event_types(kit: RefundKit, refund: Refund) -> list[str]:
    return [e.type for e in kit.events(refund_id=refund.id)]


# --- a reversal is a success that came back --------------------------------------------------


def test_r4_6_a_reversal_that_overtakes_its_success_reverses_the_refund(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """The gateway settled the refund, then reversed it; the reversal arrives first. It proves
    the refund was made: the kit books the success and the reversal, and the late success
    changes nothing."""
    record(kit)
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is S.PENDING
    assert refund.gateway_refund_id
    [succeeded] = sandbox.settle_pending()
    reversal = sandbox.reverse(refund.gateway_refund_id)
    deliver(kit, "sandbox", reversal, succeeded)
    after = kit.get_refund(refund.id)
    assert after.status is S.REVERSED
    assert kit.payment("pay_1").refunded == usd("0.00")
    assert kit.quote("pay_1").max_amount == usd("50.00")
    assert event_types(kit, refund) == ["refund.pending", "charge.refunded", "refund.reversed"]
    lines = kit.journal(refund.id)
    assert [x.kind for x in lines] == ["refund", "refund", "reversal", "reversal"]
    assert is_balanced(lines)


def test_a_reversal_of_a_refund_held_unknown_books_its_success_and_its_reversal(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """The reply was lost (unknown), then the gateway reports the refund reversed: it was
    made and came back. Left unknown, it would hold the amount until a person looked."""
    record(kit)
    sandbox.script("timeout_after")
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is S.UNKNOWN
    [row] = sandbox.refunds()
    deliver(kit, "sandbox", sandbox.reverse(row["gateway_refund_id"]))
    after = kit.get_refund(refund.id)
    assert after.status is S.REVERSED
    assert after.gateway_refund_id == row["gateway_refund_id"]
    assert kit.quote("pay_1").max_amount == usd("50.00")
    assert kit.payment("pay_1").refunded == usd("0.00")
    assert event_types(kit, refund) == ["charge.refunded", "refund.reversed"]
    assert is_balanced(kit.journal(refund.id))


# --- a contradiction is looked up before anything is booked ---------------------------------


def test_a_late_success_after_a_failure_is_looked_up_and_changes_nothing(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe's failure-before-success, as a plugin reporting the gateway's state hands it
    over: ``failed``, then the stale ``succeeded``. The failure releases the amount; the
    success contradicts it, so the gateway is asked, and it says failed: nothing is booked,
    no ``charge.refunded``."""
    record(kit)
    sandbox.script("pending_fail")
    refund = kit.refund("pay_1", usd("10.00"))
    [failed] = sandbox.settle_pending()
    deliver(kit, "sandbox", failed)
    assert kit.get_refund(refund.id).status is S.FAILED
    assert kit.quote("pay_1").max_amount == usd("50.00")
    lookups = count_lookups(monkeypatch, sandbox)
    before = row_counts(kit)
    deliver(kit, "sandbox", said(sandbox, refund, "succeeded"))
    assert lookups == [refund.id], "a success that contradicts a failure must be looked up"
    assert kit.get_refund(refund.id).status is S.FAILED
    assert row_counts(kit) == before
    assert "charge.refunded" not in event_types(kit, refund)
    assert kit.quote("pay_1").max_amount == usd("50.00")
    assert kit.journal(refund.id) == []


def test_a_stale_failure_of_a_refund_that_succeeded_is_looked_up_and_ignored(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``failed`` report for a refund the kit holds succeeded, while the gateway still says
    succeeded: reversing it would give the money back to the cap twice (an over-refund)."""
    record(kit)
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is S.SUCCEEDED
    lookups = count_lookups(monkeypatch, sandbox)
    before = row_counts(kit)
    deliver(kit, "sandbox", said(sandbox, refund, "failed", failure_code="refund_failed"))
    assert lookups == [refund.id]
    assert kit.get_refund(refund.id).status is S.SUCCEEDED
    assert row_counts(kit) == before
    assert kit.payment("pay_1").refunded == usd("10.00")
    assert kit.quote("pay_1").max_amount == usd("40.00")


def test_a_failure_the_gateway_confirms_reverses_a_succeeded_refund(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same report when the gateway's books agree (its own reversal webhook was lost):
    the lookup says reversed, and that is what is booked."""
    record(kit)
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.gateway_refund_id is not None
    sandbox.reverse(refund.gateway_refund_id)  # its webhook is lost
    lookups = count_lookups(monkeypatch, sandbox)
    deliver(kit, "sandbox", said(sandbox, refund, "failed", failure_code="refund_failed"))
    assert lookups == [refund.id]
    assert kit.get_refund(refund.id).status is S.REVERSED
    assert kit.quote("pay_1").max_amount == usd("50.00")
    assert event_types(kit, refund) == ["charge.refunded", "refund.reversed"]


def test_reports_that_agree_with_the_kit_are_applied_without_a_lookup(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only contradictions cost a lookup: progress, duplicates and stale pendings do not."""
    record(kit)
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    lookups = count_lookups(monkeypatch, sandbox)
    [succeeded] = sandbox.settle_pending()
    deliver(kit, "sandbox", succeeded, succeeded, said(sandbox, refund, "pending"))
    assert refund.gateway_refund_id is not None
    deliver(kit, "sandbox", sandbox.reverse(refund.gateway_refund_id))
    deliver(kit, "sandbox", said(sandbox, refund, "reversed"))
    assert lookups == []
    assert kit.get_refund(refund.id).status is S.REVERSED
    assert event_types(kit, refund) == ["refund.pending", "charge.refunded", "refund.reversed"]


def test_stripe_shaped_failure_before_success_leaves_the_refund_failed_and_unannounced(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """The plugin engineer's acceptance case, on the core alone: the gateway's refund
    succeeded, then failed (``fail_after_success``: its status is now failed); the failure
    is delivered first, the success after it. The refund ends failed, its amount released,
    and no charge.refunded is ever announced."""
    record(kit)
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.gateway_refund_id is not None
    [succeeded] = sandbox.settle_pending()
    failed = sandbox.fail_after_success(refund.gateway_refund_id)
    deliver(kit, "sandbox", failed, succeeded, failed, succeeded)
    assert kit.get_refund(refund.id).status is S.FAILED
    assert kit.quote("pay_1").max_amount == usd("50.00")
    assert kit.payment("pay_1").refunded == usd("0.00")
    assert event_types(kit, refund) == ["refund.pending", "refund.failed"]
    assert kit.journal(refund.id) == []


def test_a_contradiction_whose_lookup_fails_books_nothing_and_raises(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup fails: nothing is booked and the error is raised (the endpoint answers 500,
    so the gateway delivers again); a lookup that finds nothing books nothing either."""
    record(kit)
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.gateway_refund_id is not None
    stale = said(sandbox, refund, "failed", failure_code="refund_failed")

    def unreachable(request: GatewayRefundRequest) -> GatewayRefundResult | None:
        raise GatewayTimeout("sandbox: the lookup timed out")

    monkeypatch.setattr(sandbox, "lookup_refund", unreachable)
    before = row_counts(kit)
    with pytest.raises(GatewayTimeout):
        deliver(kit, "sandbox", stale)
    assert row_counts(kit) == before
    monkeypatch.setattr(sandbox, "lookup_refund", lambda request: None)
    deliver(kit, "sandbox", stale)
    assert row_counts(kit) == before
    assert kit.get_refund(refund.id).status is S.SUCCEEDED


# --- a gateway that cannot be asked ---------------------------------------------------------


class BlindSandbox(SandboxGateway):
    """A sandbox without lookup (like Adyen): a contradiction cannot be checked."""

    name = "blind"
    capabilities = Capabilities(
        partial_refunds=True,
        async_outcome=True,
        idempotency_keys=True,
        idempotency_window_hours=24,
        lookup=False,
    )

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        raise AssertionError("capabilities.lookup is False: the kit must not look refunds up")


class BlindPlugin:
    @hookimpl
    def refundkit_register_gateways(self, register: Any) -> None:
        register(BlindSandbox)


@pytest.fixture
def blind_kit(db_url: str, clock: FakeClock, tmp_path: Path) -> Iterator[RefundKit]:
    k = open_kit(
        db_url,
        str(tmp_path / "kit.sandbox.db"),
        clock=clock,
        retry_backoff=0,
        plugins=[BlindPlugin()],
        gateways={"blind": {"path": str(tmp_path / "blind.db"), "clock": clock}},
    )
    yield k
    k.close()


def test_without_lookup_a_late_success_never_resurrects_and_a_late_failure_reverses(
    blind_kit: RefundKit,
) -> None:
    kit = blind_kit
    blind = cast(BlindSandbox, kit.gateway("blind"))
    for pay in ("pay_a", "pay_b"):
        kit.record_payment(id=pay, customer_id="cus_1", amount=usd("50.00"), gateway="blind",
                           gateway_payment_id=f"bl_{pay}")  # fmt: skip
    blind.script("pending_fail", charge="bl_pay_a")
    failed = kit.refund("pay_a", usd("10.00"))
    deliver(kit, "blind", *blind.settle_pending())
    deliver(kit, "blind", said(blind, failed, "succeeded"))  # stale: the failure stands
    assert kit.get_refund(failed.id).status is S.FAILED
    assert "charge.refunded" not in event_types(kit, failed)
    done = kit.refund("pay_b", usd("10.00"))
    assert done.status is S.SUCCEEDED
    deliver(kit, "blind", said(blind, done, "failed", failure_code="refund_failed"))
    # The gateway's word is all there is: the money came back after it was paid out.
    assert kit.get_refund(done.id).status is S.REVERSED
    assert kit.quote("pay_b").max_amount == usd("50.00")


# --- every order -------------------------------------------------------------------------------


def orders(n: int) -> list[tuple[int, ...]]:
    """Every order of ``n`` deliveries, and every order with one of them delivered twice."""
    out = set(itertools.permutations(range(n)))
    for twice in range(n):
        out |= set(itertools.permutations([*range(n), twice]))
    return sorted(out)


#: A refund's life at the sandbox: (scripted outcome, reports in the order the gateway sent
#: them, the statuses the kit may end in, how many charge.refunded it may announce).
LIVES: dict[str, tuple[str, Sequence[str], frozenset[S], frozenset[int]]] = {
    "succeeded": (
        "pending_succeed",
        ("pending", "succeeded"),
        frozenset({S.SUCCEEDED}),
        frozenset({1}),
    ),
    "failed": ("pending_fail", ("pending", "failed"), frozenset({S.FAILED}), frozenset({0})),
    "reversed": (
        "pending_succeed",
        ("pending", "succeeded", "reversed"),
        frozenset({S.REVERSED}),
        frozenset({1}),
    ),
    # Stripe's shape: the refund's status becomes failed after it succeeded. In order it is
    # a reversal of a refund announced; failure first, a refund that failed and is never
    # announced. Either way the money is back.
    "failed_after_success": (
        "pending_succeed",
        ("pending", "succeeded", "failed"),
        frozenset({S.FAILED, S.REVERSED}),
        frozenset({0, 1}),
    ),
}


def _life(
    kit: RefundKit, sandbox: SandboxGateway, pay: str, life: str
) -> tuple[Refund, list[Delivery]]:
    outcome, reports, _, _ = LIVES[life]
    sandbox.script(outcome)
    refund = kit.refund(pay, usd("1.00"))
    assert refund.status is S.PENDING
    assert refund.gateway_refund_id
    deliveries = [said(sandbox, refund, "pending")]
    [settled] = sandbox.settle_pending(refund.gateway_refund_id)
    deliveries.append(settled)
    if "reversed" in reports:
        deliveries.append(sandbox.reverse(refund.gateway_refund_id))
    elif len(reports) == 3:
        deliveries.append(sandbox.fail_after_success(refund.gateway_refund_id))
    assert len(deliveries) == len(reports)
    return refund, deliveries


@pytest.mark.parametrize("life", sorted(LIVES))
def test_every_order_of_a_refunds_webhooks_converges_on_the_gateways_truth(
    kit: RefundKit, sandbox: SandboxGateway, life: str
) -> None:
    """Each delivery order (and each with a delivery repeated) ends in the same place: the
    status the gateway holds, the amount held or released accordingly, a balanced journal,
    at most one charge.refunded and none for a refund the gateway never paid out."""
    _, reports, final, announced = LIVES[life]
    record(kit, amount="100.00")
    made: list[Refund] = []
    for order in orders(len(reports)):
        refund, deliveries = _life(kit, sandbox, "pay_1", life)
        deliver(kit, "sandbox", *(deliveries[i] for i in order))
        after = kit.get_refund(refund.id)
        assert after.status in final, f"order {order}: {after.status}, the gateway says {life}"
        types = event_types(kit, refund)
        assert types.count("charge.refunded") in announced, (order, types)
        if after.status is S.FAILED:
            assert "charge.refunded" not in types, (order, types)
        assert is_balanced(kit.journal(refund.id)), order
        made.append(after)
    payment = kit.payment("pay_1")
    held = sum(r.amount.amount for r in made if r.status.holds_balance)
    refunded = sum(r.amount.amount for r in made if r.status is S.SUCCEEDED)
    assert payment.held == Money(held, "USD")
    assert payment.refunded == Money(refunded, "USD")

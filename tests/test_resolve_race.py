"""A person's decision racing the gateway's webhook (issue 14): the check that a refund is still
in manual review and the person's move are one conditional update, so a decision that comes
second is refused and writes nothing, and a person's "failed" never becomes a reversal.

R-1.8: only the gateway reverses a refund (its REFUNDED_REVERSED); R-2.8: a move's journal and
events are written with it or not at all. Two kits on one store stand for the dashboard where
a person decides and the endpoint that receives the gateway's webhooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier
from typing import cast

import attrs
import pytest

from refundkit import Refund, RefundKit, RefundStatus, ResolutionRefused
from refundkit._ledger import is_balanced
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import open_kit, record, usd

S = RefundStatus
#: Rounds in CI (issue 14); odd rounds race freely, even ones land the webhook between the
#: person's check and the person's write.
ROUNDS = 200
WAIT = 20.0
Delivery = tuple[dict[str, str], bytes]


@attrs.define
class Desk:
    """The person's dashboard and the webhook endpoint, on one store and one sandbox."""

    person: RefundKit
    webhooks: RefundKit
    pool: ThreadPoolExecutor

    @property
    def sandbox(self) -> SandboxGateway:
        return cast(SandboxGateway, self.person.gateway("sandbox"))


@pytest.fixture
def desk(db_url: str, sandbox_path: str) -> Iterator[Desk]:
    # One recovery attempt, then manual review.
    options = {"retry_backoff": 0, "retry_schedule": [timedelta(minutes=5)]}
    d = Desk(
        open_kit(db_url, sandbox_path, **options),
        open_kit(db_url, sandbox_path, **options),
        ThreadPoolExecutor(max_workers=2),
    )
    yield d
    d.pool.shutdown()
    d.person.close()
    d.webhooks.close()


def in_review_then_settled(desk: Desk, i: int) -> tuple[str, str, Delivery]:
    """A refund pending at the gateway that recovery handed to a person (manual_review), and
    the signed webhook in which the gateway then says it succeeded: (payment, refund, it)."""
    pid = f"pay_{i}"
    record(desk.person, pid, "5.00")
    refund = desk.person.refund(pid, usd("1.92"))  # .92: pending, succeeds when settled
    desk.person.recover(pid, force=True)  # the only attempt finds it pending: manual_review
    assert desk.person.get_refund(refund.id).status is S.MANUAL_REVIEW
    assert refund.gateway_refund_id is not None
    [delivery] = desk.sandbox.settle_pending(refund.gateway_refund_id)
    return pid, refund.id, delivery


def decide_failed(desk: Desk, rid: str) -> Refund | ResolutionRefused:
    try:
        # Forced: the person decides without asking the gateway (it was down, say).
        return desk.person.resolve(rid, "failed", actor="ann", note="not seen", force=True)
    except ResolutionRefused as exc:
        return exc


def webhook_inside_the_decision(desk: Desk, rid: str, delivery: Delivery) -> Refund | Exception:
    """The webhook is applied after the person's decision was checked, before it is written."""

    def checkpoint(name: str) -> None:
        if name == "decided":
            desk.webhooks.handle_gateway_webhook("sandbox", *delivery)

    desk.person.runtime.checkpoint = checkpoint
    try:
        return decide_failed(desk, rid)
    finally:
        desk.person.runtime.checkpoint = lambda _name: None


def free_race(desk: Desk, rid: str, delivery: Delivery) -> Refund | Exception:
    """The decision and the webhook, started together in two threads."""
    start = Barrier(2)

    def go(action: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            start.wait(WAIT)
            return action()

        return run

    decision: Future[object] = desk.pool.submit(go(lambda: decide_failed(desk, rid)))
    webhook = desk.pool.submit(
        go(lambda: desk.webhooks.handle_gateway_webhook("sandbox", *delivery))
    )
    webhook.result(WAIT)
    return cast(Refund | Exception, decision.result(WAIT))


def check_round(desk: Desk, pid: str, rid: str, decided: Refund | Exception) -> str:
    """Whoever came first decided alone; the other wrote nothing. Which one it was."""
    kit = desk.person
    refund = kit.get_refund(rid)
    types = [e.type for e in kit.events(refund_id=rid)]
    payment = kit.payment(pid)
    assert refund.status is not S.REVERSED, "a person's 'failed' became a reversal"
    assert "refund.reversed" not in types
    if isinstance(decided, ResolutionRefused):  # the webhook first: as if no one had decided
        assert refund.status is S.SUCCEEDED
        assert kit.resolution(rid) is None
        assert types == ["refund.pending", "charge.refunded"]
        lines = kit.journal(rid)
        assert len(lines) == 2
        assert is_balanced(lines)
        assert payment.held == payment.refunded == usd("1.92")
        return "webhook"
    assert isinstance(decided, Refund), decided
    assert decided.status is refund.status is S.FAILED
    resolution = kit.resolution(rid)
    assert resolution is not None
    assert resolution["status"] == "failed"
    assert types == ["refund.pending", "refund.failed"]
    assert kit.journal(rid) == []
    assert payment.held == payment.refunded == usd("0.00")
    return "person"


def test_r1_8_a_persons_failed_never_reverses_a_refund_the_gateway_made(desk: Desk) -> None:
    """200 rounds of ``resolve(.., "failed")`` against the gateway's success webhook: no
    refund ends ``reversed``; a decision that comes second raises ``ResolutionRefused`` and
    leaves exactly what the webhook alone leaves (no resolution, event or journal of its own);
    one that comes first fails the refund and the webhook changes nothing after it."""
    first: dict[str, int] = {"webhook": 0, "person": 0}
    for i in range(ROUNDS):
        pid, rid, delivery = in_review_then_settled(desk, i)
        if i % 2 == 0:
            decided = webhook_inside_the_decision(desk, rid, delivery)
            assert isinstance(decided, ResolutionRefused)
        else:
            decided = free_race(desk, rid, delivery)
        first[check_round(desk, pid, rid, decided)] += 1
    assert first["webhook"] >= ROUNDS // 2

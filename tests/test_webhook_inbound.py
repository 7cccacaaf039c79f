"""Inbound gateway webhooks through the ASGI app, with httpx as the client (R-1.8, R-4.4,
R-4.6): applied once however often delivered, 400 and no change for a bad or missing
signature, 200 (logged) for a refund refundkit does not know.

The checks live in ``refundkit.testing.inbound`` so every gateway plugin runs the same ones
(``plugins/refundkit-*/tests/test_*_inbound.py``). Here each gateway built into refundkit is
one entry of ``ARRANGE``: a function that makes a refund in the kit whose outcome arrives by
webhook and returns the ``InboundCase`` (that webhook as the gateway signs it, plus a signed
webhook about a refund the kit has never seen).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from refundkit import RefundKit, RefundStatus
from refundkit.asgi import webhook_app
from refundkit.gateways.sandbox import SandboxGateway
from refundkit.testing.inbound import (
    BAD_SIGNATURES,
    InboundCase,
    check_applied_once,
    check_refused,
    check_unknown_refund,
    post_webhook,
)

from .conftest import FakeClock, record, usd


def arrange_sandbox(kit: RefundKit, tmp_path: Path, clock: FakeClock) -> InboundCase:
    sandbox = cast(SandboxGateway, kit.gateway("sandbox"))
    record(kit)
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is RefundStatus.PENDING
    [delivery] = sandbox.settle_pending()
    # A refund made through another store against the same sandbox account.
    path = sandbox.config["path"]
    with RefundKit.open(
        f"sqlite:///{tmp_path / 'other.db'}",
        autoload=False,
        clock=clock,
        gateways={"sandbox": {"path": path}},
    ) as other:
        record(other, "pay_other")
        cast(SandboxGateway, other.gateway("sandbox")).script("pending_succeed")
        other.refund("pay_other", usd("1.00"))
        [unknown] = cast(SandboxGateway, other.gateway("sandbox")).settle_pending()
    return InboundCase("sandbox", refund.id, delivery, RefundStatus.SUCCEEDED, unknown)


#: One entry per gateway built into refundkit (name -> arrange function); the plugins run the
#: same checks from their own tests.
ARRANGE: dict[str, Callable[[RefundKit, Path, FakeClock], InboundCase]] = {
    "sandbox": arrange_sandbox,
}


@pytest.fixture(params=sorted(ARRANGE))
def gateway(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture
def arranged(kit: RefundKit, tmp_path: Path, clock: FakeClock, gateway: str) -> InboundCase:
    return ARRANGE[gateway](kit, tmp_path, clock)


def test_webhook_applies_once_even_when_delivered_twice(
    kit: RefundKit, arranged: InboundCase
) -> None:
    """R-1.8: a duplicate webhook is a no-op (no row changed, no event)."""
    check_applied_once(kit, arranged)


@pytest.mark.parametrize("how", BAD_SIGNATURES)
def test_bad_or_missing_signature_is_400_and_changes_nothing(
    kit: RefundKit, arranged: InboundCase, how: str
) -> None:
    """R-4.4: tampered, unsigned or signature-stripped: 400, a webhook_* code, no change."""
    check_refused(kit, arranged, how)
    assert kit.get_refund(arranged.refund_id).status is RefundStatus.PENDING


def test_unknown_refund_is_logged_and_acknowledged(kit: RefundKit, arranged: InboundCase) -> None:
    check_unknown_refund(kit, arranged)


def test_unknown_gateway_is_404(kit: RefundKit) -> None:
    response = post_webhook(kit, "nope", ({}, b"{}"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_gateway"


def test_only_post_under_webhooks(kit: RefundKit) -> None:
    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=webhook_app(kit))
        async with httpx.AsyncClient(transport=transport, base_url="http://refundkit") as c:
            return [
                (await c.get("/webhooks/sandbox")).status_code,
                (await c.post("/hooks/sandbox", content=b"{}")).status_code,
            ]

    assert asyncio.run(go()) == [405, 404]


def test_a_failure_while_applying_is_500_so_the_gateway_retries(
    kit: RefundKit, arranged: InboundCase, gateway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(kit, "handle_gateway_webhook", broken)
    assert post_webhook(kit, gateway, arranged.delivery).status_code == 500

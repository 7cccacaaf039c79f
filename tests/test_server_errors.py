"""R-2.4 for every gateway: only an answer that proves the gateway did not act releases a
reservation (DESIGN "Gateway truth"; issue 15). A 5xx may come after the refund was made,
whatever its body says, so the refund stays ``unknown`` and held until recovery looks it up.

The sandbox answers with a scripted HTTP error (``script_http_error``) and reads it the way a
plugin reads its SDK's errors (``SandboxGateway.http_error``: the status before the body).
"""

from __future__ import annotations

import pytest

from refundkit import (
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    InvalidInput,
    RefundKit,
    RefundStatus,
)
from refundkit._engine.outcomes import releases
from refundkit.gateways.sandbox import ERROR_CODES, SandboxGateway

from .conftest import FakeClock, record, usd

S = RefundStatus
REFUSAL_BODY = SandboxGateway.error_body("amount_too_large", "at most 0.00 USD can be refunded")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
def test_r2_4_a_5xx_whatever_its_body_holds_the_refund_until_it_is_looked_up(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock, status: int, applied: bool
) -> None:
    """The body names a definite refusal (``amount_too_large``); the status says the gateway
    failed while handling the request, maybe after making the refund. Held, then found."""
    record(kit)
    sandbox.script_http_error(status, REFUSAL_BODY, applied=applied)
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is S.UNKNOWN
    assert refund.failure_code == "timeout"
    assert kit.quote("pay_1").max_amount == usd("40.00"), "a 5xx must not release the amount"
    clock.advance(minutes=3)  # past the in-flight timeout: a lookup that finds nothing re-sends
    kit.recover(force=True)
    assert kit.get_refund(refund.id).status is S.SUCCEEDED
    assert sandbox.refund_count() == 1, "made once, whether or not the 5xx came after it"
    assert kit.quote("pay_1").max_amount == usd("40.00")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, GatewayDeclined),
        (422, GatewayDeclined),
        (401, GatewayAuthenticationError),
        (403, GatewayAuthenticationError),
        (404, GatewayPaymentNotFound),
        (429, GatewayRateLimited),
        (409, GatewayTimeout),
        (500, GatewayTimeout),
        (599, GatewayTimeout),
    ],
)
def test_the_sandbox_reads_the_status_before_the_body(
    status: int, error: type[GatewayError]
) -> None:
    gateway = SandboxGateway({"path": ":memory:"})
    for body in (REFUSAL_BODY, b"", b"<html>bad gateway</html>"):
        exc = gateway.http_error(status, body)
        assert type(exc) is error, (status, body, exc)
        assert releases(exc) is (status not in (409, 500, 599))
    assert gateway.http_error(500, REFUSAL_BODY).gateway_code == "amount_too_large"
    assert gateway.http_error(502, b"").gateway_code == "http_502"
    assert set(ERROR_CODES) >= {"amount_too_large", "refund_declined", "resource_missing"}


def test_script_http_error_refuses_what_is_not_an_http_error(kit: RefundKit) -> None:
    sandbox = kit.gateway("sandbox")
    assert isinstance(sandbox, SandboxGateway)
    for status in (200, 302, 600, "500"):
        with pytest.raises(InvalidInput):
            sandbox.script_http_error(status)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        sandbox.script_http_error(500, "text")  # type: ignore[arg-type]


def test_a_4xx_is_a_definite_refusal_and_releases_the_amount(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    sandbox.script_http_error(400, SandboxGateway.error_body("refund_declined", "no"))
    with pytest.raises(GatewayDeclined) as info:
        kit.refund("pay_1", usd("10.00"))
    assert info.value.gateway_code == "refund_declined"
    assert info.value.refund is not None
    assert info.value.refund.status is S.FAILED
    assert kit.quote("pay_1").max_amount == usd("50.00")
    assert sandbox.refund_count() == 0


def test_the_release_rule_is_the_table_of_definite_refusals() -> None:
    assert releases(GatewayDeclined("no"))
    assert releases(GatewayRateLimited("slow down"))
    assert not releases(GatewayTimeout("maybe"))
    assert not releases(GatewayError("vague"))
    assert not releases(RuntimeError("a plugin bug"))

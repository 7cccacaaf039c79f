"""Bad inputs, "Webhooks and events" (reliability.md): through ``kit.handle_gateway_webhook``.

Every refused delivery raises ``WebhookVerificationError`` (code ``webhook_verification_failed``)
and writes nothing: no table gains or loses a row and the refund keeps its status. A correctly
signed body that is not the gateway's event raises ``WebhookUnprocessable`` instead (the ASGI
receiver acknowledges and records it: tests/test_webhook_unprocessable.py), writing nothing
either. Accepted
oddities (header case, a rotated second signature, redelivery, reordering) change the state
once. The sandbox signs like Stripe (``t=…,v1=…``; HMAC-SHA256 over ``t.body``).
"""

from __future__ import annotations

import json
import re

import pytest

from refundkit import RefundKit, RefundStatus
from refundkit._errors import RefundkitError, WebhookUnprocessable, WebhookVerificationError
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, record, row_counts, usd

H = "sandbox-signature"


@pytest.fixture
def pending(kit: RefundKit, sandbox: SandboxGateway) -> tuple[dict[str, str], bytes]:
    """A pending refund and the signed webhook that settles it (not yet delivered)."""
    record(kit)
    sandbox.script("pending_succeed")
    kit.refund("pay_1", usd("10.00"))
    [delivery] = sandbox.settle_pending()
    return delivery


def refused(
    kit: RefundKit,
    headers: dict[str, str],
    body: bytes,
    error: type[RefundkitError] = WebhookVerificationError,
) -> None:
    before = row_counts(kit)
    statuses = [r.status for r in kit.refunds()]
    with pytest.raises(error) as info:
        kit.handle_gateway_webhook("sandbox", headers, body)
    assert info.value.code == error.code
    assert "\n" not in str(info.value)
    assert row_counts(kit) == before
    assert [r.status for r in kit.refunds()] == statuses


def unprocessable(kit: RefundKit, headers: dict[str, str], body: bytes) -> None:
    """Authentic (the signature holds) but not the gateway's event: nothing written."""
    refused(kit, headers, body, WebhookUnprocessable)


def _parts(headers: dict[str, str]) -> tuple[str, str]:
    t, v1 = headers[H].split(",")
    return t, v1


BAD_HEADERS = {
    "missing": lambda h: {},
    "empty": lambda h: {H: ""},
    "garbage": lambda h: {H: "garbage"},
    "v1,@@@": lambda h: {H: "v1,@@@"},
    "v1a only": lambda h: {H: _parts(h)[0] + "," + _parts(h)[1].replace("v1=", "v1a=")},
    "v2 only": lambda h: {H: _parts(h)[0] + "," + _parts(h)[1].replace("v1=", "v2=")},
    "no t": lambda h: {H: _parts(h)[1]},
    "timestamp in ms": lambda h: {
        H: _parts(h)[0] + "000," + _parts(h)[1],
    },
    "timestamp float": lambda h: {H: _parts(h)[0] + ".0," + _parts(h)[1]},
    "timestamp nan": lambda h: {H: "t=nan," + _parts(h)[1]},
    "timestamp negative": lambda h: {H: "t=-1," + _parts(h)[1]},
    "signature truncated": lambda h: {H: h[H][:-1]},
    "signature upper-cased": lambda h: {H: _parts(h)[0] + "," + _parts(h)[1].upper()},
}


@pytest.mark.parametrize("make", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_bad_signature_headers_are_refused_and_write_nothing(
    kit: RefundKit, pending: tuple[dict[str, str], bytes], make: object
) -> None:
    headers, body = pending
    refused(kit, make(headers), body)  # type: ignore[operator]


BAD_BODIES = {
    "empty": lambda b: b"",
    "BOM": lambda b: b"\xef\xbb\xbf" + b,
    "CRLF": lambda b: b + b"\r\n",
    "re-serialised (spacing)": lambda b: json.dumps(json.loads(b)).encode(),
    "re-serialised (key order)": lambda b: json.dumps(json.loads(b), sort_keys=True).encode(),
    "unicode escapes": lambda b: b.replace(b"refund.updated", b"refund.\\u0075pdated"),
    "not JSON (signed)": None,
}


@pytest.mark.parametrize("make", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_altered_bodies_are_refused_and_write_nothing(
    kit: RefundKit,
    sandbox: SandboxGateway,
    clock: FakeClock,
    pending: tuple[dict[str, str], bytes],
    make: object,
) -> None:
    headers, body = pending
    if make is None:  # correctly signed, but garbage: refused by the parser, not the HMAC
        garbage = b"NaN"
        unprocessable(kit, {H: sandbox.sign(garbage, int(clock.now.timestamp()))}, garbage)
        return
    refused(kit, headers, make(body))  # type: ignore[operator]


@pytest.mark.parametrize("seconds", [-301, 301])
def test_timestamps_301_s_away_are_refused(
    kit: RefundKit, clock: FakeClock, pending: tuple[dict[str, str], bytes], seconds: int
) -> None:
    headers, body = pending
    clock.advance(seconds=seconds)
    refused(kit, headers, body)


@pytest.mark.parametrize("seconds", [-300, 300])
def test_timestamps_300_s_away_pass(
    kit: RefundKit, clock: FakeClock, pending: tuple[dict[str, str], bytes], seconds: int
) -> None:
    headers, body = pending
    clock.advance(seconds=seconds)
    [refund] = kit.handle_gateway_webhook("sandbox", headers, body)
    assert refund.status is RefundStatus.SUCCEEDED


def test_upper_case_header_and_a_valid_second_signature_are_accepted(
    kit: RefundKit, pending: tuple[dict[str, str], bytes]
) -> None:
    headers, body = pending
    t, v1 = _parts(headers)
    rotated = {"SANDBOX-SIGNATURE": f"{t},v1={'0' * 64}, {v1}"}
    [refund] = kit.handle_gateway_webhook("sandbox", rotated, body)
    assert refund.status is RefundStatus.SUCCEEDED


def test_a_redelivery_six_minutes_later_with_a_fresh_timestamp_changes_nothing(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock, pending: tuple[dict[str, str], bytes]
) -> None:
    headers, body = pending
    kit.handle_gateway_webhook("sandbox", headers, body)
    after_first = row_counts(kit)
    clock.advance(minutes=6)
    fresh = {H: sandbox.sign(body, int(clock.now.timestamp()))}
    [refund] = kit.handle_gateway_webhook("sandbox", fresh, body)
    assert refund.status is RefundStatus.SUCCEEDED
    assert row_counts(kit) == after_first
    assert [e.type for e in kit.events()] == ["refund.pending", "charge.refunded"]


def test_an_out_of_order_update_does_not_move_a_refund_backwards(
    kit: RefundKit, sandbox: SandboxGateway, pending: tuple[dict[str, str], bytes]
) -> None:
    settled_headers, settled_body = pending
    [refund] = kit.refunds()
    assert refund.gateway_refund_id is not None
    reversed_headers, reversed_body = sandbox.reverse(refund.gateway_refund_id)
    kit.handle_gateway_webhook("sandbox", settled_headers, settled_body)
    kit.handle_gateway_webhook("sandbox", reversed_headers, reversed_body)
    counts = row_counts(kit)
    # The older "succeeded" arrives again after the reversal: nothing moves back.
    [late] = kit.handle_gateway_webhook("sandbox", settled_headers, settled_body)
    assert late.status is RefundStatus.REVERSED
    assert row_counts(kit) == counts


@pytest.mark.parametrize(
    "amount",
    [b"1e2", b"100.0", b"NaN", b"Infinity", b"12345678901234567890.12", b"true", b'"1000"'],
)
def test_json_amounts_that_are_not_integers_are_refused(
    kit: RefundKit,
    sandbox: SandboxGateway,
    clock: FakeClock,
    pending: tuple[dict[str, str], bytes],
    amount: bytes,
) -> None:
    """JSON ``1e2``/``100.0`` parse as floats, bare ``NaN`` is accepted by json.loads: a
    correctly signed webhook carrying one is still refused (unprocessable), and nothing is
    written."""
    _, body = pending
    bad = re.sub(rb'"amount":\d+', b'"amount":' + amount, body)
    assert bad != body
    unprocessable(kit, {H: sandbox.sign(bad, int(clock.now.timestamp()))}, bad)

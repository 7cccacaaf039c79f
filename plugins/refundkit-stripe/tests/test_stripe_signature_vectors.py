"""The hand-written ``Stripe-Signature`` check agrees with the SDK's
``stripe.WebhookSignature.verify_header`` on the cases of stripe-python's own tests
(``tests/test_webhook.py``: its payload and secret, MIT), issue 15.

The plugin keeps its own verifier: it reads the time from the gateway's injectable clock (the
SDK reads ``time.time()``, and skips the tolerance check when none is given), so these tests pin
both to the same verdict wherever the SDK checks the same thing.
"""

from __future__ import annotations

import time
from typing import Final

import pytest
import stripe
from refundkit_stripe._webhooks import DEFAULT_TOLERANCE, sign, verify

from refundkit import WebhookVerificationError

#: stripe-python tests/test_webhook.py: DUMMY_WEBHOOK_PAYLOAD and DUMMY_WEBHOOK_SECRET.
PAYLOAD: Final = """{
  "id": "evt_test_webhook",
  "object": "event",
  "data": { "object": { "id": "rdr_123", "object": "terminal.reader" } }
}"""
SECRET: Final = "whsec_test_secret"


def _sdk(header: str, tolerance: int, payload: str = PAYLOAD) -> bool:
    try:
        stripe.WebhookSignature.verify_header(payload, header, SECRET, tolerance=tolerance)
    except stripe.SignatureVerificationError:
        return False
    return True


def _ours(header: str, tolerance: int, now: float, payload: str = PAYLOAD) -> bool:
    try:
        verify({"Stripe-Signature": header}, payload.encode(), SECRET, now, tolerance)
    except WebhookVerificationError:
        return False
    return True


def _cases(now: int) -> list[tuple[str, str, bool]]:
    good = sign(PAYLOAD.encode(), SECRET, now)
    return [
        ("valid header and signature", good, True),
        ("a valid signature among bad ones", good + ",v1=bad_signature", True),
        ("only the v0 scheme", good.replace("v1=", "v0="), False),
        ("no valid signature for the payload", f"t={now},v1=bad_signature", False),
        ("a malformed header", "i'm not even a real signature header", False),
        ("another endpoint's secret", sign(PAYLOAD.encode(), "whsec_other_secret", now), False),
        ("outside the tolerance", sign(PAYLOAD.encode(), SECRET, now - 15), False),
    ]


@pytest.mark.parametrize("index", range(7))
def test_same_verdict_as_the_sdk(index: int) -> None:
    now = int(time.time())
    name, header, expected = _cases(now)[index]
    assert _sdk(header, tolerance=10) is expected, name
    assert _ours(header, tolerance=10, now=now) is expected, name


def test_the_sdk_computes_the_same_signature() -> None:
    now = int(time.time())
    ours = sign(PAYLOAD.encode(), SECRET, now).split("v1=", 1)[1]
    assert stripe.WebhookSignature._compute_signature(f"{now}.{PAYLOAD}", SECRET) == ours


def test_a_changed_payload_fails_both() -> None:
    now = int(time.time())
    header = sign(PAYLOAD.encode(), SECRET, now)
    changed = PAYLOAD.replace("rdr_123", "rdr_124")
    assert _sdk(header, 10, changed) is False
    assert _ours(header, 10, now, changed) is False


def test_ours_always_checks_the_timestamp() -> None:
    """Where the SDK checks no tolerance (none given), the plugin still refuses an old
    delivery: it always applies webhook_tolerance (300 s by default)."""
    header = sign(PAYLOAD.encode(), SECRET, 12345)
    assert stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET)
    assert _ours(header, DEFAULT_TOLERANCE, now=time.time()) is False

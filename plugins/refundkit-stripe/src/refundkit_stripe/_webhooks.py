"""Stripe's webhook signature scheme, verified against an injectable clock (no SDK needed).

``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">[,v1=...]``, the
secret being the endpoint's ``whsec_...`` signing secret. A delivery whose ``t`` is more than
``tolerance`` seconds from the clock is refused: a replayed old delivery must not apply.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

from refundkit import WebhookUnprocessable, WebhookVerificationError

SIGNATURE_HEADER: Final = "stripe-signature"
DEFAULT_TOLERANCE: Final = 300


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header Stripe sends for ``body`` at ``timestamp``."""
    return f"t={timestamp},v1={_digest(body, secret, timestamp)}"


def verify(
    headers: Mapping[str, str], body: bytes, secret: str, now: float, tolerance: int
) -> dict[str, Any]:
    """The event in ``body`` if ``headers`` carry a valid, fresh signature; else raise
    (``WebhookVerificationError``; a signed body that is not an event: ``WebhookUnprocessable``)."""
    header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
    if not header:
        raise WebhookVerificationError("stripe webhook has no Stripe-Signature header")
    timestamp, signatures = _parse(header)
    expected = _digest(body, secret, timestamp)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookVerificationError("stripe webhook signature does not match")
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"stripe webhook signed at {timestamp} is more than {tolerance} s from now"
        )
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookUnprocessable("stripe webhook body is not JSON") from None
    if not (isinstance(event, dict) and event.get("object") == "event"):
        raise WebhookUnprocessable("stripe webhook body is not an event")
    return event


def _digest(body: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookVerificationError("stripe webhook signature header is malformed")
    return timestamp, signatures

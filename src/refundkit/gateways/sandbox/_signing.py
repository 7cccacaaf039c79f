"""How the sandbox signs the webhooks it sends and verifies those it receives.

The header is ``sandbox-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``,
the scheme Stripe uses.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Final

from ..._errors import ConfigurationError, WebhookVerificationError
from ._books import EPOCH

DEFAULT_WEBHOOK_SECRET: Final = "sandbox-webhook-secret"
SIGNATURE_HEADER: Final = "sandbox-signature"
#: Most seconds a webhook's timestamp may be away from the sandbox clock.
WEBHOOK_TOLERANCE_SECONDS: Final = 300


def seconds(moment: datetime) -> int:
    """Whole unix seconds, as webhook timestamps carry them."""
    return (moment - EPOCH) // timedelta(seconds=1)


class WebhookSigner:
    """The HMAC of one sandbox's ``webhook_secret``."""

    def __init__(self, secret: object) -> None:
        if not isinstance(secret, str) or not secret:
            raise ConfigurationError("sandbox webhook_secret must be a non-empty string")
        self._secret = secret.encode()

    def sign(self, body: bytes, timestamp: int) -> str:
        """The ``sandbox-signature`` header value for ``body`` sent at ``timestamp`` (unix s)."""
        return f"t={timestamp},v1={self._digest(body, timestamp)}"

    def _digest(self, body: bytes, timestamp: int) -> str:
        signed = f"{timestamp}.".encode() + body
        return hmac.new(self._secret, signed, hashlib.sha256).hexdigest()

    def verify(self, headers: Mapping[str, str], body: bytes, now: Callable[[], datetime]) -> None:
        """Raise ``WebhookVerificationError`` unless ``body`` carries a good, timely signature.

        ``now`` is asked only once the signature matched, so a forged delivery never reaches
        the clock.
        """
        header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
        if header is None:
            raise WebhookVerificationError(f"webhook has no {SIGNATURE_HEADER} header")
        timestamp, signatures = _parse_signature(header)
        expected = self._digest(body, timestamp).encode()
        # Several v1 entries are allowed (secret rotation); compare each in constant time.
        if not any(hmac.compare_digest(expected, s.encode()) for s in signatures):
            raise WebhookVerificationError("sandbox webhook signature does not match")
        if abs(seconds(now()) - timestamp) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookVerificationError(
                f"sandbox webhook timestamp is more than {WEBHOOK_TOLERANCE_SECONDS} s away"
            )


def _parse_signature(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookVerificationError(f"garbled {SIGNATURE_HEADER} header")
        if key == "t":
            if not value.isascii() or not value.isdigit():
                raise WebhookVerificationError(f"garbled timestamp in {SIGNATURE_HEADER}")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookVerificationError(f"{SIGNATURE_HEADER} needs t= and v1=")
    return timestamp, signatures

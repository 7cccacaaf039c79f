"""Standard Webhooks signing and verification, for refundkit's outgoing webhooks and consumers.

``verify(headers, body, secret)`` is what a consumer calls on every delivery (docs/webhooks.md).
It wraps the ``standardwebhooks`` package, which computes the signature, but reads the headers
itself first: the package raises a bare ``ValueError`` for a signature header without a comma or
with a double space, accepts float timestamps and reads the clock itself. Here every malformed
header raises a ``WebhookVerificationError`` subclass with a stable code (R-4.4), the clock is
injectable, and several secrets (rotation) or several signatures are accepted.

Importing this module imports no HTTP library.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets as _secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from ._errors import (
    InvalidInput,
    InvalidWebhookSecret,
    WebhookHeaderMalformed,
    WebhookHeaderMissing,
    WebhookSignatureMismatch,
    WebhookTimestampOutOfTolerance,
)

__all__ = [
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_SECONDS",
    "check_secret",
    "new_secret",
    "sign",
    "signed_headers",
    "verify",
]

ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"
#: Most seconds a timestamp may be away from now: 300 passes, 301 fails.
TOLERANCE_SECONDS: Final = 300

_HEADERS = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
# Printable ASCII without space; no '.', which separates the signed parts.
_ID_RE = re.compile(r"[\x21-\x2d\x2f-\x7e]{1,255}", re.ASCII)
# Integer seconds only: no sign, fraction, exponent, 'nan' or non-ASCII digits; at most 10
# digits, so a millisecond timestamp is refused as such.
_TS_RE = re.compile(r"[0-9]{1,10}", re.ASCII)
_VERSION_RE = re.compile(r"v[0-9]+[a-z]*", re.ASCII)
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}", re.ASCII)
_SIGNATURE_BYTES = 32  # HMAC-SHA256


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and 32 random bytes in base64 (R-4.3)."""
    return "whsec_" + base64.b64encode(_secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``body`` (the exact bytes sent) for one attempt."""
    _check_id(msg_id)
    when = _as_datetime(_check_epoch(timestamp))
    signature: str = _webhook(secret).sign(msg_id, when, _text(body))
    return signature


def signed_headers(
    secrets: str | Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per secret (rotation), space-separated."""
    keys = _keys(secrets)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(k, msg_id, timestamp, body) for k in keys),
    }


def verify(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]] | None,
    body: bytes,
    secret: str | Sequence[str],
    *,
    now: datetime | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> Any:
    """Check a delivery against the raw ``body`` bytes; return the parsed JSON payload.

    ``secret`` may be several secrets (during a rotation any one may match). ``headers`` may be
    a mapping or (name, value) pairs; names are case-insensitive and each may appear once.
    Raises ``WebhookHeaderMissing``, ``WebhookHeaderMalformed``,
    ``WebhookTimestampOutOfTolerance`` or ``WebhookSignatureMismatch`` (all
    ``WebhookVerificationError``), and ``InvalidWebhookSecret`` for an unusable secret.
    """
    hooks = [_webhook(k) for k in _keys(secret)]  # a bad secret is the caller's error: first
    now = _check_now(now, tolerance)
    found = _read_headers(headers)
    msg_id, ts_text, sig_text = (found[name] for name in _HEADERS)
    _check_id(msg_id)
    timestamp = _check_timestamp(ts_text, now, tolerance)
    candidates = _v1_signatures(sig_text)
    text = _text(body)
    for hook in hooks:
        expected = base64.b64decode(hook.sign(msg_id, _as_datetime(timestamp), text)[3:])
        # Every candidate is compared, in constant time.
        if any(hmac.compare_digest(expected, c) for c in candidates):
            try:
                return json.loads(text)
            except ValueError:
                raise WebhookHeaderMalformed("the webhook body is not JSON") from None
    raise WebhookSignatureMismatch("no webhook-signature matches the secret")


def _keys(secrets: object) -> list[Any]:
    """One secret or several (a rotation); each is checked where it is used."""
    if isinstance(secrets, str):
        return [secrets]
    if not isinstance(secrets, Iterable) or isinstance(secrets, bytes | bytearray | Mapping):
        raise InvalidWebhookSecret("a webhook secret is a string, or a list of them (rotation)")
    keys = list(secrets)
    if not keys:
        raise InvalidWebhookSecret("at least one webhook secret is needed")
    return keys


def _check_now(now: object, tolerance: object) -> datetime:
    if type(tolerance) is not int or not 0 <= tolerance <= _MAX_EPOCH:
        raise InvalidInput("tolerance is a whole number of seconds, 0 or more")
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime):
        raise InvalidInput(f"now must be a datetime, not {type(now).__name__}")
    return now


def _check_epoch(timestamp: object) -> int:
    if type(timestamp) is not int or not 0 <= timestamp <= _MAX_EPOCH:
        raise InvalidInput("a webhook timestamp is whole seconds since the epoch (10 digits)")
    return timestamp


# --- reading the headers ----------------------------------------------------------------------

#: The most a ``webhook-timestamp`` may be: 10 digits.
_MAX_EPOCH = 10**10 - 1
_NOT_HEADERS = "the webhook headers must be a mapping or (name, value) pairs of strings"


def _read_headers(headers: object) -> dict[str, str]:
    """The three headers, by lower-cased name. ``None`` is no headers at all; names and
    values may be str, or bytes as ASGI gives them (read as Latin-1, as HTTP has them)."""
    found: dict[str, str] = {}
    for name, value in _pairs(headers):
        key = name.lower()
        if key not in _HEADERS:
            continue
        if key in found:
            raise WebhookHeaderMalformed(f"the {key} header appears more than once")
        found[key] = value
    for key in _HEADERS:
        if not found.get(key):
            raise WebhookHeaderMissing(f"the {key} header is missing")
    return found


def _pairs(headers: object) -> Iterable[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        items: Iterable[Any] = headers.items()
    elif isinstance(headers, Iterable) and not isinstance(headers, str | bytes | bytearray):
        items = headers
    else:
        raise WebhookHeaderMalformed(_NOT_HEADERS)
    return [_pair(item) for item in items]


def _pair(item: object) -> tuple[str, str]:
    if not isinstance(item, tuple | list) or len(item) != 2:
        raise WebhookHeaderMalformed(_NOT_HEADERS)
    name, value = (
        bytes(part).decode("latin-1") if isinstance(part, bytes | bytearray) else part
        for part in item
    )
    if not isinstance(name, str) or not isinstance(value, str):
        raise WebhookHeaderMalformed(_NOT_HEADERS)
    return name, value


def _check_id(msg_id: object) -> None:
    if not isinstance(msg_id, str) or not _ID_RE.fullmatch(msg_id):
        raise WebhookHeaderMalformed(
            "webhook-id must be 1-255 printable ASCII characters without spaces or '.'"
        )


def _check_timestamp(text: str, now: datetime, tolerance: int) -> int:
    if not _TS_RE.fullmatch(text):
        raise WebhookHeaderMalformed("webhook-timestamp must be integer seconds since the epoch")
    timestamp = int(text)
    drift = timestamp - int(now.timestamp())
    if abs(drift) > tolerance:
        when = "old" if drift < 0 else "new"
        raise WebhookTimestampOutOfTolerance(
            f"webhook-timestamp is {abs(drift)} s too {when} (tolerance {tolerance} s)"
        )
    return timestamp


def _v1_signatures(text: str) -> list[bytes]:
    """The decoded ``v1`` signatures; other versions are skipped, as the spec asks."""
    found: list[bytes] = []
    for part in text.split(" "):
        version, comma, value = part.partition(",")
        if not comma or not _VERSION_RE.fullmatch(version) or not value:
            raise WebhookHeaderMalformed(
                "webhook-signature must be space-separated 'v1,<base64>' entries"
            )
        if version != "v1":
            continue
        raw = _b64(value)
        if raw is None or len(raw) != _SIGNATURE_BYTES:
            raise WebhookHeaderMalformed("a v1 webhook-signature is not a base64 HMAC-SHA256")
        found.append(raw)
    if not found:
        raise WebhookSignatureMismatch("webhook-signature has no v1 signature")
    return found


def _b64(value: str) -> bytes | None:
    if not _B64_RE.fullmatch(value):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return None


# --- the standardwebhooks package -------------------------------------------------------------


def check_secret(secret: str) -> None:
    """Raise ``InvalidWebhookSecret`` unless ``secret`` is a usable signing secret
    (``whsec_`` + base64, or bare base64)."""
    _webhook(secret)


def _webhook(secret: str) -> Any:
    from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

    if not isinstance(secret, str):
        raise InvalidWebhookSecret("a webhook secret is a string ('whsec_' + base64)")
    try:
        return Webhook(secret)
    except (EmptyWebhookSecretError, binascii.Error, ValueError):
        raise InvalidWebhookSecret("a webhook secret must be non-empty base64") from None


def _as_datetime(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _text(body: bytes) -> str:
    # The package signs text; strict UTF-8 decoding gives back exactly the bytes sent.
    if not isinstance(body, bytes | bytearray):
        raise WebhookHeaderMalformed(
            f"the webhook body must be the raw bytes received, not {type(body).__name__}"
        )
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookHeaderMalformed("the webhook body is not UTF-8") from None

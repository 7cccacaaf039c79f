"""``scrub(text)``: a transcript of Adyen traffic with every secret and card number taken out.

Used when cassettes are recorded (R-5.6) and available to hosts that log SDK debug output.
"""

from __future__ import annotations

import re
from typing import Final

_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # x-api-key header (any case), as a header line or a JSON/dict entry
    (re.compile(r"""(?i)(["']?x-api-key["']?\s*[:=]\s*["']?)[^"'\s,}]+"""), r"\1REDACTED"),
    # Adyen API keys wherever they appear
    (re.compile(r"\bAQE[0-9A-Za-z._\-+/=]{20,}"), "REDACTED"),
    # basic auth (webhook credentials, legacy web service users)
    (re.compile(r"(?i)(Basic\s+)[A-Za-z0-9+/=]{4,}"), r"\1REDACTED"),
    # card security codes and full card numbers in JSON bodies
    (
        re.compile(
            r"""(?i)(["']?(?:cvc|cvv|securityCode|encryptedSecurityCode|number|"""
            r"""encryptedCardNumber)["']?\s*[:=]\s*["'])[^"']*(["'])"""
        ),
        r"\1[FILTERED]\2",
    ),
    # the HMAC key, should it ever be printed as a config entry
    (re.compile(r"""(?i)(["']?hmac_?key["']?\s*[:=]\s*["']?)[0-9A-Fa-f]{16,}"""), r"\1REDACTED"),
)


def scrub(text: str) -> str:
    """``text`` without API keys, basic-auth values, HMAC keys, security codes or card numbers
    (a Luhn-valid 13-19 digit run keeps its first 6 and last 4 digits)."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return _CARD.sub(_mask, text)


#: 13-19 digits, possibly grouped by single spaces or dashes, not inside a longer digit run.
_CARD: Final = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")


def _mask(match: re.Match[str]) -> str:
    run = match.group()
    digits = re.sub(r"[ -]", "", run)
    if not _luhn(digits):
        return run
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0

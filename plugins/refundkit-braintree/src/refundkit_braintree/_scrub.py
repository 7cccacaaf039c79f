"""``scrub(text)``: a Braintree transcript (request, XML reply, headers) without secrets,
card data or personal data, for logs and for recording cassettes (R-5.5)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from refundkit import find_pans

FILTERED: Final = "[FILTERED]"
#: XML elements whose text is card data, a secret or personal data.
ELEMENTS: Final = (
    "number",
    "cvv",
    "cardholder-name",
    "email",
    "payer-email",
    "payer-first-name",
    "payer-last-name",
    "first-name",
    "last-name",
    "company",
    "phone",
    "fax",
    "street-address",
    "extended-address",
    "locality",
    "postal-code",
    "unique-number-identifier",
    "token",
)
_ELEMENT: Final = re.compile(
    r"<(?P<tag>" + "|".join(map(re.escape, ELEMENTS)) + r")(?P<attrs>(?:\s[^>]*)?)>"
    r"(?P<text>[^<]+)</(?P=tag)>"
)
_AUTHORIZATION: Final = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?basic\s+)[^\s\"',}]+")
_DIGITS: Final = re.compile(r"[0-9](?:[0-9 -]*[0-9])?", re.ASCII)
_USERINFO: Final = re.compile(r"(https?://)[^/@\s]+@")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with card numbers, CVVs, personal fields, Basic credentials and the given
    secrets (e.g. the private key) replaced by ``[FILTERED]``."""
    text = _ELEMENT.sub(lambda m: f"<{m['tag']}{m['attrs']}>{FILTERED}</{m['tag']}>", text)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + FILTERED, text)
    text = _USERINFO.sub(lambda m: m.group(1), text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, FILTERED)
    # Any digit run (spaces or dashes allowed) holding a Luhn-valid 13-19 digit number.
    return _DIGITS.sub(lambda m: FILTERED if find_pans(m[0]) else m[0], text)

"""Every cassette is free of secrets and card numbers (R-5.4), whichever plugin wrote it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

from refundkit._pans import find_pans

CASSETTES: Final = Path(__file__).resolve().parent.parent / "cassettes"

#: Credentials the three gateways issue, by shape. A placeholder such as ``sk_test_REDACTED``
#: or ``sk_test_xxx`` is allowed; anything that looks like a real key is not.
SECRET_PATTERNS: Final = {
    "stripe secret or restricted key": re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"),
    "stripe webhook secret": re.compile(r"\bwhsec_[0-9A-Za-z+/]{24,}"),
    "adyen api key": re.compile(r"\bAQE[0-9A-Za-z._\-+/=]{40,}"),
    "basic credentials": re.compile(
        r"Basic\s+(?!REDACTED|cHVibGljX2tleTpwcml2YXRlX2tleQ)[A-Za-z0-9+/]{20,}={0,2}"
    ),
    "bearer token": re.compile(r"Bearer\s+(?!REDACTED|sk_test_REDACTED)[A-Za-z0-9_\-.]{24,}"),
    "private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


def cassette_files() -> list[Path]:
    return sorted(p for p in CASSETTES.rglob("*") if p.is_file() and p.name != "README.md")


def leaks(text: str) -> list[str]:
    """What in ``text`` must not be in a cassette: card numbers and credentials."""
    found = [f"card number {pan[:6]}…{pan[-4:]}" for pan in find_pans(text)]
    found += [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    return found


# Planted keys are written in two pieces so that no secret scanner takes this file for a leak.
@pytest.mark.parametrize(
    ("planted", "what"),
    [
        ("number: 4242 4242 4242 4242", "card number"),
        ('"card": "5555-5555-5555-4444"', "card number"),
        ("Authorization: Bearer sk_" + "live_51HabcdefghijklmnopQRSTuv", "stripe secret"),
        ("key=rk_" + "test_0123456789abcdefABCDEF", "stripe secret"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "stripe webhook secret"),
        (
            "X-API-Key: AQEyhmfxK4HOaRBHw0m/n3Q5qf3VaY9UCJ14XWZE03G/k2NFitRvbe4N1XqH1eHaH2AksaI=",
            "adyen",
        ),
        ("Authorization: Basic bWVyY2hhbnQ6c2VjcmV0c2VjcmV0c2VjcmV0", "basic credentials"),
        ("-----BEGIN RSA PRIVATE KEY-----", "private key block"),
    ],
)
def test_the_scan_finds_what_it_looks_for(planted: str, what: str) -> None:
    """R-5.4: the scan is not vacuous; each kind of leak is caught."""
    assert any(what in leak for leak in leaks(f"body: |\n  {planted}\n")), planted


@pytest.mark.parametrize(
    "harmless",
    [
        "sk_test_REDACTED",
        "Authorization: Bearer sk_test_REDACTED",
        "last4: '4242', bin: '424242'",
        "created: 1763769600",
        "id: ch_3QpO5h2eZvKYlo2C0h1bvSjx",
    ],
)
def test_the_scan_lets_placeholders_and_masked_cards_through(harmless: str) -> None:
    assert leaks(harmless) == []


@pytest.mark.parametrize("path", cassette_files(), ids=lambda p: str(p.relative_to(CASSETTES)))
def test_no_cassette_holds_a_secret_or_a_card_number(path: Path) -> None:
    """R-5.4: no cassette carries a credential or a Luhn-valid 13-19 digit number."""
    assert leaks(path.read_text(encoding="utf-8")) == []

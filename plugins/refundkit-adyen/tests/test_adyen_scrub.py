"""R-5.5: ``scrub`` takes API keys, basic auth, HMAC keys, security codes and card numbers out
of a transcript of Adyen traffic; recordings go through it (R-5.6)."""

from __future__ import annotations

from refundkit_adyen import scrub

from refundkit.testing import find_pans

# Built at run time so that no literal key or card number sits in the repository.
API_KEY = "AQE" + "yhmfxK4HOaRBHw0m/n3Q5qf3VaY9UCJ14XWZE03G/k2NFitRvbe4N1XqH1eHaH2AksaI="
VISA = "4111" * 4  # Adyen's test Visa
MASTERCARD = "5555 " * 3 + "4444"

PRE_SCRUBBED = f"""POST /v72/payments HTTP/1.1
x-api-key: {API_KEY}
Authorization: Basic cmVmdW5ka2l0OnNlY3JldC1wYXNzd29yZA==
{{"paymentMethod": {{"type": "scheme", "number": "{VISA}", "cvc": "737",
 "expiryMonth": "03", "expiryYear": "2030"}}, "amount": {{"currency": "EUR", "value": 1000}},
 "hmac_key": "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
 "note": "card {MASTERCARD}, psp QFQTPCQ8HXSKGK82, created 1763769600123"}}
{{'x-api-key': '{API_KEY}'}}
"""

POST_SCRUBBED = """POST /v72/payments HTTP/1.1
x-api-key: REDACTED
Authorization: Basic REDACTED
{"paymentMethod": {"type": "scheme", "number": "[FILTERED]", "cvc": "[FILTERED]",
 "expiryMonth": "03", "expiryYear": "2030"}, "amount": {"currency": "EUR", "value": 1000},
 "hmac_key": "REDACTED",
 "note": "card 555555******4444, psp QFQTPCQ8HXSKGK82, created 1763769600123"}
{'x-api-key': 'REDACTED'}
"""


def test_pre_scrubbed_to_post_scrubbed() -> None:
    assert scrub(PRE_SCRUBBED) == POST_SCRUBBED


def test_nothing_secret_is_left() -> None:
    out = scrub(PRE_SCRUBBED)
    for secret in (API_KEY, "cmVmdW5ka2l0OnNlY3JldC1wYXNzd29yZA==", "737", "44782DEF547AAA06"):
        assert secret not in out
    assert find_pans(out) == []
    assert scrub(out) == out

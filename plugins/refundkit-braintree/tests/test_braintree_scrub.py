"""R-5.5: ``scrub(text)`` removes card data, secrets and personal data from transcripts."""

from __future__ import annotations

import base64

from _braintree_support import PRIVATE_KEY, PUBLIC_KEY
from refundkit_braintree import scrub
from refundkit_braintree._gateway import import_braintree

from refundkit.testing import find_pans

PRE_SCRUBBED = """POST /merchants/rk0test0merchant/transactions HTTP/1.1
Authorization: Basic cmtfdGVzdF9wdWJsaWNfa2V5OnJrX3Rlc3RfcHJpdmF0ZV9rZXk=
URI: https://rk_test_public_key:rk_test_private_key@api.sandbox.braintreegateway.com/x
<transaction><amount>10.00</amount><credit-card><number>4111 1111 1111 1111</number>
<cvv>737</cvv><cardholder-name>Jane Doe</cardholder-name></credit-card>
<customer><email>jane@example.com</email></customer><bin>411111</bin><last-4>1111</last-4>
<order-id>rf_1</order-id></transaction>
note: amex 378282246310005, private key rk_test_private_key
"""

POST_SCRUBBED = """POST /merchants/rk0test0merchant/transactions HTTP/1.1
Authorization: Basic [FILTERED]
URI: https://api.sandbox.braintreegateway.com/x
<transaction><amount>10.00</amount><credit-card><number>[FILTERED]</number>
<cvv>[FILTERED]</cvv><cardholder-name>[FILTERED]</cardholder-name></credit-card>
<customer><email>[FILTERED]</email></customer><bin>411111</bin><last-4>1111</last-4>
<order-id>rf_1</order-id></transaction>
note: amex [FILTERED], private key [FILTERED]
"""


def test_scrub_transcript() -> None:
    """A fixed pre-scrubbed → post-scrubbed transcript (R-5.5)."""
    assert scrub(PRE_SCRUBBED, secrets=[PRIVATE_KEY]) == POST_SCRUBBED


def test_scrub_a_real_sdk_payload() -> None:
    """The SDK's own refund_failed sample carries a card number and CVV: scrubbed, BIN-safe."""
    braintree = import_braintree()
    sdk = braintree.BraintreeGateway(
        braintree.Configuration(
            environment=braintree.Environment.Sandbox,
            merchant_id="rk0test0merchant",
            public_key=PUBLIC_KEY,
            private_key=PRIVATE_KEY,
        )
    )
    sample = sdk.webhook_testing.sample_notification(
        braintree.WebhookNotification.Kind.RefundFailed, "rkcr0001"
    )
    xml = base64.b64decode(sample["bt_payload"]).decode()
    assert "<number>1234560000001234</number>" in xml
    assert "<cvv>123</cvv>" in xml
    cleaned = scrub(xml + sample["bt_signature"], secrets=[PRIVATE_KEY])
    assert "1234560000001234" not in cleaned
    assert "<cvv>123</cvv>" not in cleaned
    assert PRIVATE_KEY not in cleaned
    assert not find_pans(cleaned)

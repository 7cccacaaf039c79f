"""The hand-written HMAC check agrees with the SDK's ``Adyen.util.is_valid_hmac_notification`` on
Adyen's published test vectors (issue 15): the vector of the SDK's own ``UtilTest`` and three
notifications Adyen's test platform signed (references with backslashes, a colon, slashes), in
``cassettes/adyen/sources/hmac/`` (unchanged copies; provenance in cassettes/adyen/README.md).

The plugin keeps its own verifier, not the SDK's: the SDK checks only the first item of a
delivery, raises ``KeyError`` on an item without ``additionalData.hmacSignature``, and is
imported lazily (webhooks must not load the SDK). These tests pin the two to the same answer.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import Adyen.util
import pytest
from _adyen_cassettes import SOURCES
from refundkit_adyen import AdyenGateway, sign_notification_item

from refundkit import WebhookVerificationError

VECTORS = SOURCES / "hmac"
#: The HMAC key of the three signed notifications (the SDK's test_webhooks_with_slashes).
PLATFORM_KEY = "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174"
SIGNED = sorted(VECTORS.glob("adyenpy__*_notification.json"))


def _gateway(key_hex: str) -> AdyenGateway:
    return AdyenGateway({"hmac_key": key_hex, "platform": "test"})


def _ours(item: dict[str, Any], key_hex: str) -> bool:
    """The plugin's verdict on one item, through ``parse_webhook`` as a delivery."""
    body = json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})
    try:
        _gateway(key_hex).parse_webhook({}, body.encode())
    except WebhookVerificationError:
        return False
    return True


def test_the_vectors_are_there() -> None:
    assert len(SIGNED) == 3


def test_the_sdk_test_vector() -> None:
    vector = json.loads((VECTORS / "adyenpy__UtilTest_notification_request_item_hmac.json")
                        .read_text())  # fmt: skip
    key, item, expected = vector["hmacKey"], vector["item"], vector["expectedHmac"]
    assert sign_notification_item(item, bytes.fromhex(key)) == expected
    assert Adyen.util.generate_notification_sig(item, key).decode() == expected
    signed = {**item, "additionalData": {"hmacSignature": expected}}
    assert Adyen.util.is_valid_hmac_notification(copy.deepcopy(signed), key) is True
    assert _ours(signed, key) is True


@pytest.mark.parametrize("path", SIGNED, ids=lambda p: p.name)
def test_notifications_signed_by_adyen_verify_with_both(path: Path) -> None:
    item = json.loads(path.read_text())
    assert Adyen.util.is_valid_hmac_notification(copy.deepcopy(item), PLATFORM_KEY) is True
    assert _ours(item, PLATFORM_KEY) is True


TAMPERINGS: list[tuple[str, Any]] = [
    ("merchantReference", "slashes are fun"),
    ("pspReference", "T7FD4VM4D3RZNN83"),
    ("success", "false"),
    ("eventCode", "REFUND"),
    ("merchantAccountCode", "AnotherMerchant"),
]


@pytest.mark.parametrize("path", SIGNED, ids=lambda p: p.name)
@pytest.mark.parametrize(("field", "value"), TAMPERINGS)
def test_a_changed_signed_field_fails_both(path: Path, field: str, value: Any) -> None:
    item = json.loads(path.read_text())
    item[field] = value
    assert Adyen.util.is_valid_hmac_notification(copy.deepcopy(item), PLATFORM_KEY) is False
    assert _ours(item, PLATFORM_KEY) is False


@pytest.mark.parametrize("path", SIGNED, ids=lambda p: p.name)
def test_a_changed_amount_or_key_fails_both(path: Path) -> None:
    item = json.loads(path.read_text())
    other_key = "00" * 32
    assert Adyen.util.is_valid_hmac_notification(copy.deepcopy(item), other_key) is False
    assert _ours(item, other_key) is False
    item["amount"] = {**item["amount"], "value": item["amount"]["value"] + 1}
    assert Adyen.util.is_valid_hmac_notification(copy.deepcopy(item), PLATFORM_KEY) is False
    assert _ours(item, PLATFORM_KEY) is False

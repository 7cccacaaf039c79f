"""Adyen notifications: every item's HMAC verified, refund events mapped, the rest ignored."""

from __future__ import annotations

import json
from typing import Any

import Adyen.util
import pytest
from _adyen_cassettes import HMAC_KEY, gateway_config
from _adyen_webhooks import TEMPLATES, encode, headers, notification, sign
from refundkit_adyen import AdyenGateway, sign_notification_item

from refundkit import Money, WebhookVerificationError

FIELDS: dict[str, Any] = {
    "merchantReference": "rf_1",
    "pspReference": "RFNDPSP8HXSKGK82",
    "originalReference": "QFQTPCQ8HXSKGK82",
    "value": 1000,
    "currency": "EUR",
}


def _parse(body: dict[str, Any], **config: Any) -> Any:
    return AdyenGateway({**gateway_config(), **config}).parse_webhook(headers(), encode(body))


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        ("success", ["succeeded"]),
        ("failure", ["failed"]),
        ("refund_failed", ["failed"]),
        ("reversed", ["reversed"]),
        ("cancel_or_refund", ["succeeded"]),
    ],
)
def test_refund_events(kind: str, statuses: list[str]) -> None:
    updates = _parse(sign(notification(kind, **FIELDS)))
    assert [u.status for u in updates] == statuses
    for update in updates:
        assert update.refund_id == "rf_1"
        assert update.gateway_refund_id == "RFNDPSP8HXSKGK82"
        assert update.amount == Money(1000, "EUR")
        assert update.event_id
    failed = [u for u in updates if u.status != "succeeded"]
    assert all(u.failure_code for u in failed)


def test_a_cancel_or_refund_that_failed() -> None:
    updates = _parse(sign(notification("cancel_or_refund", **FIELDS, success="false")))
    assert [u.status for u in updates] == ["failed"]


def test_other_events_are_verified_and_ignored() -> None:
    body = notification("authorisation")
    assert _parse(sign(body)) == []
    with pytest.raises(WebhookVerificationError):
        _parse(sign(body, "00" * 32))


def test_the_signature_is_adyens() -> None:
    """Our HMAC equals the SDK's generate_notification_sig on every template."""
    key = bytes.fromhex(HMAC_KEY)
    for template in TEMPLATES:
        item = notification(template)["notificationItems"][0]["NotificationRequestItem"]
        item.pop("additionalData", None)
        sdk = Adyen.util.generate_notification_sig(item, HMAC_KEY).decode()
        assert sign_notification_item(item, key) == sdk


@pytest.mark.parametrize(
    "change",
    [
        {"value": 1001},
        {"currency": "USD"},
        {"success": "true"},
        {"eventCode": "REFUND_FAILED"},
        {"merchantReference": "rf_2"},
        {"pspReference": "RFNDPSP8HXSKGK83"},
    ],
)
def test_a_changed_signed_field_is_refused(change: dict[str, Any]) -> None:
    signed = sign(notification("failure", **FIELDS))
    changed = notification("failure", **{**FIELDS, **change})
    item = changed["notificationItems"][0]["NotificationRequestItem"]
    item["additionalData"] = signed["notificationItems"][0]["NotificationRequestItem"][
        "additionalData"
    ]
    with pytest.raises(WebhookVerificationError, match="wrong HMAC"):
        _parse(changed)


def test_unsigned_items_and_bad_bodies_are_refused() -> None:
    unsigned = notification("success", **FIELDS)
    with pytest.raises(WebhookVerificationError, match="not signed"):
        _parse(unsigned)
    for body in (b"", b"[]", b"{}", b'{"live": "false", "notificationItems": []}', b"\xff"):
        with pytest.raises(WebhookVerificationError):
            AdyenGateway(gateway_config()).parse_webhook(headers(), body)


def test_one_bad_item_refuses_the_whole_delivery() -> None:
    good = sign(notification("success", **FIELDS))
    bad = sign(notification("success", **{**FIELDS, "merchantReference": "rf_2"}), "00" * 32)
    both = {
        "live": "false",
        "notificationItems": good["notificationItems"] + bad["notificationItems"],
    }
    with pytest.raises(WebhookVerificationError):
        _parse(both)


def test_basic_auth_when_configured() -> None:
    gateway = AdyenGateway(gateway_config())
    body = encode(sign(notification("success", **FIELDS)))
    with pytest.raises(WebhookVerificationError, match="basic auth"):
        gateway.parse_webhook({}, body)
    with pytest.raises(WebhookVerificationError, match="basic auth"):
        gateway.parse_webhook({"Authorization": "Basic d3Jvbmc6d3Jvbmc="}, body)
    lower = {k.lower(): v for k, v in headers().items()}
    assert gateway.parse_webhook(lower, body)[0].status == "succeeded"
    config = {k: v for k, v in gateway_config().items() if not k.startswith("webhook_")}
    assert AdyenGateway(config).parse_webhook({}, body)[0].status == "succeeded"


def test_no_hmac_key_refuses_everything() -> None:
    config = {k: v for k, v in gateway_config().items() if k != "hmac_key"}
    body = encode(sign(notification("success", **FIELDS)))
    with pytest.raises(WebhookVerificationError, match="no hmac_key"):
        AdyenGateway(config).parse_webhook(headers(), body)


def test_a_live_notification_is_refused_by_a_test_configuration() -> None:
    body = sign(notification("success", **FIELDS))
    body["live"] = "true"
    with pytest.raises(WebhookVerificationError, match="live"):
        _parse(body)


def test_webhook_templates_are_json_with_one_item() -> None:
    for template in TEMPLATES.values():
        from _adyen_webhooks import WEBHOOKS

        body = json.loads((WEBHOOKS / template).read_text())
        assert len(body["notificationItems"]) == 1

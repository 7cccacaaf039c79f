"""Every status Adyen can report a refund in is mapped (issue 15): the walk reads Adyen's own
lists (the Webhooks API's eventCode enum and webhook names, the refund reply's ``status``
enum), so a code a new spec adds fails here until the plugin says what it means."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from _adyen_cassettes import CHECKOUT_SPEC, EVENT_CODES_SPEC, gateway_config
from _adyen_webhooks import encode, headers, notification, sign
from refundkit_adyen import OTHER_EVENTS, STATUS_TABLE, AdyenGateway, StatusOutcome
from refundkit_adyen._gateway import REPLY_STATUSES
from refundkit_adyen._webhooks import REFUND_EVENTS

from refundkit import Money

SPEC_EVENTS: dict[str, list[str]] = json.loads(EVENT_CODES_SPEC.read_text())
EVERY_CODE = sorted(set(SPEC_EVENTS["eventCodes"]) | set(SPEC_EVENTS["webhooks"]))
FIELDS: dict[str, Any] = {
    "merchantReference": "rf_1",
    "pspReference": "RFNDPSP8HXSKGK82",
    "originalReference": "QFQTPCQ8HXSKGK82",
    "value": 1000,
    "currency": "EUR",
}


def test_the_spec_lists_are_read() -> None:
    assert len(EVERY_CODE) >= 40
    assert {"REFUND", "REFUND_FAILED", "REFUNDED_REVERSED"} <= set(EVERY_CODE)


@pytest.mark.parametrize("code", EVERY_CODE)
def test_every_event_code_of_the_spec_is_placed(code: str) -> None:
    """Each eventCode is a refund event (with a row per success value) or one that says
    nothing about a refund refundkit made; never both, never neither."""
    assert (code in REFUND_EVENTS) != (code in OTHER_EVENTS), code


def test_no_code_is_mapped_that_the_spec_does_not_have() -> None:
    assert set(REFUND_EVENTS) | set(OTHER_EVENTS) <= set(EVERY_CODE)


@pytest.mark.parametrize("code", sorted(REFUND_EVENTS))
@pytest.mark.parametrize("success", ["true", "false"])
def test_every_refund_event_has_a_row_for_each_success_value(code: str, success: str) -> None:
    assert STATUS_TABLE[f"{code}:{success}"] in get_args(StatusOutcome)


def test_the_reply_statuses_are_the_specs() -> None:
    """PaymentRefundResponse.status (Checkout v72) enumerates what a refund reply may say."""
    spec = json.loads(CHECKOUT_SPEC.read_text())
    enum = spec["components"]["schemas"]["PaymentRefundResponse"]["properties"]["status"]["enum"]
    assert set(REPLY_STATUSES) == set(enum)
    assert AdyenGateway.STATUS_TABLE is STATUS_TABLE
    assert set(STATUS_TABLE) == set(REPLY_STATUSES) | {
        f"{c}:{s}" for c in REFUND_EVENTS for s in ("true", "false")
    }


def _updates(**fields: Any) -> list[Any]:
    body = sign(notification("success", **{**FIELDS, **fields}))
    return AdyenGateway(gateway_config()).parse_webhook(headers(), encode(body))


@pytest.mark.parametrize("key", sorted(k for k in STATUS_TABLE if ":" in k))
def test_each_row_is_what_a_delivery_gives(key: str) -> None:
    code, success = key.split(":")
    outcome = STATUS_TABLE[key]
    updates = _updates(eventCode=code, success=success)
    expected = [] if outcome == "unknown" else [outcome]
    assert [u.status for u in updates] == expected
    for update in updates:
        assert update.refund_id == "rf_1"
        assert update.amount == Money(1000, "EUR")
        assert (update.failure_code is not None) == (update.status in ("failed", "reversed"))


@pytest.mark.parametrize("code", sorted(OTHER_EVENTS))
def test_other_events_give_no_update(code: str) -> None:
    assert _updates(eventCode=code, success="true") == []


@pytest.mark.parametrize("success", ["", "maybe", "1", None])
def test_a_refund_event_whose_success_cannot_be_read_is_held(success: str | None) -> None:
    """R-2.4: only what proves Adyen did not refund releases the amount; a REFUND whose
    ``success`` is neither "true" nor "false" moves nothing (it used to read as failed)."""
    for code in sorted(REFUND_EVENTS):
        assert _updates(eventCode=code, success=success) == [], code

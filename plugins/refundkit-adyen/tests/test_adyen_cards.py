"""The card summary is taken when the payment is recorded (payment response or AUTHORISATION
notification), masked: brand, last 4, expiry, at most the 6-digit BIN."""

from __future__ import annotations

import json

import pytest
from _adyen_cassettes import SOURCES
from _adyen_webhooks import notification
from refundkit_adyen import (
    card_from_additional_data,
    card_from_notification,
    card_from_payment_response,
)

from refundkit import Card
from refundkit.testing import find_pans


def test_from_the_payment_response_fixture() -> None:
    response = json.loads(
        (SOURCES / "adyenpy__checkout_payments_200_with_card_details.json").read_text()
    )
    assert card_from_payment_response(response) == Card("visa", "1111", 8, 2018, "411111")


@pytest.mark.parametrize(
    "name",
    [
        "adyenjava__AUTHORISATION_with_card_summary.json",
        "spreeadyen__AUTHORISATION_with_card_details.json",
    ],
)
def test_from_recorded_authorisation_notifications(name: str) -> None:
    body = json.loads((SOURCES / "webhooks" / name).read_text())
    card = card_from_notification(body["notificationItems"][0])
    assert card is not None
    assert len(card.last4) == 4
    assert card.brand.isalpha()
    assert not find_pans(repr(card), luhn=False)


def test_from_our_authorisation_template() -> None:
    item = notification("authorisation")["notificationItems"][0]
    assert card_from_notification(item) == Card("visa", "1111", 3, 2030, "411111")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, None),
        ({"cardSummary": "12"}, None),
        (
            {"cardSummary": "4444", "cardBin": "55555555"},
            Card("card", "4444"),
        ),  # 8-digit BIN dropped
        ({"cardSummary": "4444", "expiryDate": "13/2030"}, Card("card", "4444")),
        (
            {"cardSummary": "4444", "cardPaymentMethod": "mc", "expiryDate": "03/2031"},
            Card("mastercard", "4444", 3, 2031),
        ),
    ],
)
def test_only_masked_parts_are_kept(data: dict[str, str], expected: Card | None) -> None:
    assert card_from_additional_data(data) == expected


def test_brand_from_wallet_variants() -> None:
    card = card_from_additional_data({"cardSummary": "0004"}, "mc_applepay")
    assert card is not None
    assert card.brand == "mastercard"

"""The card summary Adyen reports when a payment is made, kept masked.

Adyen's refund replies carry no card, so the summary is taken when the payment is recorded:
from the payment response's ``additionalData`` or the AUTHORISATION notification's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from refundkit import Card

_LAST4: Final = re.compile(r"[0-9]{4}", re.ASCII)
_BIN: Final = re.compile(r"[0-9]{6}", re.ASCII)
_EXPIRY: Final = re.compile(r"([0-9]{1,2})/([0-9]{4})", re.ASCII)
#: Adyen's payment method names for card brands (``paymentMethod`` / ``cardPaymentMethod``).
_BRANDS: Final[Mapping[str, str]] = {
    "visa": "visa",
    "mc": "mastercard",
    "amex": "amex",
    "discover": "discover",
    "diners": "diners",
    "jcb": "jcb",
    "cup": "unionpay",
    "maestro": "maestro",
    "cartebancaire": "cartes_bancaires",
}


def card_from_additional_data(
    additional_data: Mapping[str, Any], payment_method: str | None = None
) -> Card | None:
    """Brand, last 4 (``cardSummary``), expiry (``expiryDate`` "M/YYYY") and the BIN
    (``cardBin``, kept only when it is exactly 6 digits); None without a card summary."""
    last4 = additional_data.get("cardSummary")
    if not (isinstance(last4, str) and _LAST4.fullmatch(last4)):
        return None
    method = payment_method or additional_data.get("cardPaymentMethod") or "card"
    brand = _brand(str(method))
    exp_month = exp_year = None
    expiry = additional_data.get("expiryDate")
    match = _EXPIRY.fullmatch(expiry) if isinstance(expiry, str) else None
    if match and 1 <= int(match.group(1)) <= 12:
        exp_month, exp_year = int(match.group(1)), int(match.group(2))
    first6 = additional_data.get("cardBin")
    return Card(
        brand=brand,
        last4=last4,
        exp_month=exp_month,
        exp_year=exp_year,
        first6=first6 if isinstance(first6, str) and _BIN.fullmatch(first6) else None,
    )


def card_from_payment_response(response: Mapping[str, Any]) -> Card | None:
    """The card of a Checkout ``/payments`` response (its ``additionalData``)."""
    data = response.get("additionalData")
    return card_from_additional_data(data) if isinstance(data, Mapping) else None


def card_from_notification(item: Mapping[str, Any]) -> Card | None:
    """The card of an AUTHORISATION ``NotificationRequestItem`` (brand from ``paymentMethod``)."""
    item = item.get("NotificationRequestItem", item)
    data = item.get("additionalData")
    if not isinstance(data, Mapping):
        return None
    method = item.get("paymentMethod")
    return card_from_additional_data(data, method if isinstance(method, str) else None)


def _brand(method: str) -> str:
    # "visa", "mc", "visa_applepay", "mc_googlepay": the card brand comes first.
    head = method.lower().split("_", 1)[0]
    return _BRANDS.get(head, head if head.isalpha() else "card")

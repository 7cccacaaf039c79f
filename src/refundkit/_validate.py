"""The input checks the facade, the services, approvals and the CLI share.

Each returns the value it checked (narrowed) or raises a typed error that does not echo the
value: a card number typed into the wrong field must not reach a log or an error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._errors import CardDataRefused, InvalidIdempotencyKey, InvalidInput, InvalidMoney
from ._model import MAX_SCANNED, Card, Destination
from ._money import Money
from ._pans import has_pan

_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}", re.ASCII)  # printable ASCII, no spaces
_TEXT_RE = re.compile(r"[^\x00-\x1f\x7f]{1,200}")

#: Card fields that are never accepted: only brand, last 4 and expiry are kept.
_SECRET_CARD_FIELDS = frozenset(
    {"number", "pan", "cvc", "cvv", "cvv2", "verification_value", "security_code", "track", "pin"}
)


def check_money(value: object, what: str) -> Money:
    if not isinstance(value, Money):
        raise InvalidMoney(
            f"{what} must be refundkit.Money (e.g. Money.parse('12.34', 'USD')), "
            f"not {type(value).__name__}"
        )
    return value


def refuse_card_numbers(value: object, what: str) -> None:
    """``CardDataRefused`` when ``value`` is text holding a card number (``_pans``), in any
    of the ways one gets written; the value is never echoed. Other values pass."""
    if isinstance(value, str) and len(value) <= MAX_SCANNED and has_pan(value):
        raise CardDataRefused(f"{what} looks like it holds a card number; it was not stored")


def no_card_numbers(**fields: object) -> None:
    """``refuse_card_numbers`` for each field, named by its keyword (``payment_id=...``): for
    filters and names that are looked up, not stored, but may reach an error or a log."""
    for name, value in fields.items():
        refuse_card_numbers(value, name.replace("_", " "))


def check_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    refuse_card_numbers(value, what)
    if type(value) is not str or not _TEXT_RE.fullmatch(value):
        raise InvalidInput(f"{what} must be 1-200 characters without control characters")
    return value


def need(value: str | None, what: str) -> str:
    if not value:
        raise InvalidInput(f"{what} is required")
    return value


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    # Keys are stored and shown: a card number pasted there must not be.
    refuse_card_numbers(value, "the idempotency key")
    if type(value) is not str or not _KEY_RE.fullmatch(value):
        raise InvalidIdempotencyKey(
            "an idempotency key is 1-255 printable ASCII characters without spaces"
        )
    return value


def check_flag(value: object, what: str) -> bool:
    if type(value) is not bool:  # bool("no") is True: only real booleans mean yes or no
        raise InvalidInput(f"{what} must be True or False")
    return value


def check_time(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput("captured_at must be an aware datetime (e.g. in UTC)")
    return value.astimezone(UTC)


def check_since(since: datetime | None) -> datetime | None:
    if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
        raise InvalidInput("since must be an aware datetime (e.g. in UTC)")
    return since


def check_destination(value: Destination | str) -> Destination:
    refuse_card_numbers(value, "destination")
    try:
        return Destination(value)
    except ValueError:
        raise InvalidInput("destination must be 'invoice' or 'customer_balance'") from None


def check_card(card: Card | Mapping[str, Any] | None) -> Card | None:
    if card is None or isinstance(card, Card):
        return card
    if not isinstance(card, Mapping):
        raise InvalidInput("card must be a refundkit.Card or a mapping")
    secret = _SECRET_CARD_FIELDS & {str(k).lower() for k in card}
    if secret:
        raise CardDataRefused(
            f"card data {sorted(secret)} is never accepted: pass brand, last4 and expiry only"
        )
    for key, value in card.items():
        refuse_card_numbers(key, "a card field's name")
        refuse_card_numbers(value, "a card field")
    try:
        return Card(**card)
    except TypeError as exc:
        raise InvalidInput(f"card: {exc}") from None

"""Frozen value objects of the domain: payments, refunds, quotes, limits, cards."""

from __future__ import annotations

import enum
import re
import secrets
from datetime import datetime
from typing import Any, Final, Literal

import attrs

from ._errors import CardDataRefused, InvalidInput
from ._money import Money
from ._pans import has_pan

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}", re.ASCII)


#: 13 digits in a row: the shortest run a card-number scanner (or ``redact_pans``) looks at.
_CARD_LIKE_RUN = re.compile(r"[0-9]{13}")
#: Longer than any id, key or line of free text: not worth scanning, refused for its length.
MAX_SCANNED = 10_000


def new_id(prefix: str) -> str:
    """A fresh random id, ``prefix`` + 24 hex digits, that can never pass for a card number.

    A hex token has 13 digits in a row about once in 400 draws, and then a one-in-ten chance of
    passing the Luhn check: it would be refused as input, masked by redaction and flagged by
    every card-number scan. It also ends with a letter, so an id with a suffix joined by a
    separator (a plan leg's key, ``pln_….1``) cannot join digits into one either.
    """
    while True:
        token = secrets.token_hex(12)
        if not _CARD_LIKE_RUN.search(token) and not token[-1].isdigit():
            return prefix + token


def check_id(value: object, what: str) -> str:
    """Ids are short printable ASCII tokens; anything else is refused before it is stored.

    An id holding a card number (``_pans``: written plain or with separators, Luhn-valid, an
    issuer's prefix) is refused with ``CardDataRefused``, whatever else is wrong with it. The
    refused value is never echoed.
    """
    if type(value) is str and len(value) <= MAX_SCANNED and has_pan(value):
        raise CardDataRefused(f"{what} looks like it holds a card number; it was refused")
    if type(value) is not str or not _ID_RE.fullmatch(value):
        raise InvalidInput(
            f"{what} must be 1-128 characters of letters, digits, '_', '-', '.', ':'"
        )
    return value


class Destination(enum.StrEnum):
    """Where a payment's money went."""

    INVOICE = "invoice"
    CUSTOMER_BALANCE = "customer_balance"

    @classmethod
    def invoice(cls) -> Destination:
        return cls.INVOICE

    @classmethod
    def customer_balance(cls) -> Destination:
        return cls.CUSTOMER_BALANCE

    def __str__(self) -> str:
        return self.value


class RefundStatus(enum.StrEnum):
    """Where a refund stands: in flight (reserved, submitted, pending, unknown), with a
    person (manual_review), or final (succeeded, failed, reversed)."""

    RESERVED = "reserved"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"
    UNKNOWN = "unknown"
    MANUAL_REVIEW = "manual_review"
    REVERSED = "reversed"

    def __str__(self) -> str:
        return self.value

    @property
    def holds_balance(self) -> bool:
        """Does a refund in this status consume the payment's refundable balance?"""
        return self not in (RefundStatus.FAILED, RefundStatus.REVERSED)

    @property
    def in_flight(self) -> bool:
        """Outcome not settled yet: recovery or a webhook still has to say."""
        return self in IN_FLIGHT

    @property
    def final(self) -> bool:
        return self in (RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.REVERSED)


#: Refunds whose outcome is still open; recovery looks only at these (a partial index, whose
#: SQL text follows this order).
IN_FLIGHT_STATUSES: Final = ("reserved", "submitted", "unknown", "pending")
IN_FLIGHT = frozenset(RefundStatus(s) for s in IN_FLIGHT_STATUSES)

_S = RefundStatus
#: The allowed moves: for each target, the states a refund may move to it from. Every source
#: of one target holds the same balance, so the bookkeeping of a move depends only on the
#: target; the store applies a move only from one of these (a conditional update).
TRANSITIONS: Final[dict[RefundStatus, tuple[RefundStatus, ...]]] = {
    _S.SUBMITTED: (_S.RESERVED,),
    _S.PENDING: (_S.RESERVED, _S.SUBMITTED, _S.UNKNOWN),
    _S.UNKNOWN: (_S.RESERVED, _S.SUBMITTED),
    _S.MANUAL_REVIEW: (_S.RESERVED, _S.SUBMITTED, _S.UNKNOWN, _S.PENDING),
    _S.SUCCEEDED: (_S.RESERVED, _S.SUBMITTED, _S.UNKNOWN, _S.PENDING, _S.MANUAL_REVIEW),
    _S.FAILED: (_S.RESERVED, _S.SUBMITTED, _S.UNKNOWN, _S.PENDING, _S.MANUAL_REVIEW),
    _S.REVERSED: (_S.SUCCEEDED,),
}

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# No digits at all in a brand: a card number must never hide there.
_BRAND = re.compile(r"[A-Za-z][A-Za-z _.-]{0,31}", re.ASCII)


@attrs.frozen
class Card:
    """What refundkit keeps of a card: brand, last 4, expiry and at most the first 6 digits."""

    brand: str
    last4: str
    exp_month: int | None = None
    exp_year: int | None = None
    first6: str | None = None

    def __attrs_post_init__(self) -> None:
        if not (type(self.brand) is str and _BRAND.fullmatch(self.brand)):
            raise CardDataRefused("card brand must be a name like 'visa' (letters only)")
        if not (type(self.last4) is str and len(self.last4) == 4 and _DIGITS.fullmatch(self.last4)):
            raise CardDataRefused("card last4 must be exactly 4 digits")
        if self.first6 is not None and not (
            type(self.first6) is str and len(self.first6) == 6 and _DIGITS.fullmatch(self.first6)
        ):
            raise CardDataRefused("card first6 must be exactly 6 digits (the BIN, never more)")
        for name, low, high in (("exp_month", 1, 12), ("exp_year", 1900, 9999)):
            value = getattr(self, name)
            if value is not None and not (type(value) is int and low <= value <= high):
                raise InvalidInput(f"card {name} must be a whole number from {low} to {high}")

    def to_dict(self) -> dict[str, Any]:
        """The event form: brand, last 4, expiry (the BIN is left out on purpose)."""
        return {
            "brand": self.brand,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
        }

    def display(self) -> str:
        exp = f" {self.exp_month:02d}/{self.exp_year}" if self.exp_month and self.exp_year else ""
        return f"{self.brand} •••• {self.last4}{exp}"


@attrs.frozen
class Payment:
    """A captured payment and its balances: held, refunded and credited (integer minor units)."""

    id: str
    customer_id: str
    amount: Money
    gateway: str
    gateway_payment_id: str
    destination: Destination
    captured_at: datetime
    card: Card | None = None
    invoice_id: str | None = None
    disputed: bool = False
    settled: bool = True
    #: Sum of refunds that hold balance (reserved, in flight, succeeded, manual review).
    held: Money | None = None
    #: Sum of succeeded refunds.
    refunded: Money | None = None
    #: Moved into the customer balance as credit (no longer refundable to the card directly).
    credited: Money | None = None

    @property
    def refundable(self) -> Money:
        """The refundable balance: the amount less refunds (in flight too) and credits."""
        cur = self.amount.currency
        held = self.held or Money.zero(cur)
        credited = self.credited or Money.zero(cur)
        return self.amount - held - credited

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "gateway": self.gateway,
            "gateway_payment_id": self.gateway_payment_id,
            "destination": self.destination.value,
            "invoice_id": self.invoice_id,
            "captured_at": iso(self.captured_at),
            "card": self.card.to_dict() if self.card else None,
            "disputed": self.disputed,
            "settled": self.settled,
            "amount_held": self.held.amount if self.held else 0,
            "amount_refunded": self.refunded.amount if self.refunded else 0,
            "amount_credited": self.credited.amount if self.credited else 0,
            "refundable": self.refundable.amount,
        }


#: The gateway key of an imported refund (never sent; unique like every gateway key).
EXTERNAL_KEY_PREFIX: Final = "external-"


@attrs.frozen
class Refund:
    """A refund of a payment, its status, keys and the outcome the gateway reported."""

    id: str
    payment_id: str
    amount: Money
    status: RefundStatus
    reason: str | None
    actor: str | None
    idempotency_key: str | None
    gateway: str
    gateway_idempotency_key: str
    gateway_refund_id: str | None
    created_at: datetime
    updated_at: datetime
    failure_code: str | None = None
    failure_message: str | None = None
    attempts: int = 0
    #: The customer-balance lot the money came out of (a top-up's or a credit's), if any.
    lot_id: str | None = None

    @property
    def imported(self) -> bool:
        """Made at the gateway, not by refundkit: reconciliation recorded it."""
        return self.gateway_idempotency_key.startswith(EXTERNAL_KEY_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "payment_id": self.payment_id,
            "lot_id": self.lot_id,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "status": self.status.value,
            "reason": self.reason,
            "actor": self.actor,
            "idempotency_key": self.idempotency_key,
            "gateway": self.gateway,
            "gateway_refund_id": self.gateway_refund_id,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@attrs.frozen
class Limit:
    """One rule that binds a refund: a stable ``code``, the most it allows, a sentence."""

    code: str
    amount: Money
    message: str
    #: Only the whole remaining amount may go back (a void, or a gateway without partials).
    full_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = {"code": self.code, **self.amount.to_dict(), "message": self.message}
        if self.full_only:
            d["full_only"] = True
        return d


@attrs.frozen
class Quote:
    """What a refund of a payment may be now, and why not more."""

    payment_id: str
    refundable: bool
    default_amount: Money
    max_amount: Money
    limits: tuple[Limit, ...]
    #: True when only the whole remaining amount may go back (e.g. a void of an unsettled charge).
    full_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "refundable": self.refundable,
            "currency": self.max_amount.currency,
            "default_amount": self.default_amount.amount,
            "max_amount": self.max_amount.amount,
            "full_only": self.full_only,
            "limits": [limit.to_dict() for limit in self.limits],
        }

    def explain(self) -> str:
        """The quote in plain words, for people."""
        if not self.refundable:
            head = "Not refundable now."
        else:
            head = f"Refundable: up to {self.max_amount}."
        return " ".join([head, *(limit.message for limit in self.limits)])


JournalSide = Literal["debit", "credit"]


@attrs.frozen
class JournalLine:
    """One line of a balanced journal entry: a debit or a credit of an account
    (docs/accounting.md)."""

    journal_id: str
    refund_id: str
    kind: str  # "refund" or "reversal"
    account: str
    side: JournalSide
    amount: Money
    posted_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "journal_id": self.journal_id,
            "refund_id": self.refund_id,
            "kind": self.kind,
            "account": self.account,
            "side": self.side,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "posted_at": iso(self.posted_at),
        }


@attrs.frozen
class Event:
    """An outbox event as stored: its sequence number, id, type and JSON payload
    (docs/events.md)."""

    seq: int
    id: str
    type: str
    created: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "created": self.created, "data": self.data}


def iso(dt: datetime) -> str:
    """UTC timestamps as ``2026-11-22T10:00:00Z``."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")

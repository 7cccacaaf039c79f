"""Money: integer minor units and an ISO 4217 code. A float never touches an amount."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import attrs

from ._currencies import EXPONENTS
from ._errors import CurrencyMismatch, InvalidMoney, InvalidMoneyType

# Amounts are stored as signed 64-bit integers; anything larger is refused, never wrapped.
MAX_AMOUNT = 2**63 - 1
# Digits before the point that can still fit MAX_AMOUNT; longer input is refused before int(),
# which would otherwise hit Python's 4300-digit limit with a plain ValueError.
_MAX_WHOLE_DIGITS = 19

# ASCII digits only: Python's int()/Decimal() would accept '1_000', Arabic-Indic or fullwidth
# digits, ' 42 ' and '1e3'.
_DECIMAL_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def exponent(currency: str) -> int:
    """ISO 4217 minor units of ``currency``; refuses unknown codes and codes without them."""
    return EXPONENTS[check_currency(currency)]


def check_currency(currency: object) -> str:
    if type(currency) is not str:
        raise InvalidMoneyType(
            f"currency must be a str ISO 4217 code, not {type(currency).__name__}"
        )
    if currency not in EXPONENTS:
        if currency.upper() in EXPONENTS:
            raise InvalidMoney(f"currency codes are upper case: use {currency.upper()!r}")
        raise InvalidMoney(f"unknown currency {currency!r}: not an ISO 4217 code with minor units")
    return currency


def _check_amount(amount: object) -> int:
    # bool is an int subclass (True + 1 == 2), so test the exact type.
    if type(amount) is not int:
        raise InvalidMoneyType(
            f"amount must be an int of minor units, not {type(amount).__name__}"
            + (
                "; use Money.parse() for decimal strings"
                if isinstance(amount, str | Decimal)
                else ""
            )
        )
    if abs(amount) > MAX_AMOUNT:
        raise InvalidMoney("amount is too large to store (more than 2**63 - 1 minor units)")
    return amount


@attrs.frozen(eq=True, order=False, repr=False)
class Money:
    """An amount in integer minor units with its ISO 4217 currency: ``Money(1234, "USD")``."""

    amount: int = attrs.field(converter=_check_amount)
    currency: str = attrs.field(converter=check_currency)

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def parse(cls, value: str | Decimal, currency: str) -> Money:
        """Parse a decimal string (``"12.34"``) strictly; never rounds.

        Refuses floats, bools, NaN/Infinity, exponent notation, ``_`` separators, non-ASCII
        digits, whitespace and more decimals than the currency has.
        """
        exp = exponent(currency)
        if isinstance(value, Decimal):
            text = _decimal_text(value, exp)
        elif type(value) is str:
            text = value
        else:
            raise InvalidMoneyType(
                f"Money.parse() takes a decimal string, not {type(value).__name__}"
            )
        if not _DECIMAL_RE.fullmatch(text):
            raise InvalidMoney(f"not a plain decimal amount: {text!r} (expected e.g. '12.34')")
        negative = text.startswith("-")
        whole, _, frac = text.lstrip("-").partition(".")
        if len(whole.lstrip("0")) > _MAX_WHOLE_DIGITS:
            raise InvalidMoney(f"{text[:24]!r}... is too large to be an amount")
        if len(frac) > exp:
            raise InvalidMoney(
                f"{text!r} has more decimals than {currency} allows ({exp}); it is not rounded"
            )
        minor = int(whole) * 10**exp + (int(frac.ljust(exp, "0")) if exp else 0)
        return cls(-minor if negative else minor, currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Money:
        return cls(data["amount"], data["currency"])

    # --- views ------------------------------------------------------------------------------

    @property
    def exponent(self) -> int:
        return EXPONENTS[self.currency]

    def decimal_str(self) -> str:
        """``"12.34"``: exact, from integers only."""
        exp = self.exponent
        sign = "-" if self.amount < 0 else ""
        whole, frac = divmod(abs(self.amount), 10**exp)
        return f"{sign}{whole}.{frac:0{exp}d}" if exp else f"{sign}{whole}"

    def to_decimal(self) -> Decimal:
        return Decimal(self.decimal_str())

    def format(self) -> str:
        """``"12.34 USD"``, the form used in messages for people."""
        return f"{self.decimal_str()} {self.currency}"

    def to_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"Money({self.amount}, {self.currency!r})"

    # --- arithmetic (same currency only) ---------------------------------------------------

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"currency mismatch: {self.currency} and {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other).amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def min(self, other: Money) -> Money:
        return self if self <= other else other


def _decimal_text(value: Decimal, max_decimals: int) -> str:
    if not value.is_finite():
        raise InvalidMoney(f"not a finite amount: {value!r}")
    digits_exp = value.as_tuple().exponent
    assert isinstance(digits_exp, int)  # finite, checked above
    if digits_exp > 0:
        raise InvalidMoney(f"exponent notation is not accepted: {value!r}")
    if digits_exp < -max_decimals or len(value.as_tuple().digits) > 64:
        # Refuse before format() expands something like Decimal("1E-10000000").
        raise InvalidMoney(f"{value!r} has more decimals than the currency allows")
    return format(value, "f")

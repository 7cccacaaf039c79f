"""Reading what people type: amounts, card expiry, dates, event cursors.

Wrong input is ``InvalidInput`` (exit 2, one error line), never a traceback.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .._errors import InvalidInput
from .._money import Money

#: The currency of amounts for a customer (not a payment) when --currency is not given.
DEFAULT_CURRENCY = "USD"


def parse_amount(text: str, currency: str) -> Money:
    """A decimal string in ``currency`` (``"12.34"``), strictly: never rounded, never a float."""
    return Money.parse(text, currency.upper())


def parse_exp(text: str | None) -> tuple[int | None, int | None]:
    """--card-exp ``12/2030`` (or ``12/30``) as (month, year); (None, None) without it."""
    if text is None:
        return None, None
    month, sep, year = text.partition("/")
    if not (
        sep
        and month.isascii()
        and month.isdigit()
        and year.isascii()
        and year.isdigit()
        and len(year) in (2, 4)
    ):
        raise InvalidInput(f"--card-exp must look like 12/2030, not {text!r}")
    return int(month), int(year) + (2000 if len(year) == 2 else 0)


def parse_since(text: str | None) -> datetime | None:
    """reconcile's --since: an ISO date or time, UTC unless it names its zone."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--since must be an ISO date or time such as 2026-11-01, not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_cursor(after: str | None) -> str | int | None:
    """``--after``: an event id, or its sequence number when it is all digits."""
    if after is not None and after.isascii() and after.isdigit():
        return int(after)
    return after

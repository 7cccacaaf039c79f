"""Find card numbers (PANs) in text: to refuse them at the door and to prove none leaks."""

from __future__ import annotations

import re
from typing import Final

#: Digit groups joined by single spaces or dashes, as card numbers are printed.
_GROUPS: Final = re.compile(r"[0-9]+(?:[ -][0-9]+)*", re.ASCII)
_SEPARATOR: Final = re.compile(r"[ -]", re.ASCII)
MIN_PAN_DIGITS: Final = 13
MAX_PAN_DIGITS: Final = 19


def luhn_valid(digits: str) -> bool:
    """True when the ASCII digit string passes the Luhn (mod 10) check card numbers carry."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - ord("0")
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def find_pans(text: str, *, luhn: bool = True) -> list[str]:
    """The card numbers in ``text``, as digit strings, in order of appearance.

    A candidate is a run of 13-19 ASCII digits, possibly split into groups by single spaces or
    dashes (``dddd dddd dddd dddd`` or ``dddd-dddd-dddd-dddd``); every stretch of consecutive
    groups is tried, so a number printed after another one is still found. With ``luhn``
    (the default) only candidates passing the Luhn check are returned, which keeps timestamps
    and ids out; with ``luhn=False`` every 13-19 digit candidate is returned, for text that
    has no business holding long numbers at all (a card summary). A single run longer than 19
    digits is not a card number.
    """
    found: list[str] = []
    for match in _GROUPS.finditer(text):
        groups = _SEPARATOR.split(match.group())
        for start in range(len(groups)):
            length = 0
            for end in range(start, len(groups)):
                length += len(groups[end])
                if length > MAX_PAN_DIGITS:
                    break
                if length >= MIN_PAN_DIGITS:
                    candidate = "".join(groups[start : end + 1])
                    if not luhn or luhn_valid(candidate):
                        found.append(candidate)
    return found


#: What ``redact_pans`` puts where a card number was.
REDACTED: Final = "[card number removed]"


def redact_pans(text: str) -> str:
    """``text`` with every printed card number (a run ``find_pans`` flags) replaced."""
    if not _GROUPS.search(text):
        return text
    return _GROUPS.sub(lambda m: REDACTED if find_pans(m.group()) else m.group(), text)

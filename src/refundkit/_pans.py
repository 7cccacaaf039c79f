"""Find card numbers (PANs) in text: to refuse them at the door and to prove none leaks.

One definition serves every use (docs/facade.md, "Card data"). A **card number** is

- 13-19 ASCII digits, written plain or in groups joined by 1-3 separator characters: spaces,
  ``-``, ``.``, ``/``, ``_``, mixed as you like (``4111.1111-1111 1111``). Other Unicode
  digits, spaces and dashes are read as their ASCII twins first (full-width digits...);
- that pass the Luhn check; and
- that start like a card an issuer hands out (``issued``): 3, 4, 5, 6 (Amex, Diners, JCB,
  Visa, Mastercard, Maestro, Discover, UnionPay, RuPay...), 22-27 (Mir, Mastercard 2-series),
  81 and 82 (UnionPay and RuPay 8-series), 8600 (UzCard), 9792 (Troy), 9860 (Humo), or 1 with
  exactly 15 digits (UATP).

The prefix rule keeps digit-heavy ids that are not cards out: dated ids (``2026112210000012``),
epoch-millisecond stamps (``1754402620828``) and Adyen's pspReferences, which start with 8 or 9
(``8815329842815468``, and ``993617895204576J`` whose first 15 digits pass the Luhn check).
A single run of more than 19 digits is not a card number. Text that has no business holding
long numbers at all (a card summary) is checked with ``luhn=False``: any 13-19 digit run; and
the canary scan (R-5.4) looks with ``any_prefix=True``: any Luhn-valid run.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Final
from urllib.parse import unquote_plus

MIN_PAN_DIGITS: Final = 13
MAX_PAN_DIGITS: Final = 19
#: What may stand between the digit groups of a printed card number, 1-3 in a row.
SEPARATORS: Final = " -./_"
_GROUPS: Final = re.compile(r"[0-9]+(?:[ ./_-]{1,3}[0-9]+)*", re.ASCII)
_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)
#: 13 digits with at most 3 separators between each two: what any candidate needs (a fast
#: test in C, so most text, ids and log lines cost a single scan).
_LONG_ENOUGH: Final = re.compile(r"[0-9](?:[ ./_-]{0,3}[0-9]){12}", re.ASCII)


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


def issued(digits: str) -> bool:
    """True when ``digits`` start like a card number an issuer hands out (module docstring)."""
    first = digits[0]
    if first in "3456":
        return True
    if first == "2":
        return "22" <= digits[:2] <= "27"
    if first == "1":
        return len(digits) == 15
    if first == "8":
        return digits.startswith(("81", "82", "8600"))
    if first == "9":
        return digits.startswith(("9792", "9860"))
    return False


def is_pan(digits: str) -> bool:
    """True when the ASCII digit string is a card number (length, issuer prefix, Luhn)."""
    return MIN_PAN_DIGITS <= len(digits) <= MAX_PAN_DIGITS and issued(digits) and luhn_valid(digits)


class _Fold(dict[int, int]):
    """``str.translate`` table: each Unicode digit, space or dash to its ASCII twin, one
    character for one, so offsets in the folded text are offsets in the original. Only the
    characters that change are kept (under a thousand), whatever text comes by."""

    def __missing__(self, code: int) -> int:
        char = chr(code)
        folded = code
        if char.isdecimal():
            folded = ord(str(unicodedata.decimal(char)))
        elif unicodedata.category(char) == "Zs":
            folded = ord(" ")
        elif unicodedata.category(char) == "Pd":
            folded = ord("-")
        else:
            nfkc = unicodedata.normalize("NFKC", char)
            if len(nfkc) == 1 and nfkc.isascii() and (nfkc in SEPARATORS or nfkc.isdigit()):
                folded = ord(nfkc)
        if folded == code:
            raise LookupError(code)  # translate leaves it as it is
        self[code] = folded
        return folded


_FOLD: Final = _Fold()


def _ascii(text: str) -> str:
    return text if text.isascii() else text.translate(_FOLD)


def _spans(text: str, *, luhn: bool, any_prefix: bool = False) -> Iterator[tuple[int, int, str]]:
    """(start, end, digits) of each card-number candidate in ``text``, in order.

    Every stretch of consecutive digit groups is tried, so a number printed next to another
    one (``12/2030 4111 1111 1111 1111``) is still found.
    """
    text = _ascii(text)
    if not _LONG_ENOUGH.search(text):
        return
    for match in _GROUPS.finditer(text):
        groups = [(g.start(), g.end(), g.group()) for g in _DIGITS.finditer(match.group())]
        base = match.start()
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                digits += groups[last][2]
                if len(digits) > MAX_PAN_DIGITS:
                    break
                if len(digits) < MIN_PAN_DIGITS:
                    continue
                if not luhn or (luhn_valid(digits) if any_prefix else is_pan(digits)):
                    yield base + groups[first][0], base + groups[last][1], digits


def find_pans(text: str, *, luhn: bool = True, any_prefix: bool = False) -> list[str]:
    """The card numbers in ``text``, as digit strings, in order of appearance.

    With ``luhn`` (the default) a candidate must be a card number (module docstring); with
    ``luhn=False`` every 13-19 digit candidate is returned, for text that has no business
    holding long numbers at all (a card summary); with ``any_prefix`` every Luhn-valid one,
    whatever its first digits (the strict scan of R-5.4, for tests).
    """
    return [digits for _, _, digits in _spans(text, luhn=luhn, any_prefix=any_prefix)]


def _decoded(text: str) -> str | None:
    """``text`` with URL encoding undone (``+``, ``%20``, twice-encoded ``%2520``...), or None
    when there is none: a card number in a query string or a logged URL is still one."""
    if "%" not in text and "+" not in text:
        return None
    decoded = text
    for _ in range(3):
        decoded, before = unquote_plus(decoded), decoded
        if decoded == before:
            break
    return decoded if decoded != text else None


def has_pan(text: str) -> bool:
    """True when ``text`` holds a card number, as typed or URL-encoded: the check every
    input goes through."""
    if next(_spans(text, luhn=True), None) is not None:
        return True
    decoded = _decoded(text)
    return decoded is not None and next(_spans(decoded, luhn=True), None) is not None


#: What ``redact_pans`` puts where a card number was.
REDACTED: Final = "[card number removed]"


def redact_pans(text: str) -> str:
    """``text`` with every card number (what ``find_pans`` flags) replaced by ``REDACTED``;
    the digits around it (a date, an amount) are kept. A card number that only shows once
    URL encoding is undone (a logged query string) is redacted from the decoded text."""
    spans = [(start, end) for start, end, _ in _spans(text, luhn=True)]
    if not spans:
        decoded = _decoded(text)
        return text if decoded is None or not has_pan(decoded) else redact_pans(decoded)
    out: list[str] = []
    done = 0
    for start, end in sorted(spans):
        if start >= done:
            out += [text[done:start], REDACTED]
        done = max(done, end)  # an overlapping card number widens the one before
    out.append(text[done:])
    return "".join(out)

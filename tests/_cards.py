"""Card numbers for the tests that prove refundkit refuses them and never lets one out.

Every card number here is *generated* (Luhn-valid, 13-19 digits, an issuer's prefix): none is a
literal in the repository. ``written`` prints one the ways people and programs do: plain, in
groups, with spaces, dashes, dots, slashes or underscores (mixed, doubled), in full-width
digits, URL-encoded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from hypothesis import strategies as st

from refundkit import RefundKit
from refundkit._pans import find_pans, has_pan

#: Issuer prefixes (a fixed prefix, or a numeric range of them) and the lengths they issue.
ISSUERS: tuple[tuple[tuple[int, int], int, tuple[int, ...]], ...] = (
    ((4, 4), 1, (13, 16, 19)),  # Visa
    ((51, 55), 2, (16,)),  # Mastercard
    ((2221, 2720), 4, (16,)),  # Mastercard 2-series
    ((34, 34), 2, (15,)),  # American Express
    ((37, 37), 2, (15,)),
    ((6011, 6011), 4, (16, 19)),  # Discover
    ((644, 649), 3, (16, 19)),
    ((65, 65), 2, (16, 19)),  # Discover, RuPay
    ((300, 305), 3, (14,)),  # Diners Club
    ((36, 36), 2, (14,)),
    ((3528, 3589), 4, (16, 17, 18, 19)),  # JCB
    ((62, 62), 2, (16, 17, 18, 19)),  # UnionPay
    ((81, 81), 2, (16, 19)),  # UnionPay 8-series
    ((5018, 5018), 4, (13, 15, 19)),  # Maestro
    ((6759, 6759), 4, (13, 16, 19)),
    ((2200, 2204), 4, (16,)),  # Mir
    ((1, 1), 1, (15,)),  # UATP
    ((60, 60), 2, (16,)),  # RuPay
    ((82, 82), 2, (16,)),
    ((8600, 8600), 4, (16,)),  # UzCard
    ((9792, 9792), 4, (16,)),  # Troy
    ((9860, 9860), 4, (16,)),  # Humo
)
SEPARATORS = (" ", "-", ".", "/", "_")


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str(-total % 10)


@st.composite
def pans(draw: st.DrawFn) -> str:
    """A card number as an issuer would hand it out: its prefix, its length, Luhn-valid."""
    (low, high), width, lengths = draw(st.sampled_from(ISSUERS))
    prefix = str(draw(st.integers(low, high))).zfill(width)
    length = draw(st.sampled_from(lengths))
    rest = draw(
        st.text("0123456789", min_size=length - 1 - len(prefix), max_size=length - 1 - len(prefix))
    )
    return luhn_complete(prefix + rest)


@st.composite
def _groups(draw: st.DrawFn, pan: str) -> list[str]:
    how = draw(st.sampled_from(["none", "fours", "amex", "random"]))
    if how == "none":
        return [pan]
    if how == "fours":
        return [pan[i : i + 4] for i in range(0, len(pan), 4)]
    if how == "amex":
        return [pan[:4], pan[4:10], pan[10:]]
    cuts = sorted(draw(st.sets(st.integers(1, len(pan) - 1), max_size=8)))
    return [pan[a:b] for a, b in zip([0, *cuts], [*cuts, len(pan)], strict=True)]


_FULL_WIDTH = {ord("0") + i: 0xFF10 + i for i in range(10)}  # 0-9 as full-width digits


@st.composite
def written(draw: st.DrawFn, pan: str, *, ascii_only: bool = False) -> str:
    """``pan`` as someone might type it: grouped or not, any separators (mixed, 1-3 of them),
    maybe in full-width digits, maybe inside other text."""
    groups = draw(_groups(pan))
    one = draw(st.sampled_from(SEPARATORS))
    mixed = draw(st.booleans())
    separator = st.text(st.sampled_from(SEPARATORS), min_size=1, max_size=3)
    text = groups[0]
    for group in groups[1:]:
        text += (draw(separator) if mixed else one) + group
    if not ascii_only and draw(st.integers(0, 9)) == 0:
        text = text.translate(_FULL_WIDTH)
    before = draw(st.sampled_from(["", "", "pay_", "card ", "ref-", "x"]))
    after = draw(st.sampled_from(["", "", "_2", " (visa)", ".x", "z"]))
    return before + text + after


def url_encoded(text: str, *, plus: bool) -> str:
    return quote_plus(text) if plus else quote(text, safe="")


# --- the sinks ------------------------------------------------------------------------------


def table_dump(kit: RefundKit) -> list[tuple[str, str]]:
    """Every row of every table of the store (not only the known ones), as text."""
    out: list[tuple[str, str]] = []
    with kit.store.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                out.append((f"table {table}", json.dumps([str(v) for v in row])))
    return out


def sqlite_dump(path: Path) -> list[tuple[str, str]]:
    """Every row of every table of a SQLite file (the sandbox gateway's own books)."""
    if not path.exists():
        return []
    db = sqlite3.connect(str(path))
    try:
        names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            (f"sandbox {name}", json.dumps([str(v) for v in row]))
            for name in names
            for row in db.execute(f'SELECT * FROM "{name}"')
        ]
    finally:
        db.close()


def leaks(texts: Iterable[tuple[str, str]], pans: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(where, what) for each text holding a card number: one ``find_pans`` finds (URL-encoded
    too), or one of ``pans`` with its separators taken out."""
    wanted = set(pans)
    found = []
    for where, text in texts:
        digits = "".join(str(int(c)) for c in text if c.isdecimal())
        if has_pan(text) or any(p in digits for p in wanted):
            found.append((where, str(find_pans(text)) or text[:200]))
    return found


class AccessLog(logging.Handler):
    """uvicorn's access log as its server writes it: the same logger, message and formatter."""

    def __init__(self) -> None:
        from uvicorn.logging import AccessFormatter

        super().__init__(logging.INFO)
        self.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def request(self, response: Any) -> None:
        """The line uvicorn logs for ``response`` (its path and query, as they came in)."""
        from urllib.parse import unquote

        from uvicorn.protocols.utils import get_path_with_query_string

        raw_path, _, query = response.request.url.raw_path.partition(b"?")
        scope: Any = {"path": unquote(raw_path.decode()), "query_string": query, "root_path": ""}
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:50000",
            response.request.method,
            get_path_with_query_string(scope),
            "1.1",
            response.status_code,
        )


@contextlib.contextmanager
def capture_access_log() -> Iterator[AccessLog]:
    """The lines uvicorn's access logger writes meanwhile (through refundkit's filter)."""
    handler = AccessLog()
    logger = logging.getLogger("uvicorn.access")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

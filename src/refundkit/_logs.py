"""No card number reaches a log: a filter that redacts them from every record it sees.

``install()`` (run when ``refundkit`` is imported) puts the filter on refundkit's loggers, on
uvicorn's (its access log writes each request's path and query string: a card number typed
into the dashboard's search box would land there) and on the gateway SDKs' and HTTP clients'
(R-5.4 scans them). A filter on a logger sees the records logged through that very logger, so
each name is listed; ``tests/test_card_numbers.py`` checks that every ``refundkit.*`` logger
has it. The message, its arguments, a traceback, a stack and ``extra=`` fields are redacted
with ``_pans.redact_pans``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from ._pans import has_pan, redact_pans

#: The loggers the filter sits on.
LOGGERS: Final = (
    "refundkit",
    "refundkit.dashboard",
    "refundkit.plugins",
    "refundkit.webhooks",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "stripe",
    "braintree",
    "Adyen",
    "urllib3",
    "httpx",
)
_FORMATTER: Final = logging.Formatter()
#: The attributes every record has; the others came with ``extra=``.
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RedactCardNumbers(logging.Filter):
    """Rewrites a record whose text holds a card number; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it when emitting
            return True
        if has_pan(message):
            _redact_message(record)
        if record.exc_info and not record.exc_text:
            text = _FORMATTER.formatException(record.exc_info)
            if has_pan(text):
                record.exc_text = redact_pans(text)
        if record.stack_info and has_pan(record.stack_info):
            record.stack_info = redact_pans(record.stack_info)
        for name in record.__dict__.keys() - _STANDARD:  # extra={...}: a formatter may print it
            value = record.__dict__[name]
            if has_pan(value if isinstance(value, str) else str(value)):
                record.__dict__[name] = redact_pans(str(value))
        return True


def _redact_message(record: logging.LogRecord) -> None:
    """Redact the format string and each argument, keeping their shape (uvicorn's access
    formatter reads its five arguments); when a card number still shows (split across
    arguments, or an argument that is not text), the message is replaced whole."""
    if isinstance(record.msg, str):
        record.msg = redact_pans(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redacted(arg) for arg in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {key: _redacted(arg) for key, arg in record.args.items()}
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    else:
        if not has_pan(message):
            return
    record.msg, record.args = redact_pans(message), None


def _redacted(arg: object) -> object:
    if isinstance(arg, str):
        return redact_pans(arg)
    return redact_pans(str(arg)) if has_pan(str(arg)) else arg


#: The one instance: installing twice adds nothing.
FILTER: Final = RedactCardNumbers()


def install(names: tuple[str, ...] = LOGGERS) -> None:
    """Put the filter on each named logger (created if need be; it keeps the filter)."""
    for name in names:
        logger = logging.getLogger(name)
        if FILTER not in logger.filters:
            logger.addFilter(FILTER)

"""Adyen SDK exceptions → refundkit's error tree, at the boundary.

Only answers that prove nothing happened release a reservation (``GatewayDeclined``,
``GatewayRateLimited``, ``GatewayUnavailable``, ``GatewayAuthenticationError``,
``GatewayPaymentNotFound``); a request that may have been applied maps to ``GatewayTimeout``
or a bare ``GatewayError`` and the refund stays ``unknown`` until recovery re-sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from refundkit import (
    ConfigurationError,
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    RefundkitError,
)

#: Every class of ``Adyen.exceptions`` → what it means when no status or code says more.
#: A test walks the SDK module, so a class added by a new SDK version fails until it is here.
SDK_ERRORS: Final[Mapping[str, type[RefundkitError]]] = {
    "AdyenError": GatewayError,
    # Missing credentials: our configuration, found before anything was sent.
    "AdyenInvalidRequestError": ConfigurationError,
    "AdyenEndpointInvalidFormat": ConfigurationError,
    "AdyenAPIResponseError": GatewayError,
    "AdyenAPIAuthenticationError": GatewayAuthenticationError,
    "AdyenAPIInvalidPermission": GatewayAuthenticationError,
    # 404 and 500: a 500 may have been applied, so the outcome is not known.
    "AdyenAPICommunicationError": GatewayError,
    "AdyenAPIValidationError": GatewayDeclined,
    "AdyenAPIUnprocessableEntity": GatewayDeclined,
    "AdyenAPIInvalidFormat": GatewayError,
}

#: errorCode → error, whatever the HTTP status (https://docs.adyen.com/development-resources/error-codes).
_BY_CODE: Final[Mapping[str, type[GatewayError]]] = {
    "000": GatewayAuthenticationError,  # 401: unauthorized (bad API key)
    "010": GatewayAuthenticationError,  # 403: not allowed
    "901": GatewayAuthenticationError,  # 403: invalid merchant account
    "167": GatewayPaymentNotFound,  # 422: original pspReference required / unknown payment
    "137": GatewayDeclined,  # 422: invalid amount (e.g. more than is left to refund)
    # Same idempotency key while the first request is in progress: that one may succeed.
    "704": GatewayTimeout,
    # The idempotency store was unavailable: the request was not processed.
    "703": GatewayUnavailable,
}

_MESSAGES: Final[Mapping[type[RefundkitError], str]] = {
    GatewayTimeout: "a request with this idempotency key is still in progress at Adyen",
    GatewayUnavailable: "Adyen did not process the request; retry it with the same key",
    GatewayRateLimited: "Adyen says too many requests",
}


def translate(exc: Exception) -> RefundkitError:
    """The refundkit error for an SDK exception (``raise translate(e) from e``)."""
    status = _status(exc)
    code = str(getattr(exc, "error_code", "") or "") or None
    kind = _classify(exc, status, code)
    detail = _detail(exc)
    message = _MESSAGES.get(kind, "Adyen refused the request")
    text = f"{message} (HTTP {status or '?'}, errorCode {code or '-'}: {detail})"
    if issubclass(kind, GatewayError):
        return kind(text, gateway_code=code)
    return kind(text)


def _classify(exc: Exception, status: int | None, code: str | None) -> type[RefundkitError]:
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if status == 429 or (code == "00_500" and "too many requests" in _detail(exc).lower()):
        return GatewayRateLimited
    if status == 503 and _transient(exc):
        return GatewayUnavailable
    if status == 409:  # a conflict on the idempotency key: the first request may succeed
        return GatewayTimeout
    for cls in type(exc).__mro__:
        if cls.__module__.startswith("Adyen") and cls.__name__ in SDK_ERRORS:
            return SDK_ERRORS[cls.__name__]
    return GatewayError


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    try:
        return int(status) if status not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _transient(exc: Exception) -> bool:
    headers = getattr(exc, "headers", None)
    if not isinstance(headers, Mapping):
        return False
    return str(headers.get("transient-error", "")).lower() == "true"


def _detail(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    if isinstance(message, Mapping):
        return str(message.get("message") or message.get("errorType") or "")
    return str(message if message is not None else exc)[:200]

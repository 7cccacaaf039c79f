"""Adyen SDK exceptions → refundkit's error tree, at the boundary.

Only an answer that proves Adyen did not act releases a reservation (R-2.4). So the HTTP
status is read **first**, and the ``errorCode`` only refines a 4xx:

* 5xx: the refund may have been applied, whatever ``errorCode`` the body carries (Adyen answers
  HTTP-layer errors with errorCode ``000`` whatever the status, and a 500 may carry a validation
  or security code) → ``GatewayTimeout``: the refund stays ``unknown`` and held until recovery
  re-sends it with its key;
* 429 → ``GatewayRateLimited``; 401/403 → ``GatewayAuthenticationError``; 400/422 →
  ``GatewayDeclined``, or the refinement its errorCode names (167 → payment not found, 704 →
  the same key still in progress, held);
* 409, any other status, or an answer without one → held (``GatewayTimeout`` or a bare
  ``GatewayError``).
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
    RefundkitError,
)

#: Every class of ``Adyen.exceptions`` → what it means when it carries no HTTP status (an SDK
#: check before anything was sent, or a test building one). With a status, the status decides.
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

#: A 4xx status → what it proves (https://docs.adyen.com/development-resources/response-handling).
BY_STATUS: Final[Mapping[int, type[GatewayError]]] = {
    400: GatewayDeclined,  # validation: nothing was processed
    401: GatewayAuthenticationError,
    403: GatewayAuthenticationError,
    409: GatewayTimeout,  # a conflict on the idempotency key: the first request may succeed
    422: GatewayDeclined,
    429: GatewayRateLimited,
}

#: errorCode → error, read only on a 4xx answer; a 5xx is held whatever its code
#: (https://docs.adyen.com/development-resources/error-codes).
BY_CODE_4XX: Final[Mapping[str, type[GatewayError]]] = {
    "010": GatewayAuthenticationError,  # not allowed
    "901": GatewayAuthenticationError,  # invalid merchant account
    "167": GatewayPaymentNotFound,  # original pspReference required / unknown payment
    "137": GatewayDeclined,  # invalid amount (e.g. more than is left to refund)
    # The same idempotency key while the first request is in progress: that one may succeed.
    "704": GatewayTimeout,
}

_MESSAGES: Final[Mapping[type[RefundkitError], str]] = {
    GatewayRateLimited: "Adyen says too many requests",
}


def translate(exc: Exception) -> RefundkitError:
    """The refundkit error for an SDK exception (``raise translate(e) from e``)."""
    status = _status(exc)
    code = str(getattr(exc, "error_code", "") or "") or None
    kind = classify(exc, status, code)
    where = f"HTTP {status or '?'}, errorCode {code or '-'}"
    text = f"{_message(kind, status)} ({where}: {_detail(exc)})"
    if issubclass(kind, GatewayError):
        return kind(text, gateway_code=code)
    return kind(text)


def classify(exc: Exception, status: int | None, code: str | None) -> type[RefundkitError]:
    """The status first; the errorCode only refines a 4xx (module docstring)."""
    if status is None:
        return _by_class(exc)
    if status >= 500:
        return GatewayTimeout
    if 400 <= status < 500:
        if code is not None and code in BY_CODE_4XX:
            return BY_CODE_4XX[code]
        return BY_STATUS.get(status, GatewayError)
    return GatewayError  # a status the SDK should not raise for: not understood, held


def _by_class(exc: Exception) -> type[RefundkitError]:
    for cls in type(exc).__mro__:
        if cls.__module__.startswith("Adyen") and cls.__name__ in SDK_ERRORS:
            return SDK_ERRORS[cls.__name__]
    return GatewayError


def _message(kind: type[RefundkitError], status: int | None) -> str:
    if status is not None and status >= 500:
        return "Adyen answered with a server error; the refund may have been applied"
    if kind is GatewayTimeout:
        return "a request with this idempotency key is still in progress at Adyen"
    if kind is GatewayError:
        return "Adyen's answer is not understood; the refund may have been applied"
    return _MESSAGES.get(kind, "Adyen refused the request")


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    try:
        return int(status) if status not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _detail(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    if isinstance(message, Mapping):
        return str(message.get("message") or message.get("errorType") or "")
    return str(message if message is not None else exc)[:200]

"""Braintree's answers translated into refundkit's error tree, at the plugin boundary.

Two kinds of refusal come back from Braintree:

* exceptions of ``braintree.exceptions`` (HTTP 401/403/404/408/426/429/5xx, transport
  failures, webhook signatures), mapped by class name in ``EXCEPTIONS``;
* an unsuccessful result (HTTP 422 is not an exception): validation errors with numeric codes,
  mapped in ``VALIDATION_CODES``, or a refund the processor declined (a transaction with a
  2000-class ``processor_response_code``).

Which refundkit error decides what the kit does: a definite refusal (declined, rate limited,
unavailable, authentication, not found) releases the reservation; ``GatewayTimeout`` leaves
the refund ``unknown`` until recovery finds it by its ``order_id``.

The HTTP status decides first (R-2.4): the SDK raises on the status before it reads a body
(``braintree/util/http.py``: only 200, 201, 204 and 422 are parsed), so a 5xx is an exception
of its status whatever its body says, and every 5xx exception is held (``GatewayTimeout``):
500, 503 and 504 by name, any other as ``UnexpectedError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final
from xml.sax.saxutils import escape

from refundkit import (
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    RefundkitError,
    WebhookVerificationError,
)

ErrorFactory = Callable[[str], RefundkitError]


def _make(cls: type[GatewayError], code: str) -> ErrorFactory:
    return lambda message: cls(message, gateway_code=code)


def _webhook(message: str) -> RefundkitError:
    return WebhookVerificationError(f"braintree webhook refused: {message}")


#: Every exception class of ``braintree.exceptions`` (by class name) → the refundkit error.
#: A test walks the SDK module, so a class added by a new SDK version fails until mapped here.
EXCEPTIONS: Final[Mapping[str, ErrorFactory]] = MappingProxyType(
    {
        # Refused before anything happened.
        "AuthenticationError": _make(GatewayAuthenticationError, "authentication"),
        "AuthorizationError": _make(GatewayAuthenticationError, "authorization"),
        "ConfigurationError": _make(GatewayAuthenticationError, "configuration"),
        "TestOperationPerformedInProductionError": _make(
            GatewayAuthenticationError, "test_operation_in_production"
        ),
        "NotFoundError": _make(GatewayPaymentNotFound, "not_found"),
        "TooManyRequestsError": _make(GatewayRateLimited, "too_many_requests"),
        # 426: this API version is refused before anything is processed.
        "UpgradeRequiredError": _make(GatewayUnavailable, "upgrade_required"),
        # Sent, outcome unknown (a 5xx may have been applied, whatever its body says):
        # recovery looks the refund up by its order_id.
        "ServerError": _make(GatewayTimeout, "server_error"),
        "ServiceUnavailableError": _make(GatewayTimeout, "service_unavailable"),
        "GatewayTimeoutError": _make(GatewayTimeout, "gateway_timeout"),
        "RequestTimeoutError": _make(GatewayTimeout, "request_timeout"),
        "TimeoutError": _make(GatewayTimeout, "timeout"),
        "ReadTimeoutError": _make(GatewayTimeout, "read_timeout"),
        # A connection error may come after the request was written (a reset mid-reply).
        "ConnectionError": _make(GatewayTimeout, "connection_error"),
        "ConnectTimeoutError": _make(GatewayTimeout, "connect_timeout"),
        "InvalidResponseError": _make(GatewayTimeout, "invalid_response"),
        "UnexpectedError": _make(GatewayTimeout, "unexpected"),
        "BraintreeError": _make(GatewayError, "braintree_error"),
        # Webhooks.
        "InvalidSignatureError": _webhook,
        "InvalidChallengeError": _webhook,
    }
)


def from_exception(exc: BaseException) -> RefundkitError:
    """The refundkit error for a ``braintree.exceptions`` exception (by its class, then bases)."""
    for cls in type(exc).__mro__:
        factory = EXCEPTIONS.get(cls.__name__)
        if factory is not None and cls.__module__.startswith("braintree."):
            detail = str(exc) or cls.__name__
            return factory(f"braintree: {detail}")
    return GatewayError(f"braintree failed unexpectedly: {type(exc).__name__}: {exc}")


#: Validation codes of a refused refund or void → (refundkit gateway code, the policy limit
#: that says the same thing, or None). Every one is a definite refusal (``GatewayDeclined``).
VALIDATION_CODES: Final[Mapping[str, tuple[str, str | None]]] = MappingProxyType(
    {
        "91506": ("unsettled", "unsettled"),  # CannotRefundUnlessSettled
        "91574": ("unsettled", "unsettled"),  # CannotRefundSettlingTransaction
        "91521": ("amount_too_large", "payment_cap"),  # RefundAmountIsTooLarge
        "91512": ("already_refunded", "payment_cap"),  # HasAlreadyBeenRefunded
        "91505": ("cannot_refund_credit", None),  # CannotRefundCredit
        "91547": ("refunds_not_supported", None),  # MerchantAccountDoesNotSupportRefunds
        "91538": ("merchant_account_suspended", None),
        "91559": ("merchant_account_pending", None),
        "91504": ("cannot_be_voided", None),  # CannotBeVoided
        "81531": ("amount_invalid", None),  # AmountMustBeGreaterThanZero
        "81503": ("amount_invalid", None),  # AmountIsInvalid
        "915200": ("refund_declined", None),  # RefundAuthHardDeclined
        "915201": ("refund_declined", None),  # RefundAuthSoftDeclined
    }
)


def declined(codes: list[tuple[str, str]], message: str) -> GatewayDeclined:
    """A refusal from the validation errors ``codes`` [(code, message)] of an ErrorResult."""
    for code, text in codes:
        known = VALIDATION_CODES.get(code)
        if known is not None:
            name, limit = known
            details: dict[str, Any] = {"braintree_code": code}
            if limit is not None:
                details["limit"] = limit
            return GatewayDeclined(f"braintree {code}: {text}", gateway_code=name, **details)
    first = codes[0][0] if codes else None
    return GatewayDeclined(
        f"braintree refused the request: {message}",
        gateway_code="validation_error",
        braintree_code=first,
    )


def server_error_body(status: int = 500, code: str | None = None, message: str = "") -> bytes:
    """A 5xx answer's body for cassettes and tests. Braintree's 5xx bodies are not documented
    and the SDK never reads them (it raises on the status); with ``code`` the body is an
    ``api-error-response`` carrying that validation code, to show that no code in a 5xx body
    turns it into a refusal. Without it the body is empty."""
    if not 500 <= status <= 599:
        raise ValueError(f"a server error has a 5xx status, not {status}")
    if code is None:
        return b""
    text = escape(message or "Internal Server Error")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<api-error-response><errors><transaction>'
        f'<errors type="array"><error><code>{escape(code)}</code><attribute type="symbol">base'
        f"</attribute><message>{text}</message></error></errors></transaction></errors>"
        f"<message>{text}</message></api-error-response>\n"
    ).encode()


def processor_declined(code: str, text: str) -> GatewayDeclined:
    """A refund authorization the card issuer declined (processor response 2000-2999)."""
    return GatewayDeclined(
        f"braintree: the card issuer declined the refund ({code} {text})",
        gateway_code="processor_declined",
        braintree_code=code,
    )

"""Stripe's exceptions translated into refundkit's error tree, at the boundary.

Only an answer that proves Stripe did not act releases a reservation (R-2.4), so the HTTP
status is read first: a 5xx (after the SDK's retries with the same key), a 409, a transport
failure after sending, or a status the plugin cannot classify is held (``GatewayTimeout`` or
a bare ``GatewayError``) whatever error code the body carries; Stripe's code refines only a
4xx answer (400, 402, 404). Every class of ``stripe._error`` is named in ``ERROR_MAP`` (a test
walks the module, so a class a new SDK adds fails it until it is mapped here). Imported on
first use only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import stripe
import stripe.oauth_error as oauth

from refundkit import (
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    RefundkitError,
    WebhookVerificationError,
)

#: Codes with which Stripe definitely refuses a refund: nothing was refunded. They read like
#: the policy's refusals (what blocks the refund), with Stripe's code kept as gateway_code.
REFUSALS: Final[dict[str, str]] = {
    "amount_too_large": "the amount is more than is left to refund on the charge",
    "amount_too_small": "the amount is below Stripe's minimum",
    "charge_already_refunded": "the charge is already refunded in full",
    "charge_disputed": "the charge was disputed (charged back)",
    "refund_disputed_payment": "the payment is disputed",
    "charge_not_refundable": "the charge is no longer refundable",
    "return_intent_already_processed": "the return was already processed",
}

#: Codes meaning the charge or payment intent does not exist (or not on this account).
NOT_FOUND: Final = frozenset({"resource_missing"})

#: Each SDK exception class -> the refundkit error it becomes (before code refinements).
#: Only GatewayDeclined, GatewayRateLimited, GatewayAuthenticationError and
#: GatewayPaymentNotFound tell the kit that nothing was refunded; GatewayTimeout and a bare
#: GatewayError keep the refund ``unknown`` until recovery looks it up.
ERROR_MAP: Final[dict[type[stripe.StripeError], type[RefundkitError]]] = {
    # A transport failure may come after the request was sent: the outcome is unknown.
    stripe.APIConnectionError: GatewayTimeout,
    # 5xx after the SDK's retries, and 409 idempotency_key_in_use: maybe applied.
    stripe.APIError: GatewayTimeout,
    stripe.AuthenticationError: GatewayAuthenticationError,
    stripe.PermissionError: GatewayAuthenticationError,
    stripe.CardError: GatewayDeclined,
    stripe.InvalidRequestError: GatewayDeclined,
    # The key was used before with other parameters: a refund with that key may exist.
    stripe.IdempotencyError: GatewayError,
    stripe.RateLimitError: GatewayRateLimited,
    stripe.SignatureVerificationError: WebhookVerificationError,
    # Stripe API v2 errors: refunds never go through v2, so any of these is a surprise and
    # the refund is held unknown rather than released.
    stripe.StripeError: GatewayError,
    stripe._error.StripeErrorWithParamCode: GatewayError,
    stripe.error.AlreadyCanceledError: GatewayError,
    stripe.error.BlockedByStripeError: GatewayError,
    stripe.error.CannotProceedError: GatewayError,
    stripe.error.CapabilityNotEnabledError: GatewayError,
    stripe.error.ControlledByAlternateResourceError: GatewayError,
    stripe.error.FeatureNotEnabledError: GatewayError,
    stripe.error.FinancialAccountNotOpenError: GatewayError,
    stripe.error.FxQuoteNeedsRefreshError: GatewayError,
    stripe.error.InsufficientFundsError: GatewayError,
    stripe.error.InvalidPaymentMethodError: GatewayError,
    stripe.error.InvalidPayoutMethodError: GatewayError,
    stripe.error.InvalidVaultedCredentialError: GatewayError,
    stripe.error.NotCancelableError: GatewayError,
    stripe.error.QuotaExceededError: GatewayError,
    stripe.error.RecipientNotNotifiableError: GatewayError,
    stripe.error.TemporarySessionExpiredError: GatewayError,
    stripe.error.VerificationAttemptFailedError: GatewayError,
    stripe.error.VerificationExpiredError: GatewayError,
    stripe.error.VerificationNotInitiatedError: GatewayError,
    # Connect OAuth (never on the refund path): the account's credentials are refused.
    oauth.OAuthError: GatewayAuthenticationError,
    oauth.InvalidClientError: GatewayAuthenticationError,
    oauth.InvalidGrantError: GatewayAuthenticationError,
    oauth.InvalidRequestError: GatewayAuthenticationError,
    oauth.InvalidScopeError: GatewayAuthenticationError,
    oauth.UnsupportedGrantTypeError: GatewayAuthenticationError,
    oauth.UnsupportedResponseTypeError: GatewayAuthenticationError,
}


def gateway_code(exc: stripe.StripeError) -> str | None:
    """Stripe's error code: ``exc.code`` for some classes, ``exc.error.code`` for the rest
    (a 429 ``lock_timeout`` has ``exc.code is None``)."""
    if exc.code:
        return exc.code
    error = exc.error
    return error.code if error is not None and error.code else None


#: The 4xx statuses whose answer proves nothing was refunded, so Stripe's code may refine
#: them (a refusal, a missing charge); 409 (``idempotency_key_in_use``) is not among them.
REFINED_STATUSES: Final = frozenset({400, 402, 404})


def translate(exc: stripe.StripeError) -> RefundkitError:
    """The refundkit error for ``exc``: held for a 5xx whatever its code, else its class's
    entry, refined by Stripe's code on a 400, 402 or 404 only."""
    code = gateway_code(exc)
    message = f"stripe: {exc.user_message or exc}"
    status = exc.http_status
    if isinstance(status, int) and status >= 500:
        # The SDK retried it with the same key; it may still have been applied.
        return GatewayTimeout(
            f"stripe answered HTTP {status}; the refund may have been applied ({message})",
            gateway_code=code,
        )
    if status in REFINED_STATUSES and not isinstance(exc, stripe.IdempotencyError):
        refined = _refined(exc, code, message)
        if refined is not None:
            return refined
    error_class = next(ERROR_MAP[c] for c in type(exc).__mro__ if c in ERROR_MAP)
    if issubclass(error_class, GatewayError):
        return error_class(message, gateway_code=code)
    return error_class(message)


def _refined(exc: stripe.StripeError, code: str | None, message: str) -> GatewayError | None:
    if code in NOT_FOUND or (
        isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404
    ):
        return GatewayPaymentNotFound(message, gateway_code=code)
    if code in REFUSALS:
        return GatewayDeclined(f"stripe refuses the refund: {REFUSALS[code]} ({code})",
                               gateway_code=code)  # fmt: skip
    return None


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Run a Stripe call; any ``stripe.StripeError`` leaves as a refundkit error (cause kept).

    Anything else the SDK raises (it trips on some 5xx bodies: a string ``error``, bytes that
    are not UTF-8) came after the request may have been applied: a plain ``GatewayError``,
    which holds the refund until it is looked up."""
    try:
        yield
    except stripe.StripeError as exc:
        raise translate(exc) from exc
    except RefundkitError:
        raise
    except Exception as exc:
        raise GatewayError(
            f"stripe: the answer could not be read ({type(exc).__name__}); the outcome is unknown"
        ) from exc

"""The error tree. Every error has a stable ``code`` that callers and the CLI can rely on.

On an error nothing is written. ``InvalidInput`` is also a ``ValueError`` and ``NotFound`` a
``LookupError``; the gateway errors marked * prove the gateway refunded nothing, so only they
release a reservation (``refundkit._gateway.DEFINITE_REFUSALS``, with ``InvalidMoney``)::

    RefundkitError  (refundkit_error)
    ├── InvalidInput  (invalid_input)
    │   ├── InvalidMoney  (invalid_money)
    │   │   ├── InvalidMoneyType  (invalid_money)
    │   │   ├── CurrencyMismatch  (currency_mismatch)
    │   │   └── AmountNotRepresentable  (amount_not_representable)
    │   ├── InvalidIdempotencyKey  (invalid_idempotency_key)
    │   ├── CardDataRefused  (card_data_refused)
    │   └── InvalidPlan  (invalid_plan)
    ├── NotFound  (not_found)
    │   ├── PaymentNotFound  (payment_not_found)
    │   ├── RefundNotFound  (refund_not_found)
    │   └── WebhookEndpointNotFound  (webhook_endpoint_not_found)
    ├── PaymentExists  (payment_exists)
    ├── RefundNotAllowed  (refund_not_allowed)
    │   └── InsufficientRefundableBalance  (insufficient_refundable_balance)
    ├── IdempotencyConflict  (idempotency_conflict)
    ├── RequestInProgress  (request_in_progress)
    ├── StalePlan  (stale_plan)
    ├── ApprovalRefused  (approval_refused)
    ├── ResolutionRefused  (resolution_refused)
    │   └── GatewayDisagrees  (gateway_disagrees)
    ├── InsufficientBalance  (insufficient_balance)
    ├── GatewayError  (gateway_error)
    │   ├── GatewayDeclined  (gateway_declined) *
    │   ├── GatewayAuthenticationError  (gateway_authentication) *
    │   ├── GatewayPaymentNotFound  (gateway_payment_not_found) *
    │   ├── GatewayRateLimited  (gateway_rate_limited) *
    │   ├── GatewayUnavailable  (gateway_unavailable) *
    │   ├── GatewayTimeout  (gateway_timeout)
    │   └── RefundReleased  (refund_released)
    ├── WebhookVerificationError  (webhook_verification_failed)
    │   ├── WebhookHeaderMissing  (webhook_header_missing)
    │   ├── WebhookHeaderMalformed  (webhook_header_malformed)
    │   ├── WebhookTimestampOutOfTolerance  (webhook_timestamp_out_of_tolerance)
    │   └── WebhookSignatureMismatch  (webhook_signature_mismatch)
    ├── WebhookUnprocessable  (webhook_unprocessable)
    ├── ConfigurationError  (configuration_error)
    │   ├── StoreNotFound  (store_not_found)
    │   ├── InvalidStore  (invalid_store)
    │   ├── UnknownGateway  (unknown_gateway)
    │   ├── InvalidWebhookSecret  (invalid_webhook_secret)
    │   └── PluginError  (plugin_error)
    └── StoreUnavailable  (store_unavailable)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._pans import redact_pans

if TYPE_CHECKING:
    from ._model import Limit, Refund


class RefundkitError(Exception):
    """Base of every error refundkit raises on purpose."""

    code: str = "refundkit_error"
    #: True when the caller made the mistake (the CLI exits 2 for these).
    user_error: bool = True

    def __init__(self, message: str, **details: Any) -> None:
        # Messages often echo what the caller passed (an id, a key): never a card number.
        message = redact_pans(message)
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


# --- inputs ----------------------------------------------------------------------------------


class InvalidInput(RefundkitError, ValueError):
    """An argument has the wrong type or shape."""

    code = "invalid_input"


class InvalidMoney(InvalidInput):
    """An amount or currency that cannot be money: floats, bools, bad strings, unknown codes."""

    code = "invalid_money"


class InvalidMoneyType(InvalidMoney, TypeError):
    """A float, bool, None or str where an int amount or a str currency belongs (R-6.1)."""


class CurrencyMismatch(InvalidMoney):
    """Two amounts in different currencies met (e.g. a USD refund of a EUR payment)."""

    code = "currency_mismatch"


class InvalidIdempotencyKey(InvalidInput):
    """An idempotency key is 1-255 printable ASCII characters without spaces."""

    code = "invalid_idempotency_key"


class CardDataRefused(InvalidInput):
    """A full card number, CVV or similar secret was offered; refundkit never stores it."""

    code = "card_data_refused"


class InvalidPlan(InvalidInput):
    """A plan that ``plan_refund`` did not make as it stands: not a plan at all (malformed
    JSON, missing fields), or a leg that refunds a payment of another customer, outside the
    plan's invoice, or (a ``balance`` plan) not from a lot of the customer balance."""

    code = "invalid_plan"


# --- lookups ---------------------------------------------------------------------------------


class NotFound(RefundkitError, LookupError):
    """No such record (also a ``LookupError``)."""

    code = "not_found"


class PaymentNotFound(NotFound):
    """No payment with that id is recorded."""

    code = "payment_not_found"


class RefundNotFound(NotFound):
    """No refund with that id is recorded."""

    code = "refund_not_found"


class WebhookEndpointNotFound(NotFound):
    """No deliverer has seen a webhook endpoint with this URL."""

    code = "webhook_endpoint_not_found"


class PaymentExists(RefundkitError):
    """A payment with this id (or this gateway payment id) is already recorded differently."""

    code = "payment_exists"


# --- refusals --------------------------------------------------------------------------------


class RefundNotAllowed(RefundkitError):
    """The policy refuses this refund; ``limits`` says which rules bind and why."""

    code = "refund_not_allowed"

    def __init__(self, message: str, limits: Sequence[Limit] = (), **details: Any) -> None:
        super().__init__(message, **details)
        self.limits = tuple(limits)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["limits"] = [limit.to_dict() for limit in self.limits]
        return d


class InsufficientRefundableBalance(RefundNotAllowed):
    """The amount asked for exceeds what may still be refunded."""

    code = "insufficient_refundable_balance"


class IdempotencyConflict(RefundkitError):
    """The idempotency key was used before with different parameters."""

    code = "idempotency_conflict"


class RequestInProgress(RefundkitError):
    """A request with this idempotency key is still being executed; retry later."""

    code = "request_in_progress"
    user_error = False


class StalePlan(RefundkitError):
    """A refund made since the plan was previewed changed what it was based on: plan again."""

    code = "stale_plan"


class ApprovalRefused(RefundkitError):
    """An approval decision that may not be made: the requester deciding (four eyes), or a
    request already decided."""

    code = "approval_refused"


class ResolutionRefused(RefundkitError):
    """A manual-review decision that may not be made: the refund is not in manual review."""

    code = "resolution_refused"


class GatewayDisagrees(ResolutionRefused):
    """The gateway says otherwise about the refund a person tries to decide."""

    code = "gateway_disagrees"


class InsufficientBalance(RefundkitError):
    """The customer balance does not hold the amount asked for."""

    code = "insufficient_balance"


# --- gateways --------------------------------------------------------------------------------


class GatewayError(RefundkitError):
    """A gateway refused or failed. Plugins translate their SDK's errors into these."""

    code = "gateway_error"
    user_error = False

    def __init__(
        self,
        message: str,
        *,
        gateway_code: str | None = None,
        refund: Refund | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.gateway_code = gateway_code
        #: The failed refund as recorded, when the refusal came after a reservation.
        self.refund = refund

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.gateway_code:
            d["gateway_code"] = self.gateway_code
        if self.refund is not None:
            d["refund_id"] = self.refund.id
        return d


class GatewayDeclined(GatewayError):
    """A definite refusal: nothing was refunded (e.g. already refunded, too large, disputed)."""

    code = "gateway_declined"
    user_error = True


class GatewayAuthenticationError(GatewayError):
    """The gateway refused our credentials: nothing was refunded."""

    code = "gateway_authentication"


class GatewayPaymentNotFound(GatewayError):
    """The gateway does not know the payment: nothing was refunded."""

    code = "gateway_payment_not_found"


class GatewayRateLimited(GatewayError):
    """The gateway asked us to slow down; the request was not applied."""

    code = "gateway_rate_limited"


class GatewayUnavailable(GatewayError):
    """The request definitely did not take effect (connection refused, 5xx before effect)."""

    code = "gateway_unavailable"


class GatewayTimeout(GatewayError):
    """The request may or may not have taken effect: the refund becomes ``unknown``."""

    code = "gateway_timeout"


class RefundReleased(GatewayError):
    """The refund never reached the gateway: while its worker stalled between reserving and
    sending it, recovery (or a person) released it, so it was not sent (fencing). Nothing was
    refunded; ``refund`` is the refund as recorded (``failed``, ``not_submitted``). Refund
    again with a new idempotency key."""

    code = "refund_released"


class AmountNotRepresentable(InvalidMoney):
    """A gateway cannot carry this amount in this currency (it is refused, never rounded)."""

    code = "amount_not_representable"


class WebhookVerificationError(RefundkitError):
    """An inbound webhook is unsigned, wrongly signed, stale or malformed."""

    code = "webhook_verification_failed"


class WebhookHeaderMissing(WebhookVerificationError):
    """``webhook-id``, ``webhook-timestamp`` or ``webhook-signature`` is absent or empty."""

    code = "webhook_header_missing"


class WebhookHeaderMalformed(WebhookVerificationError):
    """A webhook header (or the body) cannot be read: duplicated, bad base64, not a number."""

    code = "webhook_header_malformed"


class WebhookTimestampOutOfTolerance(WebhookVerificationError):
    """``webhook-timestamp`` is more than the tolerance (300 s) away from now."""

    code = "webhook_timestamp_out_of_tolerance"


class WebhookSignatureMismatch(WebhookVerificationError):
    """No ``v1`` signature in the header matches any of the secrets."""

    code = "webhook_signature_mismatch"


class WebhookUnprocessable(RefundkitError):
    """An inbound webhook is authentic (its signature verified) but cannot be read as the
    gateway's event: a body, amount or currency the plugin cannot parse. Retrying it cannot
    help, so the ASGI receiver acknowledges it and keeps a record (docs/webhooks.md)."""

    code = "webhook_unprocessable"
    user_error = False


# --- configuration and plugins -------------------------------------------------------------


class ConfigurationError(RefundkitError):
    """The configuration cannot work: a store, a gateway, a secret or a plugin."""

    code = "configuration_error"


class StoreNotFound(ConfigurationError):
    """The store does not exist and was not to be created (``create=False``)."""

    code = "store_not_found"


class InvalidStore(ConfigurationError):
    """The URL names nothing refundkit can open as a store: a path whose directory does not
    exist or may not be written, a file that is not a database, a database driver that is not
    installed, a schema from a newer refundkit. Retrying does not help; nothing was written."""

    code = "invalid_store"


class StoreUnavailable(RefundkitError):
    """The database could not complete a transaction, or be opened: the server cannot be
    reached, the connection was lost, a lock timed out (another process holds the SQLite
    file), or it chose this transaction as a deadlock's victim. Nothing of that transaction was
    written; retrying is safe (a refund's idempotency key replays it)."""

    code = "store_unavailable"
    user_error = False


class UnknownGateway(ConfigurationError):
    """No installed plugin provides a gateway of that name."""

    code = "unknown_gateway"


class InvalidWebhookSecret(ConfigurationError):
    """A webhook secret that is empty or not base64 (``whsec_`` prefix optional)."""

    code = "invalid_webhook_secret"


class PluginError(ConfigurationError):
    """A plugin is broken or two plugins disagree (a bug to fix, not a user error)."""

    code = "plugin_error"
    user_error = False

"""refundkit: give money back correctly.

Refund caps and quotes, exactly-once gateway refunds, customer-balance lots, a ledger and an
event outbox, with gateways as pluggy plugins. Start with ``RefundKit.open()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._balances import BalanceLot, CustomerBalance, InvoiceBalance
from ._errors import (
    AmountNotRepresentable,
    ApprovalRefused,
    CardDataRefused,
    ConfigurationError,
    CurrencyMismatch,
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayDisagrees,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyConflict,
    InsufficientBalance,
    InsufficientRefundableBalance,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidMoney,
    InvalidMoneyType,
    InvalidPlan,
    InvalidStore,
    InvalidWebhookSecret,
    NotFound,
    PaymentExists,
    PaymentNotFound,
    PluginError,
    RefundkitError,
    RefundNotAllowed,
    RefundNotFound,
    RefundReleased,
    RequestInProgress,
    ResolutionRefused,
    StalePlan,
    StoreNotFound,
    StoreUnavailable,
    UnknownGateway,
    WebhookEndpointNotFound,
    WebhookHeaderMalformed,
    WebhookHeaderMissing,
    WebhookSignatureMismatch,
    WebhookTimestampOutOfTolerance,
    WebhookUnprocessable,
    WebhookVerificationError,
)
from ._gateway import (
    Capabilities,
    Gateway,
    GatewayPayment,
    GatewayRefund,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundStatus,
    GatewayRefundUpdate,
)
from ._logs import install as _install_log_filter
from ._model import (
    Card,
    Destination,
    Event,
    JournalLine,
    Limit,
    Payment,
    Quote,
    Refund,
    RefundStatus,
)
from ._money import Money
from ._pans import find_pans
from ._planner import STRATEGIES, Leg, LegResult, Plan, PlanResult, Source
from ._plugins import PluginManager
from ._policy import PolicyConfig, PolicyContext
from ._registry import GatewayRegistry
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from ._kit import RecoveryReport, RefundKit

# No card number reaches refundkit's logs, uvicorn's access log or a gateway SDK's.
_install_log_filter()

# The facade pulls in SQLAlchemy; load it on first use so `refundkit --help` stays instant.
_LAZY = {"RecoveryReport", "RefundKit"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _kit

        return getattr(_kit, name)
    raise AttributeError(f"module 'refundkit' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "AmountNotRepresentable",
    "ApprovalRefused",
    "BalanceLot",
    "Capabilities",
    "Card",
    "CardDataRefused",
    "ConfigurationError",
    "CurrencyMismatch",
    "CustomerBalance",
    "Destination",
    "Event",
    "Gateway",
    "GatewayAuthenticationError",
    "GatewayDeclined",
    "GatewayDisagrees",
    "GatewayError",
    "GatewayPayment",
    "GatewayPaymentNotFound",
    "GatewayRateLimited",
    "GatewayRefund",
    "GatewayRefundRequest",
    "GatewayRefundResult",
    "GatewayRefundStatus",
    "GatewayRefundUpdate",
    "GatewayRegistry",
    "GatewayTimeout",
    "GatewayUnavailable",
    "IdempotencyConflict",
    "InsufficientBalance",
    "InsufficientRefundableBalance",
    "InvalidIdempotencyKey",
    "InvalidInput",
    "InvalidMoney",
    "InvalidMoneyType",
    "InvalidPlan",
    "InvalidStore",
    "InvalidWebhookSecret",
    "InvoiceBalance",
    "JournalLine",
    "Leg",
    "LegResult",
    "Limit",
    "Money",
    "NotFound",
    "Payment",
    "PaymentExists",
    "PaymentNotFound",
    "Plan",
    "PlanResult",
    "PluginError",
    "PluginManager",
    "PolicyConfig",
    "PolicyContext",
    "Quote",
    "RecoveryReport",
    "Refund",
    "RefundKit",
    "RefundNotAllowed",
    "RefundNotFound",
    "RefundReleased",
    "RefundStatus",
    "RefundkitError",
    "RequestInProgress",
    "ResolutionRefused",
    "Source",
    "StalePlan",
    "StoreNotFound",
    "StoreUnavailable",
    "UnknownGateway",
    "WebhookEndpointNotFound",
    "WebhookHeaderMalformed",
    "WebhookHeaderMissing",
    "WebhookSignatureMismatch",
    "WebhookTimestampOutOfTolerance",
    "WebhookUnprocessable",
    "WebhookVerificationError",
    "__version__",
    "find_pans",
    "hookimpl",
]

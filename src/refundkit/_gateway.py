"""What a gateway plugin implements, and the plain values that cross the boundary.

A gateway never sees the store and the store never sees a gateway: the kit passes these values
between them. Plugins translate their SDK's exceptions into ``refundkit.errors`` at the boundary.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

import attrs

from ._currencies import EXPONENTS
from ._errors import (
    AmountNotRepresentable,
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayUnavailable,
    InvalidMoney,
    InvalidMoneyType,
    RefundkitError,
)
from ._model import Card
from ._money import Money, check_currency
from ._money import exponent as iso_exponent
from ._validate import no_card_numbers

GatewayRefundStatus = Literal["succeeded", "pending", "failed", "reversed"]

#: Gateway answers that prove nothing was refunded; only these release a reservation (R-2.4).
#: Anything else, a bare GatewayError included, leaves the refund unknown and held.
DEFINITE_REFUSALS: tuple[type[RefundkitError], ...] = (
    GatewayDeclined,
    GatewayRateLimited,
    GatewayUnavailable,
    GatewayAuthenticationError,
    GatewayPaymentNotFound,
    InvalidMoney,
)


@attrs.frozen
class Capabilities:
    """What a gateway can do for refunds; the policy reads these."""

    partial_refunds: bool = True
    #: Most refunds the gateway allows on one payment (None: no limit).
    max_refunds_per_payment: int | None = None
    #: Days after capture during which the gateway accepts refunds (None: no limit).
    refund_window_days: int | None = None
    #: Outcomes may arrive later (webhook or lookup) instead of in the reply.
    async_outcome: bool = False
    #: The gateway deduplicates requests by an idempotency key.
    idempotency_keys: bool = False
    #: How long the gateway remembers an idempotency key, in hours (None: not known/forever).
    idempotency_window_hours: int | None = None
    #: An unsettled payment can be voided in full (but not partially refunded).
    void_if_unsettled: bool = False
    #: The gateway has a call to look a refund up by our refund id or key.
    lookup: bool = True
    #: The gateway's own minor units where they differ from ISO 4217 (e.g. Adyen CLP 2).
    currency_exponents: Mapping[str, int] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "partial_refunds": self.partial_refunds,
            "max_refunds_per_payment": self.max_refunds_per_payment,
            "refund_window_days": self.refund_window_days,
            "async_outcome": self.async_outcome,
            "idempotency_keys": self.idempotency_keys,
            "idempotency_window_hours": self.idempotency_window_hours,
            "void_if_unsettled": self.void_if_unsettled,
            "lookup": self.lookup,
            "currency_exponents": dict(self.currency_exponents),
        }


@attrs.frozen
class GatewayRefundRequest:
    """One refund as the gateway must receive it. ``idempotency_key`` was committed before."""

    refund_id: str
    payment_id: str
    gateway_payment_id: str
    amount: Money
    idempotency_key: str
    reason: str | None = None
    #: True when this is the whole unsettled payment and the gateway should void it.
    void: bool = False


@attrs.frozen
class GatewayRefundResult:
    """The gateway's answer about one refund."""

    status: GatewayRefundStatus
    gateway_refund_id: str | None
    amount: Money | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@attrs.frozen
class GatewayPayment:
    """What the gateway says about a payment (card, settlement, refunds made there)."""

    gateway_payment_id: str
    amount: Money
    refunded: Money
    card: Card | None = None
    disputed: bool = False
    settled: bool = True
    status: str = "succeeded"
    captured_at: datetime | None = None


@attrs.frozen
class GatewayRefund:
    """One refund as the gateway lists it for a payment: what reconciliation compares."""

    gateway_refund_id: str
    amount: Money
    status: GatewayRefundStatus
    #: refundkit's refund id when the refund carries it (metadata, order id, reference);
    #: None for a refund made outside refundkit, e.g. in the gateway's dashboard.
    refund_id: str | None = None
    created_at: datetime | None = None


@attrs.frozen
class GatewayRefundUpdate:
    """A refund status change a gateway announced (webhook), matched by our id or theirs."""

    status: GatewayRefundStatus
    refund_id: str | None
    gateway_refund_id: str | None
    amount: Money | None = None
    failure_code: str | None = None
    event_id: str | None = None

    def __attrs_post_init__(self) -> None:
        # A webhook is text from the network: an id holding a card number refuses the whole
        # webhook (parse_webhook raises) before any update is applied or logged.
        no_card_numbers(
            refund_id=self.refund_id,
            gateway_refund_id=self.gateway_refund_id,
            failure_code=self.failure_code,
            event_id=self.event_id,
        )


class Gateway(abc.ABC):
    """Base class of every gateway plugin. Subclasses set ``name`` and ``capabilities``.

    Errors: raise ``GatewayDeclined`` for a definite refusal, ``GatewayUnavailable`` or
    ``GatewayRateLimited`` when the request certainly had no effect, ``GatewayAuthenticationError``
    or ``GatewayPaymentNotFound`` when it was refused before anything happened, and
    ``GatewayTimeout`` when it was sent and the outcome is unknown. Only those definite
    refusals release the reservation; any other error (a bare ``GatewayError`` included)
    leaves the refund ``unknown`` and held until recovery looks it up. Never let an SDK
    exception escape.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: Mapping[str, Any] = dict(config or {})

    @abc.abstractmethod
    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        """Send one refund, carrying ``request.idempotency_key`` and ``request.refund_id``."""

    @abc.abstractmethod
    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        """Find a refund sent earlier with this request's key/refund id; None if none exists."""

    @abc.abstractmethod
    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        """The payment as the gateway knows it (card summary, settlement, dispute, refunded)."""

    def list_refunds(self, gateway_payment_id: str) -> list[GatewayRefund] | None:
        """Every refund the gateway holds for this payment, for drift reconciliation.

        None (the default) means the gateway cannot list refunds; reconciliation then relies on
        ``fetch_payment``'s ``refunded`` total alone.
        """
        return None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
        """Verify and parse an inbound webhook; raise ``WebhookVerificationError`` if unsigned."""
        return []

    def register_payment(self, payment: Any) -> GatewayPayment | None:
        """Called when the kit records a payment on this gateway.

        A gateway may return what it knows of the payment (card, settlement); the sandbox
        uses this to create the charge. The default does nothing.
        """
        return None

    # --- amounts at the edge ------------------------------------------------------------

    def exponent(self, currency: str) -> int:
        """The gateway's minor units for ``currency`` (its own table first, then ISO 4217)."""
        check_currency(currency)
        return self.capabilities.currency_exponents.get(currency, EXPONENTS[currency])

    def to_gateway_amount(self, money: Money) -> int:
        """ISO minor units → the gateway's minor units; refuses what would need rounding."""
        shift = self.exponent(money.currency) - money.exponent
        if shift >= 0:
            return money.amount * _pow10(shift)
        factor = _pow10(-shift)
        if money.amount % factor:
            raise AmountNotRepresentable(
                f"{self.name} cannot represent {money} (it takes {money.currency} with "
                f"{self.exponent(money.currency)} decimals); it is refused, not rounded"
            )
        return money.amount // factor

    def from_gateway_amount(self, amount: int, currency: str) -> Money:
        """The gateway's minor units → ISO minor units; refuses what is not a whole amount."""
        if type(amount) is not int:
            raise InvalidMoneyType(
                f"{self.name} returned a {type(amount).__name__} amount, not an int"
            )
        shift = self.exponent(currency) - iso_exponent(currency)
        if shift <= 0:
            return Money(amount * _pow10(-shift), currency)
        factor = _pow10(shift)
        if amount % factor:
            raise AmountNotRepresentable(
                f"{self.name} returned {amount} {currency}, which is not a whole ISO amount"
            )
        return Money(amount // factor, currency)

    def close(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Release connections; called when the kit closes."""

    def __repr__(self) -> str:
        # Never show configuration: it may hold secrets.
        return f"<{type(self).__name__} name={self.name!r}>"


def _pow10(n: int) -> int:
    # int ** int is typed Any (it may be a float for negative n); n is never negative here.
    return int(10**n)

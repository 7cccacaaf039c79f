"""``StripeGateway``: refunds of Stripe charges and payment intents through the official SDK.

The SDK is imported on first use (``_client``, ``_errors``, ``_http``), never at import time:
``import refundkit`` and ``refundkit gateways`` must not pay for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from refundkit import (
    AmountNotRepresentable,
    Capabilities,
    Card,
    ConfigurationError,
    Gateway,
    GatewayError,
    GatewayPayment,
    GatewayPaymentNotFound,
    GatewayRefund,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundStatus,
    GatewayRefundUpdate,
    Money,
    WebhookUnprocessable,
    WebhookVerificationError,
)

from . import _webhooks
from ._currencies import STRIPE_EXPONENTS

if TYPE_CHECKING:
    import stripe

API_KEY_ENV: Final = "REFUNDKIT_STRIPE_API_KEY"
WEBHOOK_SECRET_ENV: Final = "REFUNDKIT_STRIPE_WEBHOOK_SECRET"
#: The metadata key that carries refundkit's refund id on every Stripe refund it makes.
METADATA_KEY: Final = "refundkit_refund_id"
#: Reasons Stripe accepts; any other reason stays in refundkit only.
REASONS: Final = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
#: Webhook events that carry a refund (``charge.refunded`` carries the charge and its refunds).
REFUND_EVENTS: Final = frozenset({"refund.updated", "refund.failed", "charge.refund.updated"})
CHARGE_EVENTS: Final = frozenset({"charge.refunded"})

#: Stripe takes at most 12 digits in an amount (R-6.7); refused before any call.
MAX_WIRE_AMOUNT: Final = 999_999_999_999

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_RETRIES: Final = 2
DEFAULT_RETRY_DELAY: Final = 0.5

#: What a gateway says a refund is in now: a refundkit status, or "unknown" (not classified:
#: the refund is held as it is).
StatusOutcome = Literal["succeeded", "pending", "failed", "reversed", "unknown"]

#: Every status of a Stripe refund (``refund.status`` in Stripe's OpenAPI spec and the SDK's
#: ``Refund.status``) → the state refundkit records. The plugin reports the state the refund is
#: in *now*; the kit decides what it means (a failure of a refund it holds as succeeded is a
#: reversal; a success after a failure does not resurrect it). A status not listed here is
#: "unknown": a reply raises ``GatewayError`` (held), a webhook gives no update.
STATUS_TABLE: Final[Mapping[str, StatusOutcome]] = MappingProxyType(
    {
        "succeeded": "succeeded",
        "pending": "pending",
        "requires_action": "pending",  # the customer must act; the outcome comes later
        "failed": "failed",
        "canceled": "failed",  # cancelled before it was made: no money went back
    }
)


def refund_status(status: object) -> StatusOutcome:
    """Stripe's refund status → the state refundkit records ("unknown" when not listed).

    Only the current status counts: a ``refund.failed`` is "failed" whatever
    ``previous_attributes`` says (a failure delivered before the success it follows must fail
    a pending refund, not be dropped as a reversal of a success the kit never saw)."""
    return STATUS_TABLE.get(status, "unknown") if isinstance(status, str) else "unknown"


def server_error_body(
    status: int = 500,
    code: str | None = None,
    message: str = "An unknown error occurred",
    type_: str = "api_error",
) -> bytes:
    """A 5xx answer's body as Stripe shapes it (its ``error`` object), for cassettes and
    tests. Whatever ``code`` it carries, a 5xx is not a refusal: after the SDK's retries with
    the same key the refund stays ``unknown`` and held."""
    if not 500 <= status <= 599:
        raise ValueError(f"a server error has a 5xx status, not {status}")
    error: dict[str, Any] = {"message": message, "type": type_}
    if code:
        error["code"] = code
    return json.dumps({"error": error}, indent=2, sort_keys=True).encode() + b"\n"


class StripeGateway(Gateway):
    """Stripe refunds. Configuration (``[gateways.stripe]``):

    ``api_key`` (else ``$REFUNDKIT_STRIPE_API_KEY``), ``webhook_secret`` (else
    ``$REFUNDKIT_STRIPE_WEBHOOK_SECRET``), ``timeout`` seconds (30), ``max_network_retries``
    (2), ``retry_delay`` seconds before the first retry (0.5), ``webhook_tolerance`` seconds
    (300). Tests may pass ``http_client`` (a ``stripe.HTTPClient``) and ``clock``.
    """

    name = "stripe"
    #: Every Stripe refund status → refundkit's (module ``STATUS_TABLE``).
    STATUS_TABLE: ClassVar[Mapping[str, StatusOutcome]] = STATUS_TABLE
    capabilities = Capabilities(
        partial_refunds=True,
        async_outcome=True,  # card refunds may stay pending; refund.updated says how they end
        idempotency_keys=True,
        idempotency_window_hours=24,
        lookup=True,
        currency_exponents=STRIPE_EXPONENTS,
    )

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._client: stripe.StripeClient | None = None
        self._http: stripe.HTTPClient | None = None
        self._clock: Callable[[], datetime] = self.config.get("clock") or _utcnow

    # --- the client: one per configured account ------------------------------------------

    def _stripe(self) -> stripe.StripeClient:
        if self._client is None:
            import stripe

            from ._http import RetryingRequestsClient

            http_client = self.config.get("http_client")
            if http_client is None:
                http_client = self._http = RetryingRequestsClient(
                    timeout=self._number("timeout", DEFAULT_TIMEOUT),
                    retry_delay=self._number("retry_delay", DEFAULT_RETRY_DELAY),
                )
            self._client = stripe.StripeClient(
                self._secret("api_key", API_KEY_ENV),
                max_network_retries=int(self._number("max_network_retries", DEFAULT_RETRIES)),
                http_client=http_client,
            )
        return self._client

    def _secret(self, key: str, env: str) -> str:
        value = self.config.get(key) or os.environ.get(env)
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"stripe: set {key} in [gateways.stripe] or ${env}")
        return value

    def _number(self, key: str, default: float) -> float:
        value = self.config.get(key, default)
        if type(value) not in (int, float) or value < 0:
            raise ConfigurationError(f"stripe: {key} must be a number of at least 0")
        return float(value)

    # --- refunds -------------------------------------------------------------------------

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        from ._errors import translated

        amount = self.to_gateway_amount(request.amount)  # refused, never rounded
        if not 1 <= amount <= MAX_WIRE_AMOUNT:
            raise AmountNotRepresentable(
                f"stripe refunds from 1 to {MAX_WIRE_AMOUNT} minor units, not {request.amount}"
            )
        params: dict[str, Any] = {
            _payment_param(request.gateway_payment_id): request.gateway_payment_id,
            "amount": amount,
            "metadata": {METADATA_KEY: request.refund_id},
        }
        if request.reason in REASONS:
            params["reason"] = request.reason
        with translated():
            refund = (
                self._stripe()
                .v1.refunds.create(
                    params=params,  # type: ignore[arg-type]
                    # A header, never a form field (the SDK would then send a random key).
                    options={"idempotency_key": request.idempotency_key},
                )
                .to_dict()
            )
        return self._result(refund)

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        """The refund carrying ``request.refund_id`` in its metadata, among the payment's
        refunds; None when there is none. Never creates a refund."""
        for refund in self._refunds(request.gateway_payment_id):
            if _our_id(refund) == request.refund_id:
                return self._result(refund)
        return None

    def list_refunds(self, gateway_payment_id: str) -> list[GatewayRefund]:
        return [
            GatewayRefund(
                gateway_refund_id=refund["id"],
                amount=self._amount(refund["amount"], refund["currency"]),
                status=_listed_status(refund.get("status")),
                refund_id=_our_id(refund),
                created_at=datetime.fromtimestamp(refund["created"], UTC),
            )
            for refund in self._refunds(gateway_payment_id)
        ]

    def _refunds(self, gateway_payment_id: str) -> list[dict[str, Any]]:
        from ._errors import translated

        param = _payment_param(gateway_payment_id)
        with translated():
            params: dict[str, Any] = {param: gateway_payment_id, "limit": 100}
            page = self._stripe().v1.refunds.list(params=params)  # type: ignore[arg-type]
            return [refund.to_dict() for refund in page.auto_paging_iter()]

    # --- payments ------------------------------------------------------------------------

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        from ._errors import translated

        client = self._stripe()
        with translated():
            if _payment_param(gateway_payment_id) == "payment_intent":
                intent = client.v1.payment_intents.retrieve(
                    gateway_payment_id, params={"expand": ["latest_charge"]}
                )
                charge = intent.to_dict().get("latest_charge")
            else:
                charge = client.v1.charges.retrieve(gateway_payment_id).to_dict()
        if not isinstance(charge, dict):  # a payment intent never confirmed: nothing to refund
            raise GatewayPaymentNotFound(f"stripe: payment {gateway_payment_id!r} has no charge")
        return self._payment(gateway_payment_id, charge)

    def _payment(self, gateway_payment_id: str, charge: Mapping[str, Any]) -> GatewayPayment:
        currency = str(charge["currency"])
        return GatewayPayment(
            gateway_payment_id=gateway_payment_id,
            amount=self._amount(charge["amount"], currency),
            refunded=self._amount(charge["amount_refunded"], currency),
            card=_card(charge.get("payment_method_details")),
            disputed=bool(charge.get("disputed")),
            settled=bool(charge.get("captured")),
            status=str(charge.get("status")),
            captured_at=datetime.fromtimestamp(charge["created"], UTC),
        )

    # --- webhooks ------------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
        """Verify ``Stripe-Signature`` (within ``webhook_tolerance`` of the clock) and read the
        refund updates of ``refund.updated``, ``refund.failed``, ``charge.refund.updated`` and
        ``charge.refunded``; other events give no update."""
        if not isinstance(body, bytes):
            raise WebhookVerificationError("stripe webhook body must be bytes")
        event = _webhooks.verify(
            headers,
            body,
            self._secret("webhook_secret", WEBHOOK_SECRET_ENV),
            self._clock().timestamp(),
            int(self._number("webhook_tolerance", _webhooks.DEFAULT_TOLERANCE)),
        )
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise WebhookUnprocessable("stripe webhook event has no data.object")
        kind = event.get("type")
        if kind in REFUND_EVENTS:
            # The refund as it is now; previous_attributes says what it was and is not read.
            refunds: Iterable[Mapping[str, Any]] = [obj]
        elif kind in CHARGE_EVENTS:
            listed = obj.get("refunds")
            refunds = listed.get("data", []) if isinstance(listed, dict) else []
        else:
            return []
        updates = (self._update(refund, event.get("id")) for refund in refunds)
        return [update for update in updates if update is not None]

    def _update(self, refund: Mapping[str, Any], event_id: Any) -> GatewayRefundUpdate | None:
        """The refund's update; None when its status is not one the plugin can classify (the
        refund is held as it is)."""
        if not (
            refund.get("object") == "refund"
            and isinstance(refund.get("id"), str)
            and type(refund.get("amount")) is int
            and isinstance(refund.get("currency"), str)
            and isinstance(refund.get("status"), str)
        ):
            raise WebhookUnprocessable("stripe webhook event does not carry a refund")
        status = refund_status(refund.get("status"))
        if status == "unknown":
            return None
        return GatewayRefundUpdate(
            status=status,
            refund_id=_our_id(refund),
            gateway_refund_id=refund["id"],
            amount=self._amount(refund["amount"], refund["currency"]),
            failure_code=refund.get("failure_reason"),
            event_id=event_id if isinstance(event_id, str) else None,
        )

    # --- values --------------------------------------------------------------------------

    def _result(self, refund: Mapping[str, Any]) -> GatewayRefundResult:
        status = refund_status(refund.get("status"))
        if status == "unknown":
            # Not understood: the refund may have been made, so it is held (unknown).
            raise GatewayError(
                f"stripe answered with refund {refund.get('id')!r} in status"
                f" {refund.get('status')!r}, which refundkit does not know",
                gateway_code="unknown_status",
            )
        return GatewayRefundResult(
            status=status,
            gateway_refund_id=refund["id"],
            amount=self._amount(refund["amount"], refund["currency"]),
            failure_code=refund.get("failure_reason"),
        )

    def _amount(self, amount: Any, currency: Any) -> Money:
        return self.from_gateway_amount(amount, str(currency).upper())

    def close(self) -> None:
        if self._http is not None:  # only the transport it made: a given one is the caller's
            self._http.close()  # type: ignore[no-untyped-call]
        self._client = self._http = None


def _listed_status(status: object) -> GatewayRefundStatus:
    """A listed refund's status for reconciliation: one the plugin cannot classify counts as
    pending (its money held, never released)."""
    outcome = refund_status(status)
    return "pending" if outcome == "unknown" else outcome


def _payment_param(gateway_payment_id: str) -> str:
    """Refunds name a PaymentIntent (``pi_...``) or a Charge (``ch_...``, ``py_...``)."""
    return "payment_intent" if gateway_payment_id.startswith("pi_") else "charge"


def _our_id(refund: Mapping[str, Any]) -> str | None:
    metadata = refund.get("metadata")
    value = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None


def _card(details: Any) -> Card | None:
    """Brand, last 4 and expiry: Stripe never reports more of the number."""
    card = details.get("card") if isinstance(details, dict) else None
    if not isinstance(card, dict) or not card.get("last4"):
        return None
    brand = str(card.get("brand") or "unknown").replace("_", " ")
    return Card(
        brand=brand,
        last4=str(card["last4"]),
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)

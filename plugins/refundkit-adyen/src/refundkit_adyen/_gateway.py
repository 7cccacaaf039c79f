"""The Adyen gateway: Checkout API v72 refunds, answered ``received`` and settled by webhook."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, ClassVar, Final

from refundkit import (
    Capabilities,
    ConfigurationError,
    Gateway,
    GatewayAuthenticationError,
    GatewayError,
    GatewayPayment,
    GatewayRefund,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundUpdate,
    GatewayTimeout,
    GatewayUnavailable,
    RefundkitError,
    WebhookVerificationError,
)

from . import _webhooks
from ._errors import translate
from ._webhooks import StatusOutcome

#: Adyen's minor units where they differ from ISO 4217
#: (https://docs.adyen.com/development-resources/currency-codes).
ADYEN_EXPONENTS: Final[Mapping[str, int]] = MappingProxyType(
    {"CLP": 2, "ISK": 2, "IDR": 0, "CVE": 0}
)

#: Adyen keeps idempotency keys for at least 7 days (some pages say 31): 7 is the safe bound.
IDEMPOTENCY_WINDOW_HOURS: Final = 7 * 24

ADYEN_CAPABILITIES: Final = Capabilities(
    partial_refunds=True,
    async_outcome=True,
    idempotency_keys=True,
    idempotency_window_hours=IDEMPOTENCY_WINDOW_HOURS,
    lookup=False,  # Checkout has no call to look a refund up: webhooks settle it
    currency_exponents=ADYEN_EXPONENTS,
)

#: refundkit refund reasons → Adyen's ``merchantRefundReason`` values.
_REASONS: Final[Mapping[str, str]] = {
    "requested_by_customer": "CUSTOMER REQUEST",
    "customer_request": "CUSTOMER REQUEST",
    "duplicate": "DUPLICATE",
    "fraudulent": "FRAUD",
    "fraud": "FRAUD",
    "return": "RETURN",
}

#: Adyen accepts idempotency keys of at most 64 characters.
_MAX_KEY: Final = 64

#: Every status Adyen reports a refund in → what refundkit makes of it: the refund reply's
#: ``status`` (``PaymentRefundResponse.status``, whose only value is "received") and every
#: ``"<eventCode>:<success>"`` of the refund webhooks (``_webhooks.STATUS_TABLE``). "unknown":
#: not classified, the refund is held as it is (a reply raises ``GatewayError``, a webhook
#: gives no update).
REPLY_STATUSES: Final[Mapping[str, StatusOutcome]] = MappingProxyType({"received": "pending"})
STATUS_TABLE: Final[Mapping[str, StatusOutcome]] = MappingProxyType(
    {**REPLY_STATUSES, **_webhooks.STATUS_TABLE}
)


def server_error_body(
    status: int = 500,
    error_code: str = "000",
    message: str | None = None,
    error_type: str = "internal",
    psp_reference: str | None = None,
) -> bytes:
    """A 5xx answer's body as Adyen shapes it (Checkout ``ServiceError``), for cassettes and
    tests. Adyen answers HTTP-layer errors with errorCode ``000`` and the message
    ``"HTTP Status Response - <reason>"``; any code may come with a 5xx, and none of them
    makes a 5xx a refusal: the refund stays ``unknown`` and held."""
    if not 500 <= status <= 599:
        raise ValueError(f"a server error has a 5xx status, not {status}")
    body: dict[str, Any] = {
        "status": status,
        "errorCode": error_code,
        "message": message or f"HTTP Status Response - {_reason(status)}",
        "errorType": error_type,
    }
    if psp_reference:
        body["pspReference"] = psp_reference
    return json.dumps(body).encode()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


class AdyenGateway(Gateway):
    """Refunds through ``checkout.modifications_api.refund_captured_payment``.

    Configuration: ``api_key``, ``merchant_account``, ``platform`` ("test" or "live"; live
    needs ``live_endpoint_prefix``), ``hmac_key`` (hex, for webhooks), optionally
    ``webhook_username`` and ``webhook_password`` (basic auth Adyen sends) and ``timeout``
    (seconds, default 30). See docs/adyen.md.
    """

    name = "adyen"
    capabilities = ADYEN_CAPABILITIES
    #: Every Adyen refund status → refundkit's (module ``STATUS_TABLE``).
    STATUS_TABLE: ClassVar[Mapping[str, StatusOutcome]] = STATUS_TABLE

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self.platform = str(self.config.get("platform", "test"))
        if self.platform not in ("test", "live"):
            raise ConfigurationError(
                f"adyen: platform must be 'test' or 'live', not {self.platform!r}"
            )
        prefix = self.config.get("live_endpoint_prefix")
        if self.platform == "live" and not prefix:
            raise ConfigurationError(
                "adyen: platform 'live' needs live_endpoint_prefix (the prefix of your live"
                " Checkout URL, from the Customer Area: Developers > API URLs)"
            )
        self._prefix = str(prefix) if prefix else None
        self._hmac_key: bytes | None = None
        if self.config.get("hmac_key"):
            try:
                self._hmac_key = _webhooks.hmac_key_bytes(str(self.config["hmac_key"]))
            except ValueError as exc:
                raise ConfigurationError(f"adyen: hmac_key: {exc}") from None
        self._client: Any = None

    # --- the SDK, pinned to requests ------------------------------------------------------

    def _checkout(self) -> Any:
        """The Checkout service of a per-gateway ``Adyen.Adyen`` (never the module singleton)."""
        if self._client is None:
            missing = [k for k in ("api_key", "merchant_account") if not self.config.get(k)]
            if missing:
                # Nothing was sent: a definite refusal, so the kit releases the reservation.
                raise GatewayAuthenticationError(
                    f"adyen: no credentials to send the refund; the configuration lacks"
                    f" {', '.join(missing)}"
                )
            import Adyen  # lazily: `import refundkit_adyen` stays cheap
            import Adyen.httpclient

            if Adyen.httpclient.requests is None:
                # Pinned to requests below; without it the SDK would fail after our checks.
                raise ConfigurationError("adyen: the 'requests' package is not installed")

            # requests, never pycurl: vcrpy replays requests, and pycurl would bypass cassettes.
            self._client = Adyen.Adyen(
                xapikey=str(self.config["api_key"]),
                platform=self.platform,
                live_endpoint_prefix=self._prefix,
                http_force="requests",
                http_timeout=int(self.config.get("timeout", 30)),
            )
        return self._client.checkout

    @property
    def transport(self) -> str:
        """The SDK's HTTP transport in use (always "requests")."""
        self._checkout()
        client = self._client.client
        if not client.http_init:
            client._init_http_client()
        return str(client.http_client.request.__name__).strip("_").removesuffix("_request")

    # --- refunds --------------------------------------------------------------------------

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        body = self.refund_body(request)
        checkout = self._checkout()
        try:
            reply = checkout.modifications_api.refund_captured_payment(
                body, request.gateway_payment_id, idempotency_key=self.adyen_key(request)
            )
        except Exception as exc:
            raise self._translate(exc) from exc
        return self._result(reply.message)

    def refund_body(self, request: GatewayRefundRequest) -> dict[str, Any]:
        """The JSON Adyen receives; the amount is always given (Adyen has no implicit full)."""
        body: dict[str, Any] = {
            "merchantAccount": str(self.config.get("merchant_account", "")),
            "amount": {
                "currency": request.amount.currency,
                "value": self.to_gateway_amount(request.amount),  # refuses before any call
            },
            "reference": request.refund_id,
        }
        if request.reason:
            body["merchantRefundReason"] = _REASONS.get(request.reason.lower(), "OTHER")
        return body

    @staticmethod
    def adyen_key(request: GatewayRefundRequest) -> str:
        """The kit's key, or (when longer than Adyen's 64 characters) its SHA-256 in hex:
        the same refund always gets the same key."""
        key = request.idempotency_key
        if len(key) <= _MAX_KEY and key.isascii():
            return key
        return hashlib.sha256(key.encode()).hexdigest()

    def _result(self, reply: Any) -> GatewayRefundResult:
        status = reply.get("status") if isinstance(reply, Mapping) else None
        if not isinstance(reply, Mapping) or REPLY_STATUSES.get(str(status)) != "pending":
            # Not understood: the refund may have been made, so it is held (unknown).
            raise GatewayError(f"adyen answered a refund with {reply!r}, not status 'received'")
        psp = reply.get("pspReference")
        amount = reply.get("amount")
        money = None
        if isinstance(amount, Mapping):
            value: Any = amount.get("value")  # from_gateway_amount refuses a non-int
            money = self.from_gateway_amount(value, str(amount.get("currency")))
        # Received is not refunded: the REFUND webhook says whether it succeeded.
        return GatewayRefundResult("pending", psp if isinstance(psp, str) else None, money)

    def _translate(self, exc: Exception) -> RefundkitError:
        if isinstance(exc, RefundkitError):
            return exc
        module = type(exc).__module__
        if module.startswith("Adyen"):
            return translate(exc)
        if module.startswith("requests"):
            import requests

            if isinstance(exc, requests.ConnectTimeout):
                return GatewayUnavailable(f"adyen: could not connect ({exc})")
            if isinstance(exc, requests.ConnectionError) and not isinstance(
                exc, requests.ReadTimeout
            ):
                return GatewayTimeout(f"adyen: connection lost; outcome unknown ({exc})")
            return GatewayTimeout(f"adyen: no answer; outcome unknown ({exc})")
        # Anything else (a cassette miss in tests, a bug): outcome unknown, refund held.
        return GatewayError(f"adyen: {type(exc).__name__}: {exc}")

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        """Adyen has no refund lookup (``capabilities.lookup`` is False): recovery re-sends the
        refund with its key inside the idempotency window instead."""
        return None

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        raise GatewayError(
            "adyen: the Checkout API has no call to fetch a payment; its card is taken when the"
            " payment is recorded (card_from_payment_response / card_from_notification)",
            gateway_code="not_supported",
        )

    def list_refunds(self, gateway_payment_id: str) -> list[GatewayRefund] | None:
        """None: Adyen has no call to list a payment's refunds (its REFUND webhooks are the
        record; refunds made in the Customer Area arrive there too)."""
        return None

    # --- webhooks -------------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
        if self._hmac_key is None:
            raise WebhookVerificationError(
                "Adyen webhook refused: no hmac_key configured to verify it"
            )
        username = self.config.get("webhook_username")
        if username:
            password = str(self.config.get("webhook_password", ""))
            _webhooks.verify_basic_auth(headers, str(username), password)
        items = _webhooks.notification_items(body, self._hmac_key, live=self.platform == "live")
        updates: list[GatewayRefundUpdate] = []
        for item in items:
            updates.extend(_webhooks.refund_updates(item, self.from_gateway_amount))
        return updates

"""``BraintreeGateway``: refunds, voids, lookups and payments through the ``braintree`` SDK.

The SDK is imported lazily (on the first call that needs it), so ``import refundkit_braintree``
stays cheap and ``import refundkit`` never loads it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, TypeVar

from refundkit import (
    AmountNotRepresentable,
    Capabilities,
    Card,
    ConfigurationError,
    Gateway,
    GatewayDeclined,
    GatewayError,
    GatewayPayment,
    GatewayRefund,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundUpdate,
    InvalidMoney,
    Money,
    PaymentExists,
    RefundkitError,
)

from . import _errors, _webhooks

_T = TypeVar("_T")

#: Configuration keys, each also read from ``REFUNDKIT_BRAINTREE_<KEY>`` when not configured.
REQUIRED_KEYS: Final = ("merchant_id", "public_key", "private_key")
ENV_PREFIX: Final = "REFUNDKIT_BRAINTREE_"
ENVIRONMENTS: Final = ("sandbox", "production")
#: Seconds before a call is given up (then the refund is ``unknown`` until recovery).
DEFAULT_TIMEOUT: Final = 30

#: What a gateway says a refund is in now: a refundkit status, or "unknown" (not classified:
#: the refund is held as it is).
StatusOutcome = Literal["succeeded", "pending", "failed", "reversed", "unknown"]

#: Every status of ``braintree.Transaction.Status`` → what it means for a credit (a refund). A
#: credit Braintree accepted is settled in its daily batch: accepted is ``succeeded``, and a
#: later failure (settlement failed or declined, an authorization that expired, a
#: ``refund_failed`` webhook) reverses it. A test walks the SDK's list, so a status a new SDK
#: adds fails until it is here; one missing from the table is "unknown": ``GatewayError``, held.
CREDIT_STATUSES: Final[Mapping[str, StatusOutcome]] = MappingProxyType(
    {
        # The issuer is still deciding on the refund authorization: the outcome comes later
        # (recovery looks it up by order_id).
        "authorizing": "pending",
        "authorized": "succeeded",
        "submitted_for_settlement": "succeeded",
        "settlement_pending": "succeeded",
        "settling": "succeeded",
        # The processor confirmed the settlement (before it shows as settled).
        "settlement_confirmed": "succeeded",
        "settled": "succeeded",
        "voided": "failed",
        "processor_declined": "failed",
        "gateway_rejected": "failed",
        "failed": "failed",
        "settlement_declined": "failed",
        # The credit did not settle: no money went back.
        "settlement_failed": "failed",
        # Authorized but never submitted for settlement in time: no money went back.
        "authorization_expired": "failed",
    }
)
#: The public name of the table above, as every plugin declares one.
STATUS_TABLE: Final = CREDIT_STATUSES
#: Only these transactions can be refunded; others must be voided (whole amount).
REFUNDABLE_STATUSES: Final = frozenset({"settled", "settling"})
#: Dispute statuses after which the payment no longer counts as disputed.
_DISPUTE_OVER: Final = frozenset({"won"})
#: Braintree card types → refundkit brand names.
BRANDS: Final[Mapping[str, str]] = {
    "Visa": "visa",
    "MasterCard": "mastercard",
    "American Express": "amex",
    "Discover": "discover",
    "JCB": "jcb",
    "Diners Club": "diners",
    "Maestro": "maestro",
    "UnionPay": "unionpay",
}
PAYPAL: Final = "paypal_account"


def import_braintree() -> Any:
    """The ``braintree`` SDK, imported on first use.

    braintree 4.48 warns (DeprecationWarning) while importing about its own dispute
    protection-level names; that is not the caller's doing, so it is silenced for the import
    only, where it cannot hide a warning about refundkit's use of the SDK.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"braintree\.")
        import braintree

    return braintree


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class BraintreeGateway(Gateway):
    """One Braintree merchant. Configuration (``[gateways.braintree]``)::

        environment = "sandbox"                 # or "production"
        merchant_id = "env:REFUNDKIT_BRAINTREE_MERCHANT_ID"
        public_key = "env:REFUNDKIT_BRAINTREE_PUBLIC_KEY"
        private_key = "env:REFUNDKIT_BRAINTREE_PRIVATE_KEY"
        merchant_accounts = { USD = "acme_usd", EUR = "acme_eur" }   # optional, by currency
        timeout = 30

    ``merchant_id``, ``public_key``, ``private_key`` and ``environment`` fall back to the
    environment variables ``REFUNDKIT_BRAINTREE_*``.
    """

    name = "braintree"
    #: Every ``braintree.Transaction.Status`` → what it means for a refund (``STATUS_TABLE``).
    STATUS_TABLE: ClassVar[Mapping[str, StatusOutcome]] = STATUS_TABLE
    capabilities: ClassVar[Capabilities] = Capabilities(
        partial_refunds=True,
        # Mostly settled in the reply, but a credit may still be ``authorizing`` (real-time
        # refund authorization): pending, looked up later.
        async_outcome=True,
        idempotency_keys=True,
        # Braintree keeps an api_request_key 30 days (GraphQL apiRequestKey documentation).
        idempotency_window_hours=30 * 24,
        void_if_unsettled=True,
        lookup=True,
    )

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._settings = {key: self._setting(key) for key in REQUIRED_KEYS}
        env = self._setting("environment", "sandbox")
        if env not in ENVIRONMENTS:
            raise ConfigurationError(
                f"braintree environment must be one of {', '.join(ENVIRONMENTS)}, not {env!r}"
            )
        self._environment = env
        accounts = self.config.get("merchant_accounts", {})
        if not isinstance(accounts, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in accounts.items()
        ):
            raise ConfigurationError(
                "braintree merchant_accounts must map currency codes to merchant account ids"
            )
        self._accounts: dict[str, str] = {k.upper(): v for k, v in accounts.items()}
        timeout = self.config.get("timeout", DEFAULT_TIMEOUT)
        if type(timeout) is not int or timeout <= 0:
            raise ConfigurationError("braintree timeout must be a positive number of seconds")
        self._timeout = timeout
        self._sdk_gateway: Any = None

    def _setting(self, key: str, default: str | None = None) -> str:
        value = self.config.get(key)
        if value is None:
            value = os.environ.get(ENV_PREFIX + key.upper(), default)
        if not isinstance(value, str) or not value:
            raise ConfigurationError(
                f"braintree needs {key} (in [gateways.braintree] or {ENV_PREFIX}{key.upper()})"
            )
        return value

    # --- the SDK, lazily ----------------------------------------------------------------

    def _sdk(self) -> Any:
        if self._sdk_gateway is None:
            braintree = import_braintree()
            environment = (
                braintree.Environment.Production
                if self._environment == "production"
                else braintree.Environment.Sandbox
            )
            self._sdk_gateway = braintree.BraintreeGateway(
                braintree.Configuration(
                    environment=environment,
                    timeout=self._timeout,
                    # Transport errors become braintree.exceptions.http.*, mapped below.
                    wrap_http_exceptions=True,
                    # Tests inject a strategy (e.g. one whose reply times out).
                    http_strategy=self.config.get("http_strategy"),
                    **self._settings,
                )
            )
        return self._sdk_gateway

    def _call(self, call: Callable[[], _T]) -> _T:
        """Run one SDK call; its exceptions leave as refundkit errors (the SDK's as cause)."""
        try:
            return call()
        except RefundkitError:
            raise
        except Exception as exc:
            if not type(exc).__module__.startswith("braintree"):
                raise GatewayError(f"braintree call failed: {type(exc).__name__}: {exc}") from exc
            raise _errors.from_exception(exc) from exc

    # --- amounts at the edge ------------------------------------------------------------

    def to_wire(self, money: Money) -> str:
        """Money → the decimal string Braintree takes ("10.00"; "10" for zero-decimal)."""
        minor = self.to_gateway_amount(money)
        return str(Decimal(minor).scaleb(-self.exponent(money.currency)))

    def from_wire(self, amount: Decimal | str, currency: str) -> Money:
        """A Braintree decimal amount → Money; refuses what has more decimals than allowed."""
        try:
            value = Decimal(amount).scaleb(self.exponent(currency))
        except (ArithmeticError, TypeError, ValueError):
            raise InvalidMoney(f"braintree returned {amount!r} as an amount") from None
        if not value.is_finite() or value != value.to_integral_value():
            raise AmountNotRepresentable(
                f"braintree returned {amount} {currency}, finer than {currency} allows"
            )
        return self.from_gateway_amount(int(value), currency)

    def _amount(self, txn: Any) -> Money:
        return self.from_wire(txn.amount, txn.currency_iso_code)

    # --- refunds ------------------------------------------------------------------------

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        """Refund (or, for ``request.void``, void) the transaction; see docs/braintree.md."""
        if request.void:
            return self._void(request)
        options: dict[str, Any] = {
            # Always explicit: without an amount Braintree refunds the whole remainder.
            "amount": self.to_wire(request.amount),
            "order_id": request.refund_id,
            "api_request_key": request.idempotency_key,
        }
        account = self._merchant_account(request.amount.currency)
        if account is not None:
            options["merchant_account_id"] = account
        result = self._call(
            lambda: self._sdk().transaction.refund(request.gateway_payment_id, options)
        )
        return self._outcome(result)

    def _void(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        options = {"api_request_key": request.idempotency_key}
        result = self._call(
            lambda: self._sdk().transaction.void(request.gateway_payment_id, options)
        )
        if not result.is_success:
            if any(code == "91504" for code, _ in _codes(result)):
                # Settled since the quote: it cannot be voided any more, so refund it in full.
                return self.refund(_as_refund(request))
            self._outcome(result)  # raises the refusal
        sale = result.transaction
        if sale.status != "voided":
            raise GatewayDeclined(
                f"braintree left the transaction {sale.status} after a void",
                gateway_code="void_failed",
            )
        # A void answers with the sale itself, now voided: that is the refund succeeding.
        return GatewayRefundResult("succeeded", sale.id, self._amount(sale))

    def _merchant_account(self, currency: str) -> str | None:
        if not self._accounts:
            return None  # the merchant's default account (and its currency)
        account = self._accounts.get(currency)
        if account is None:
            raise GatewayDeclined(
                f"no braintree merchant account is configured for {currency}"
                f" (merchant_accounts has {', '.join(sorted(self._accounts))})",
                gateway_code="no_merchant_account",
            )
        return account

    def _outcome(self, result: Any) -> GatewayRefundResult:
        if result.is_success:
            return self._result(result.transaction)
        txn = getattr(result, "transaction", None)
        code = str(getattr(txn, "processor_response_code", "") or "")
        if txn is not None and code.isdigit() and 2000 <= int(code) < 3000:
            raise _errors.processor_declined(code, str(txn.processor_response_text or ""))
        raise _errors.declined(_codes(result), str(result.message))

    def _result(self, txn: Any) -> GatewayRefundResult:
        status = CREDIT_STATUSES.get(txn.status, "unknown")
        if status == "unknown":
            # Not understood: the credit may stand, so the refund is held (unknown).
            raise GatewayError(
                f"braintree answered with a {txn.status!r} transaction",
                gateway_code="unknown_status",
            )
        failed = status == "failed"
        return GatewayRefundResult(
            status=status,
            gateway_refund_id=txn.id,
            amount=self._amount(txn),
            failure_code=txn.status if failed else None,
            failure_message=(txn.processor_response_text or None) if failed else None,
        )

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        """The credit whose ``order_id`` is our refund id (on this payment), or the void.

        The result carries Braintree's amount and currency; the kit adopts it only when they
        agree with the request, otherwise the refund goes to ``manual_review``.
        """
        if request.void:
            sale = self._find(request.gateway_payment_id)
            if sale.status == "voided":
                return GatewayRefundResult("succeeded", sale.id, self._amount(sale))
        for txn in self._credits_for(request.refund_id):
            if txn.refunded_transaction_id == request.gateway_payment_id:
                return self._result(txn)
        return None

    def _credits_for(self, refund_id: str) -> list[Any]:
        braintree = import_braintree()
        search = braintree.TransactionSearch
        return self._call(
            lambda: list(
                self._sdk().transaction.search(
                    search.order_id == refund_id,
                    search.type == braintree.Transaction.Type.Credit,
                )
            )
        )

    # --- payments -----------------------------------------------------------------------

    def _find(self, transaction_id: str) -> Any:
        return self._call(lambda: self._sdk().transaction.find(transaction_id))

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        """The sale: card, settlement (only settled/settling can be refunded), disputes and
        the sum of its refunds that went through."""
        sale = self._find(gateway_payment_id)
        amount = self._amount(sale)
        refunded = sum(
            (r.amount for r in self._refunds(sale) if r.status == "succeeded"),
            Money.zero(amount.currency),
        )
        disputes = getattr(sale, "disputes", None) or []
        return GatewayPayment(
            gateway_payment_id=sale.id,
            amount=amount,
            refunded=refunded,
            card=card_of(sale),
            disputed=any(d.status not in _DISPUTE_OVER for d in disputes),
            settled=sale.status in REFUNDABLE_STATUSES,
            status=sale.status,
            captured_at=_utc(sale.created_at),
        )

    def list_refunds(self, gateway_payment_id: str) -> list[GatewayRefund]:
        """Every credit Braintree holds for the sale (ours carry our refund id as order_id)."""
        return self._refunds(self._find(gateway_payment_id))

    def _refunds(self, sale: Any) -> list[GatewayRefund]:
        refunds = []
        for refund_id in getattr(sale, "refund_ids", None) or []:
            credit = self._find(refund_id)
            result = self._result(credit)
            assert result.amount is not None  # _result always sets it
            refunds.append(
                GatewayRefund(
                    gateway_refund_id=credit.id,
                    amount=result.amount,
                    status=result.status,
                    refund_id=credit.order_id or None,
                    created_at=_utc(credit.created_at),
                )
            )
        return refunds

    def register_payment(self, payment: Any) -> GatewayPayment | None:
        """What Braintree knows of a payment being recorded: its card and whether it settled
        (an unsettled one can only be voided in full, which the quote then says).

        Refuses a payment whose amount or currency is not the transaction's: its refund cap
        would be wrong.
        """
        known = self.fetch_payment(payment.gateway_payment_id)
        if known.amount != payment.amount:
            raise PaymentExists(
                f"braintree transaction {known.gateway_payment_id!r} is {known.amount},"
                f" not {payment.amount}"
            )
        return known

    # --- webhooks -----------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
        """Verify a Braintree webhook notification with the SDK and read refund updates."""
        return _webhooks.parse(self, headers, body)

    def verified_notification(self, signature: str, payload: str) -> Any:
        """The SDK's notification in a delivery's ``bt_signature`` and ``bt_payload``.

        The SDK checks the signature against this merchant's keys; a refusal leaves as a
        refundkit error (the SDK's exception as its cause), as from every call here.
        """
        return self._call(lambda: self._sdk().webhook_notification.parse(signature, payload))

    def close(self) -> None:
        self._sdk_gateway = None


def card_of(txn: Any) -> Card | None:
    """Brand, last 4, expiry and BIN from ``credit_card_details``; None for PayPal and others.

    Never from ``masked_number``: it assumes 16 digits and can show the first 8.
    """
    if getattr(txn, "payment_instrument_type", None) == PAYPAL:
        return None
    details = getattr(txn, "credit_card_details", None)
    last4 = getattr(details, "last_4", None)
    if details is None or not isinstance(last4, str) or len(last4) != 4:
        return None
    bin_ = getattr(details, "bin", None)
    return Card(
        brand=_brand(getattr(details, "card_type", None)),
        last4=last4,
        exp_month=_int(getattr(details, "expiration_month", None)),
        exp_year=_int(getattr(details, "expiration_year", None)),
        first6=bin_ if isinstance(bin_, str) and len(bin_) == 6 and bin_.isdigit() else None,
    )


def _brand(card_type: object) -> str:
    if not isinstance(card_type, str) or not card_type:
        return "unknown"
    known = BRANDS.get(card_type)
    if known is not None:
        return known
    letters = "".join(c for c in card_type.lower() if c.isascii() and c.isalpha())
    return letters[:32] or "unknown"


def _int(value: object) -> int | None:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _codes(result: Any) -> list[tuple[str, str]]:
    errors: Iterable[Any] = getattr(getattr(result, "errors", None), "deep_errors", None) or []
    return [(str(e.code), str(e.message)) for e in errors]


def _as_refund(request: GatewayRefundRequest) -> GatewayRefundRequest:
    import attrs

    # Its own key: Braintree keys one operation each, and this is no longer the void.
    return attrs.evolve(request, void=False, idempotency_key=request.idempotency_key + ":refund")

"""BraintreeGateway on its built cassettes: refunds, refusals, voids, cards, configuration."""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
from _braintree_support import (
    BRAINTREE_VCR,
    CONFORMANCE,
    EXTRA,
    ROOT,
    TEST_CONFIG,
    DroppedReplyHttp,
    Plan,
    cassette,
    gateway,
    normalise_kit_ids,
)
from refundkit_braintree import BraintreeGateway, _errors
from refundkit_braintree._gateway import card_of, import_braintree

from refundkit import (
    AmountNotRepresentable,
    ConfigurationError,
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayRefundRequest,
    GatewayTimeout,
    InvalidMoney,
    Money,
    PaymentExists,
    PaymentNotFound,
    RefundKit,
    RefundkitError,
    RefundNotAllowed,
    WebhookVerificationError,
)
from refundkit._config import Config


def request(plan: Plan, amount: Money | None = None, **changes: Any) -> GatewayRefundRequest:
    base = GatewayRefundRequest(
        refund_id=plan.refund_id,
        payment_id="pay_" + plan.sale_id,
        gateway_payment_id=plan.sale_id,
        amount=amount or plan.refund_amount,
        idempotency_key=plan.idempotency_key,
    )
    return attrs.evolve(base, **changes)


# --- error mapping -----------------------------------------------------------------------------


def sdk_exception_classes() -> list[type[BaseException]]:
    """Every exception class defined under ``braintree.exceptions`` (walked, not listed)."""
    package = importlib.import_module("braintree.exceptions")
    found: dict[str, type[BaseException]] = {}
    modules = [package] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    ]
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__.startswith("braintree.exceptions")
            ):
                found[f"{value.__module__}.{value.__name__}"] = value
    return sorted(found.values(), key=lambda cls: cls.__name__)


def unmapped(classes: list[type[BaseException]]) -> list[str]:
    return [cls.__name__ for cls in classes if cls.__name__ not in _errors.EXCEPTIONS]


def test_every_sdk_exception_class_is_mapped() -> None:
    """Every class in braintree.exceptions has its refundkit error (a new one fails here)."""
    import_braintree()
    classes = sdk_exception_classes()
    assert len(classes) >= 18  # the walk found the SDK's classes, http ones included
    assert unmapped(classes) == []
    for cls in classes:
        try:
            exc = cls("boom")
        except TypeError:
            exc = cls()
        assert isinstance(_errors.from_exception(exc), RefundkitError)


def test_a_class_the_table_lacks_is_reported() -> None:
    braintree = import_braintree()
    base = braintree.exceptions.braintree_error.BraintreeError
    new = type("RefundWindowClosedError", (base,), {})
    assert unmapped([new]) == ["RefundWindowClosedError"]
    # Until mapped it falls back to its base class: an unknown outcome, never a release.
    assert type(_errors.from_exception(new("x"))) is GatewayError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AuthenticationError", GatewayAuthenticationError),
        ("AuthorizationError", GatewayAuthenticationError),
        ("NotFoundError", GatewayPaymentNotFound),
        ("TooManyRequestsError", GatewayRateLimited),
        ("ServiceUnavailableError", GatewayTimeout),  # a 5xx: held
        ("ServerError", GatewayTimeout),
        ("GatewayTimeoutError", GatewayTimeout),
        ("RequestTimeoutError", GatewayTimeout),
        ("UnexpectedError", GatewayTimeout),
        ("InvalidSignatureError", WebhookVerificationError),
    ],
)
def test_sdk_exceptions_map_by_what_they_say_about_the_outcome(
    name: str, expected: type[RefundkitError]
) -> None:
    """Definite refusals release the reservation; timeouts and 5xx leave it unknown (R-1.x)."""
    braintree = import_braintree()
    cls = getattr(braintree.exceptions, name)
    assert type(_errors.from_exception(cls("x"))) is expected


@pytest.mark.parametrize(
    ("code", "gateway_code", "limit"),
    [
        ("91506", "unsettled", "unsettled"),
        ("91521", "amount_too_large", "payment_cap"),
        ("91512", "already_refunded", "payment_cap"),
        ("91505", "cannot_refund_credit", None),
        ("91547", "refunds_not_supported", None),
        ("91538", "merchant_account_suspended", None),
        ("91559", "merchant_account_pending", None),
        ("81531", "amount_invalid", None),
        ("81503", "amount_invalid", None),
        ("915200", "refund_declined", None),
        ("915201", "refund_declined", None),
        ("12345", "validation_error", None),
    ],
)
def test_validation_codes_are_definite_refusals(
    code: str, gateway_code: str, limit: str | None
) -> None:
    error = _errors.declined([(code, "words")], "words")
    assert isinstance(error, GatewayDeclined)
    assert error.gateway_code == gateway_code
    assert error.details.get("limit") == limit
    assert error.details["braintree_code"] == code


# --- refunds on cassettes ---------------------------------------------------------------------


def test_two_partials_reach_the_full_amount_then_91512() -> None:
    plan = EXTRA["two_partials"]
    gw = gateway()
    second = request(plan, refund_id=plan.refund_id + "_2", idempotency_key="rk-two-2")
    third = request(
        plan, Money(1, "USD"), refund_id=plan.refund_id + "_3", idempotency_key="rk-two-3"
    )
    with cassette("two_partials_to_full"):
        first = gw.refund(request(plan))
        other = gw.refund(second)
        payment = gw.fetch_payment(plan.sale_id)
        with pytest.raises(GatewayDeclined) as info:
            gw.refund(third)
    assert (first.status, first.amount) == ("succeeded", Money(2000, "USD"))
    assert other.gateway_refund_id == "rkcrtwo2"
    assert payment.refunded == payment.amount == Money(4000, "USD")
    refunds = gw_list(plan)
    assert [(r.refund_id, r.amount.amount) for r in refunds] == [
        ("rf_two_partials", 2000),
        ("rf_two_partials_2", 2000),
    ]
    assert info.value.gateway_code == "already_refunded"
    assert info.value.details["limit"] == "payment_cap"


def gw_list(plan: Plan) -> list[Any]:
    # list_refunds reads the same sale and credits as fetch_payment (GETs 3-5 of the cassette).
    with BRAINTREE_VCR.use_cassette("two_partials_to_full.yaml", allow_playback_repeats=True):
        return gateway().list_refunds(plan.sale_id)


def test_paypal_account_payment_refunds_and_has_no_card() -> None:
    plan = EXTRA["paypal"]
    gw = gateway()
    with cassette("paypal_partial_refund"):
        result = gw.refund(request(plan))
        payment = gw.fetch_payment(plan.sale_id)
    assert (result.status, result.amount) == ("succeeded", Money(73, "USD"))
    assert payment.card is None  # a PayPal account, not a card: and it says so
    assert payment.settled
    assert payment.refunded == Money(73, "USD")


def test_partial_refund_of_an_unsettled_sale_is_refused_with_91506() -> None:
    plan = EXTRA["unsettled"]
    with cassette("unsettled_91506"), pytest.raises(GatewayDeclined) as info:
        gateway().refund(request(plan))
    assert info.value.gateway_code == "unsettled"
    assert info.value.details["limit"] == "unsettled"


def test_a_void_of_a_sale_settled_since_the_quote_becomes_a_full_refund() -> None:
    plan = EXTRA["void_settled"]
    with cassette("void_after_settlement_refunds"):
        result = gateway().refund(request(plan, void=True))
    assert (result.status, result.gateway_refund_id) == ("succeeded", "rkcrvset")
    assert result.amount == plan.amount


@pytest.mark.parametrize(
    ("name", "error", "code"),
    [
        ("unknown_transaction_404", GatewayPaymentNotFound, "not_found"),
        ("bad_credentials_401", GatewayAuthenticationError, "authentication"),
        ("processor_declined_refund", GatewayDeclined, "processor_declined"),
    ],
)
def test_refusals(name: str, error: type[GatewayError], code: str) -> None:
    plan = EXTRA[
        {
            "unknown_transaction_404": "not_found",
            "bad_credentials_401": "bad_credentials",
            "processor_declined_refund": "processor_declined",
        }[name]
    ]
    with cassette(name), pytest.raises(error) as info:
        gateway().refund(request(plan))
    assert info.value.gateway_code == code
    assert info.value.__cause__ is not None or code == "processor_declined"
    if code == "processor_declined":
        assert info.value.details["braintree_code"] == "2004"


def test_429_is_rate_limited_then_the_same_request_succeeds() -> None:
    plan = EXTRA["rate_limited"]
    gw = gateway()
    with cassette("rate_limited_429_then_success"):
        with pytest.raises(GatewayRateLimited):
            gw.refund(request(plan))
        result = gw.refund(request(plan))
    assert (result.status, result.gateway_refund_id) == ("succeeded", "rkcrrate")


def test_a_cassette_miss_is_not_taken_for_a_refusal() -> None:
    """With record_mode none an unrecorded request fails; it is an unknown outcome with the
    cassette's error as cause, never a definite refusal that would release the money."""
    with cassette("unsettled_91506"), pytest.raises(GatewayError) as info:
        gateway().refund(request(EXTRA["unsettled"], Money(999, "USD")))
    assert not isinstance(info.value, GatewayDeclined | GatewayRateLimited)
    wrapped = info.value.__cause__  # the SDK's UnexpectedError, holding vcrpy's exception
    assert wrapped is not None
    assert type(wrapped.args[0]).__name__ == "CannotOverwriteExistingCassetteException"


# --- the kit: unsettled payments, the quote and the void --------------------------------------


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[RefundKit]:
    opened = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}", gateways={"braintree": dict(TEST_CONFIG)}
    )
    yield opened
    opened.close()


def test_kit_quotes_an_unsettled_braintree_payment_as_a_full_void(
    kit: RefundKit, caplog: pytest.LogCaptureFixture
) -> None:
    """The quote, not a gateway error, refuses a partial refund of an unsettled payment; the
    full refund it offers goes out as a void. The quote and the refunds ask Braintree again
    whether it has settled (the cassette's GET, replayed: still submitted_for_settlement)."""
    plan = EXTRA["unsettled"]
    # The api_request_key is derived from the kit's refund id: match this cassette without it.
    with BRAINTREE_VCR.use_cassette(
        "unsettled_void.yaml", match_on=["method", "host", "path"], allow_playback_repeats=True
    ) as cass:
        payment = kit.record_payment(
            id="pay_unsettled",
            customer_id="cus_1",
            amount=plan.amount,
            gateway="braintree",
            gateway_payment_id=plan.sale_id,
        )
        assert not payment.settled
        assert payment.card is not None
        assert payment.card.last4 == "1881"
        quote = kit.quote("pay_unsettled")
        assert quote.max_amount == plan.amount
        assert [limit.code for limit in quote.limits] == ["unsettled"]
        with pytest.raises(RefundNotAllowed) as info:
            kit.refund("pay_unsettled", amount=Money(1000, "USD"), idempotency_key="k-part")
        assert "unsettled" in [limit.code for limit in info.value.limits]
        refund = kit.refund("pay_unsettled", amount=None, idempotency_key="k-void")
        assert cass.all_played
        assert cass.play_count == 5  # record, quote, two refunds (GET each), the void (PUT)
    assert "could not ask its gateway" not in caplog.text  # no replay was missing
    assert refund.status.value == "succeeded"
    assert refund.gateway_refund_id == plan.sale_id
    assert refund.amount == plan.amount


def test_kit_refunds_in_part_once_the_payment_has_settled(
    kit: RefundKit, caplog: pytest.LogCaptureFixture
) -> None:
    """Recorded while submitted_for_settlement, settled by the time support looks: the quote
    asks Braintree, stores the answer and offers a partial refund, which goes out as a credit
    (not a void); later quotes ask nobody."""
    plan = EXTRA["unsettled"]
    with BRAINTREE_VCR.use_cassette(
        "settled_since_recording.yaml", match_on=["method", "host", "path"]
    ) as cass:
        assert not kit.record_payment(
            id="pay_settles",
            customer_id="cus_1",
            amount=plan.amount,
            gateway="braintree",
            gateway_payment_id=plan.sale_id,
        ).settled
        quote = kit.quote("pay_settles")
        assert (quote.limits, quote.full_only) == ((), False)
        refund = kit.refund("pay_settles", Money(1000, "USD"), idempotency_key="k-part")
        assert kit.quote("pay_settles").max_amount == Money(3000, "USD")
        assert cass.all_played
    assert "could not ask its gateway" not in caplog.text
    assert refund.status.value in ("succeeded", "pending")
    assert refund.gateway_refund_id == "rkcrsset"


# --- amounts, cards, configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "wire"),
    [
        (Money(1050, "USD"), "10.50"),
        (Money(5, "USD"), "0.05"),
        (Money(1000, "JPY"), "1000"),
        (Money(1500, "KWD"), "1.500"),
    ],
)
def test_amounts_go_as_decimal_strings_and_come_back_exactly(money: Money, wire: str) -> None:
    gw = gateway()
    assert gw.to_wire(money) == wire
    assert type(gw.to_wire(money)) is str
    assert gw.from_wire(Decimal(wire), money.currency) == money


def test_an_amount_finer_than_the_currency_is_refused() -> None:
    with pytest.raises(AmountNotRepresentable):
        gateway().from_wire(Decimal("10.005"), "USD")
    with pytest.raises(AmountNotRepresentable):
        gateway().from_wire(Decimal("10.5"), "JPY")
    for garbage in ("ten", "NaN", "Infinity"):
        with pytest.raises(InvalidMoney):
            gateway().from_wire(garbage, "USD")


def test_card_comes_from_credit_card_details_never_masked_number() -> None:
    """An Amex with an 8-digit BIN: masked_number would show first 8 over 16 characters."""
    details = SimpleNamespace(
        bin="378282",
        bin_extended="37828224",
        last_4="0005",
        card_type="American Express",
        expiration_month="07",
        expiration_year="2031",
        masked_number="37828224****0005",
    )
    card = card_of(
        SimpleNamespace(payment_instrument_type="credit_card", credit_card_details=details)
    )
    assert card is not None
    assert (card.brand, card.last4, card.first6) == ("amex", "0005", "378282")
    assert (card.exp_month, card.exp_year) == (7, 2031)
    assert "37828224" not in repr(card) + str(card.to_dict())


def test_paypal_transaction_has_no_card() -> None:
    txn = SimpleNamespace(payment_instrument_type="paypal_account", credit_card_details=None)
    assert card_of(txn) is None


def test_configuration_comes_from_config_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MERCHANT_ID", "PUBLIC_KEY", "PRIVATE_KEY", "ENVIRONMENT"):
        monkeypatch.delenv(f"REFUNDKIT_BRAINTREE_{key}", raising=False)
    with pytest.raises(ConfigurationError, match="merchant_id"):
        BraintreeGateway({})
    monkeypatch.setenv("REFUNDKIT_BRAINTREE_MERCHANT_ID", "m_env")
    monkeypatch.setenv("REFUNDKIT_BRAINTREE_PUBLIC_KEY", "pub_env")
    monkeypatch.setenv("REFUNDKIT_BRAINTREE_PRIVATE_KEY", "private_from_env")
    gw = BraintreeGateway({})
    assert "private_from_env" not in repr(gw)
    with pytest.raises(ConfigurationError, match="environment"):
        BraintreeGateway({"environment": "live"})
    with pytest.raises(ConfigurationError, match="merchant_accounts"):
        BraintreeGateway({"merchant_accounts": {"USD": 5}})


def test_the_merchant_account_is_chosen_by_currency() -> None:
    """merchant_account_id follows the refund's currency; a currency without an account is
    refused before anything is sent."""
    sent: list[bytes] = []

    class Capture:
        def __init__(self, config: Any, environment: Any) -> None:
            pass

        def http_do(self, verb: str, url: str, headers: Any, body: Any) -> list[Any]:
            sent.append(body.encode() if isinstance(body, str) else body)
            return [404, ""]

        def handle_exception(self, exc: Exception) -> None:
            raise exc

    gw = gateway(merchant_accounts={"EUR": "acme_eur", "USD": "acme_usd"}, http_strategy=Capture)
    plan = EXTRA["not_found"]
    with pytest.raises(GatewayPaymentNotFound):
        gw.refund(request(plan, Money(1000, "EUR")))
    assert b"<merchant_account_id>acme_eur</merchant_account_id>" in sent[0]
    assert b"<amount>10.00</amount>" in sent[0]
    assert b"<order_id>rf_not_found</order_id>" in sent[0]
    assert b"<api_request_key>rk-not_found-1</api_request_key>" in sent[0]
    with pytest.raises(GatewayDeclined, match="GBP"):
        gw.refund(request(plan, Money(1000, "GBP")))
    assert len(sent) == 1


def test_the_documented_configuration_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """The [gateways.braintree] example of docs/braintree.md configures a gateway."""
    text = (ROOT / "docs" / "braintree.md").read_text(encoding="utf-8")
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    for key in ("MERCHANT_ID", "PUBLIC_KEY", "PRIVATE_KEY"):
        monkeypatch.setenv(f"REFUNDKIT_BRAINTREE_{key}", f"doc_{key.lower()}")
    config = Config(tomllib.loads(block))
    gw = BraintreeGateway(config.section("gateways", "braintree"))
    assert gw._merchant_account("EUR") == "acme_eur"
    assert gw._settings["private_key"] == "doc_private_key"


def test_lookup_reports_braintrees_amount_so_a_mismatch_is_not_adopted() -> None:
    """R-1.7: a credit found by order_id carries its own amount; when it differs from the
    request the kit sends the refund to manual_review instead of adopting it."""
    plan = CONFORMANCE["unknown_then_lookup"]
    asked = request(plan, Money(1900, "USD"))
    with BRAINTREE_VCR.use_cassette("conformance/unknown_then_lookup.yaml") as cass:
        found = gateway().lookup_refund(asked)
        unsent = gateway().lookup_refund(request(plan, refund_id=plan.refund_id + "_unsent"))
        assert cass.play_count == 3  # two searches, one page: no refund was sent
    assert found is not None
    assert found.gateway_refund_id == "rkcrlook"
    assert found.amount == Money(2000, "USD") != asked.amount
    assert unsent is None


def test_kit_recovers_a_timed_out_refund_by_order_id(tmp_path: Path) -> None:
    """R-1.7: Braintree applies the refund, the reply is lost; recovery finds the credit by
    order_id and adopts it: one refund at Braintree, none sent again."""
    plan = EXTRA["kit_recover"]
    now = [datetime(2026, 11, 22, 10, 0, tzinfo=UTC)]
    DroppedReplyHttp.dropped = False
    kit = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}",
        gateways={"braintree": {**TEST_CONFIG, "http_strategy": DroppedReplyHttp}},
        clock=lambda: now[0],
    )
    try:
        with BRAINTREE_VCR.use_cassette(
            "kit_timeout_then_recover.yaml", before_record_request=normalise_kit_ids
        ) as cass:
            kit.record_payment(
                id="pay_kitr",
                customer_id="cus_1",
                amount=plan.amount,
                gateway="braintree",
                gateway_payment_id=plan.sale_id,
            )
            unknown = kit.refund("pay_kitr", amount=plan.refund_amount, idempotency_key="k-kitr")
            assert unknown.status.value == "unknown"
            assert kit.quote("pay_kitr").max_amount == Money(2000, "USD")  # still held
            now[0] += timedelta(hours=1)
            report = kit.recover()
            assert cass.all_played  # one refund POST; recovery only searched
    finally:
        kit.close()
    (resolved,) = report.resolved
    assert resolved.status.value == "succeeded"
    assert resolved.gateway_refund_id == "rkcrkitr"
    assert kit_refunded(tmp_path) == 2000


def kit_refunded(tmp_path: Path) -> int:
    kit = RefundKit.open(f"sqlite:///{tmp_path / 'kit.db'}", gateways={"braintree": TEST_CONFIG})
    try:
        return kit.quote("pay_kitr").max_amount.amount
    finally:
        kit.close()


def test_recording_a_payment_braintree_knows_differently_is_refused(kit: RefundKit) -> None:
    """The kit's cap must be Braintree's amount: a mismatch is refused and nothing written."""
    plan = EXTRA["unsettled"]
    with (
        BRAINTREE_VCR.use_cassette("unsettled_void.yaml", allow_playback_repeats=True),
        pytest.raises(PaymentExists, match=r"40\.00"),
    ):
        kit.record_payment(
            id="pay_wrong",
            customer_id="cus_1",
            amount=Money(5000, "USD"),
            gateway="braintree",
            gateway_payment_id=plan.sale_id,
        )
    with pytest.raises(PaymentNotFound):
        kit.payment("pay_wrong")

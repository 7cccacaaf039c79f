"""Stripe's errors at the boundary, on cassettes: refusals, not-found, bad key, retries with
the same Idempotency-Key, and a lost reply that leaves the refund unknown."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import stripe
import stripe._error
from _stripe_cassettes import CASSETTES, EXTRA, INTENT, SECOND_REFUND, Case
from _stripe_support import (
    STRIPE_VCR,
    DroppingClient,
    cassette,
    make_gateway,
    not_a_cassette_miss,
)
from refundkit_stripe._errors import ERROR_MAP, translate

from refundkit import (
    AmountNotRepresentable,
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayRefundRequest,
    GatewayTimeout,
    Money,
    RefundkitError,
)


def _sdk_error_classes() -> set[type[stripe.StripeError]]:
    """Every exception class of the SDK's error module, and every StripeError subclass."""
    found = {
        cls
        for _, cls in inspect.getmembers(stripe._error, inspect.isclass)
        if issubclass(cls, stripe.StripeError)
    }
    todo = [stripe.StripeError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_sdk_error_class_is_mapped() -> None:
    # A class a new SDK adds is not in ERROR_MAP and fails here until it is mapped.
    missing = sorted(c.__name__ for c in _sdk_error_classes() if c not in ERROR_MAP)
    assert not missing, f"stripe error classes without a refundkit mapping: {missing}"
    for cls in _sdk_error_classes():
        error = translate(_instance(cls))
        assert isinstance(error, RefundkitError)
        assert isinstance(error, ERROR_MAP[cls]), f"{cls.__name__} became {error!r}"


def _instance(cls: type[stripe.StripeError]) -> stripe.StripeError:
    required = [
        p
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
        if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    return cls("boom", *([None] * (len(required) - 1)))


def test_a_new_sdk_error_class_is_caught_by_the_walk() -> None:
    class NewStripeError(stripe.StripeError):
        pass

    try:
        assert NewStripeError in _sdk_error_classes()
        assert NewStripeError not in ERROR_MAP
    finally:
        del NewStripeError


def _request(case: Case, amount: int | None = None, **changes: Any) -> GatewayRefundRequest:
    return GatewayRefundRequest(
        refund_id=changes.get("refund_id", case.refund_id),
        payment_id="pay_" + case.name,
        gateway_payment_id=changes.get("gateway_payment_id", case.charge),
        amount=Money(case.refund_amount if amount is None else amount, case.currency),
        idempotency_key=changes.get("key", case.key),
        reason="requested_by_customer",
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("charge_already_refunded", "charge_already_refunded"),
        ("charge_disputed", "charge_disputed"),
    ],
)
def test_refusals_are_declines_that_name_the_reason(name: str, code: str) -> None:
    case = EXTRA[name]
    with cassette(CASSETTES / "errors" / f"{name}.yaml"), pytest.raises(GatewayDeclined) as info:
        make_gateway().refund(_request(case))
    assert info.value.gateway_code == code
    assert code in info.value.message
    assert isinstance(info.value.__cause__, stripe.InvalidRequestError)


def test_an_unknown_charge_is_payment_not_found() -> None:
    case = EXTRA["unknown_charge"]
    path = CASSETTES / "errors" / "unknown_charge.yaml"
    with cassette(path), pytest.raises(GatewayPaymentNotFound) as info:
        make_gateway().refund(_request(case))
    assert info.value.gateway_code == "resource_missing"


def test_a_bad_key_is_an_authentication_error_that_does_not_show_the_key() -> None:
    case = EXTRA["bad_key"]
    gateway = make_gateway(api_key="sk_test_wrong_key_for_this_test")
    path = CASSETTES / "errors" / "bad_key.yaml"
    with cassette(path), pytest.raises(GatewayAuthenticationError) as info:
        gateway.refund(_request(case))
    assert "sk_test_wrong_key_for_this_test" not in str(info.value)


@pytest.mark.parametrize("name", ["lock_timeout_then_success", "server_error_then_success"])
def test_lock_timeout_and_5xx_are_retried_with_the_same_key(name: str) -> None:
    """R-1.4: a retry carries the key of the first attempt."""
    # The cassette's two interactions both require the key refundkit-rf_<name> (the
    # stripe_key matcher), so the success can only be the retry under the same key.
    case = EXTRA[name]
    with cassette(CASSETTES / "errors" / f"{name}.yaml") as cass:
        result = make_gateway().refund(_request(case))
    assert cass.play_count == 2
    assert result.status == "succeeded"
    assert result.gateway_refund_id == case.gateway_refund_id


def test_lock_timeout_without_retries_left_is_rate_limited_with_its_code() -> None:
    case = EXTRA["lock_timeout_then_success"]
    path = CASSETTES / "errors" / "lock_timeout_then_success.yaml"
    with STRIPE_VCR.use_cassette(str(path)) as cass, pytest.raises(GatewayRateLimited) as info:
        make_gateway(max_network_retries=0).refund(_request(case))
    assert cass.play_count == 1
    assert info.value.gateway_code == "lock_timeout"  # read from e.error.code


def test_a_lost_reply_after_sending_is_a_timeout() -> None:
    """R-2.3: sent, no reply: GatewayTimeout, so the kit holds the refund unknown."""
    case = EXTRA["server_error_then_success"]
    client = DroppingClient(timeout=5, retry_delay=0)
    client.drop_next = True
    path = CASSETTES / "errors" / "server_error_then_success.yaml"
    with STRIPE_VCR.use_cassette(str(path)), pytest.raises(GatewayTimeout) as info:
        make_gateway(http_client=client, max_network_retries=0).refund(_request(case))
    assert isinstance(info.value.__cause__, stripe.APIConnectionError)
    not_a_cassette_miss(info.value)


def test_a_cassette_miss_is_told_apart_from_a_timeout() -> None:
    # Stripe wraps vcrpy's miss in APIConnectionError, which the plugin maps to unknown:
    # the cassette guard must still see it for what it is.
    case = EXTRA["bad_key"]
    path = CASSETTES / "errors" / "charge_disputed.yaml"  # holds another charge's refund
    with STRIPE_VCR.use_cassette(str(path)), pytest.raises(GatewayTimeout) as info:
        make_gateway().refund(_request(case))
    with pytest.raises(AssertionError, match="no matching interaction"):
        not_a_cassette_miss(info.value)


def test_two_partial_refunds_of_a_payment_intent_reach_the_full_amount() -> None:
    case = EXTRA["two_partial_refunds"]
    second_id, second_gateway_id, second_amount = SECOND_REFUND
    gateway = make_gateway()
    with cassette(CASSETTES / "errors" / "two_partial_refunds.yaml"):
        first = gateway.refund(_request(case, gateway_payment_id=INTENT))
        second = gateway.refund(
            _request(
                case,
                second_amount,
                gateway_payment_id=INTENT,
                refund_id=second_id,
                key=f"refundkit-{second_id}",
            )
        )
        payment = gateway.fetch_payment(INTENT)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert second.gateway_refund_id == second_gateway_id
    assert payment.refunded == payment.amount == Money(5000, "USD")
    assert payment.card is not None
    assert payment.card.last4 == "4242"
    assert payment.gateway_payment_id == INTENT


@pytest.mark.parametrize(
    ("amount", "currency"), [(1050, "MGA"), (-1, "USD"), (0, "USD"), (10**12, "USD")]
)
def test_an_amount_stripe_cannot_take_is_refused_before_any_call(
    amount: int, currency: str
) -> None:
    """R-6.7: fractions Stripe has no digits for, nothing, or more than 12 digits."""
    case = EXTRA["bad_key"]
    request = GatewayRefundRequest(
        refund_id="rf_x",
        payment_id="pay_x",
        gateway_payment_id=case.charge,
        amount=Money(amount, currency),
        idempotency_key="refundkit-rf_x",
    )
    path = CASSETTES / "errors" / "bad_key.yaml"
    with STRIPE_VCR.use_cassette(str(path)) as cass, pytest.raises(AmountNotRepresentable):
        make_gateway().refund(request)
    assert cass.play_count == 0, "a request was sent for an amount Stripe cannot take"


def test_isk_and_ugx_go_as_two_decimal_values_ending_in_00() -> None:
    gateway = make_gateway()
    assert gateway.to_gateway_amount(Money(5, "ISK")) == 500
    assert gateway.to_gateway_amount(Money(1234, "UGX")) == 123400
    assert gateway.from_gateway_amount(500, "ISK") == Money(5, "ISK")
    with pytest.raises(AmountNotRepresentable):
        gateway.from_gateway_amount(550, "ISK")
    assert gateway.to_gateway_amount(Money(1000, "MGA")) == 10
    assert gateway.to_gateway_amount(Money(500, "JPY")) == 500
    assert gateway.to_gateway_amount(Money(1230, "KWD")) == 1230

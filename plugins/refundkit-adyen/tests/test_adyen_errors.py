"""Adyen's answers and SDK exceptions map onto refundkit's errors (R-2.4: only definite
refusals release a reservation)."""

from __future__ import annotations

import inspect

import Adyen.exceptions
import pytest
import requests
from _adyen_cassettes import CASES, Recorded, adyen_vcr, gateway_config, path
from refundkit_adyen import AdyenGateway
from refundkit_adyen._errors import SDK_ERRORS, translate

from refundkit import (
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayRefundRequest,
    GatewayTimeout,
    GatewayUnavailable,
    Money,
    RefundkitError,
)


def _request(case: Recorded) -> GatewayRefundRequest:
    return GatewayRefundRequest(
        refund_id=case.refund_id,
        payment_id="pay_1",
        gateway_payment_id=case.payment_psp,
        amount=Money(case.refund_amount, case.currency),
        idempotency_key=case.key,
        reason=case.reason,
    )


@pytest.mark.parametrize(
    ("name", "error", "code"),
    [
        ("conformance/over_refund", GatewayDeclined, "137"),
        ("refund_422_unknown_payment", GatewayPaymentNotFound, "167"),
        ("refund_401_unauthorized", GatewayAuthenticationError, "000"),
        ("refund_403_invalid_merchant", GatewayAuthenticationError, "901"),
        # The same key while the first request is in progress: that one may still succeed.
        ("refund_704_in_progress", GatewayTimeout, "704"),
        ("refund_500_too_many_requests", GatewayRateLimited, "00_500"),
    ],
)
def test_recorded_errors_map(name: str, error: type[GatewayError], code: str) -> None:
    case = CASES[name]
    with adyen_vcr().use_cassette(str(path(case))) as cassette:
        with pytest.raises(error) as info:
            AdyenGateway(gateway_config()).refund(_request(case))
        assert cassette.all_played
    assert type(info.value) is error
    assert info.value.gateway_code == code
    assert code in str(info.value)


def test_429_then_received() -> None:
    """A 429 is a definite refusal (rate limited); the retry with the same key is received."""
    case = CASES["refund_429_then_received"]
    gateway = AdyenGateway(gateway_config())
    with adyen_vcr().use_cassette(str(path(case))) as cassette:
        with pytest.raises(GatewayRateLimited):
            gateway.refund(_request(case))
        result = gateway.refund(_request(case))
        assert cassette.all_played
    assert result.status == "pending"
    assert result.gateway_refund_id == case.refund_psp


def test_every_sdk_exception_class_is_mapped() -> None:
    """Walks Adyen.exceptions: a class a new SDK version adds fails here until it is mapped."""
    classes = {
        name
        for name, cls in inspect.getmembers(Adyen.exceptions, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == Adyen.exceptions.__name__
    }
    assert classes, "found no exception classes in Adyen.exceptions"
    assert classes == set(SDK_ERRORS)
    for name in classes:
        exc = getattr(Adyen.exceptions, name)("boom")
        translated = translate(exc)
        assert isinstance(translated, RefundkitError)
        assert isinstance(translated, SDK_ERRORS[name])


@pytest.mark.parametrize(
    ("status", "code", "headers", "error"),
    [
        (409, "704", {}, GatewayTimeout),
        (422, "704", {}, GatewayTimeout),
        (409, None, {}, GatewayTimeout),
        (429, None, {}, GatewayRateLimited),
        (503, "703", {}, GatewayUnavailable),
        (503, None, {"transient-error": "true"}, GatewayUnavailable),
        (503, None, {}, GatewayError),  # may have been applied: unknown, held
        (500, None, {}, GatewayError),
        (422, "100", {}, GatewayDeclined),
    ],
)
def test_status_and_code_map(
    status: int, code: str | None, headers: dict[str, str], error: type[GatewayError]
) -> None:
    base = Adyen.exceptions.AdyenAPIResponseError
    cls = {422: Adyen.exceptions.AdyenAPIUnprocessableEntity}.get(status, base)
    exc = cls({"message": "x"}, "", "", "", "", headers, status, code)
    assert type(translate(exc)) is error


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (requests.ConnectTimeout("connect"), GatewayUnavailable),
        (requests.ReadTimeout("read"), GatewayTimeout),
        (requests.ConnectionError("reset"), GatewayTimeout),
        (RuntimeError("anything else"), GatewayError),
    ],
)
def test_transport_errors_never_escape(exc: Exception, error: type[GatewayError]) -> None:
    """Network errors are not wrapped by the SDK: a connect failure is definite, anything
    after sending leaves the outcome unknown."""
    translated = AdyenGateway(gateway_config())._translate(exc)
    assert type(translated) is error


def test_missing_credentials_refuse_before_sending() -> None:
    case = CASES["conformance/full_refund"]
    with pytest.raises(GatewayAuthenticationError, match="api_key"):
        AdyenGateway({"merchant_account": "M"}).refund(_request(case))

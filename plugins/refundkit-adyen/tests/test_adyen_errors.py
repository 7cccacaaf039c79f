"""Adyen's answers and SDK exceptions map onto refundkit's errors (R-2.4: only definite
refusals release a reservation)."""

from __future__ import annotations

import inspect

import Adyen.exceptions
import pytest
import requests
from _adyen_cassettes import CASES, Recorded, gateway_config, use
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
from refundkit._gateway import DEFINITE_REFUSALS  # tests may reach in; plugins may not


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
        # a 5xx may have been applied, whatever its errorCode says: held.
        ("refund_500_too_many_requests", GatewayTimeout, "00_500"),
        ("kit_500_errorcode_000", GatewayTimeout, "000"),
        ("kit_502_errorcode_010", GatewayTimeout, "010"),
        ("kit_503_errorcode_901", GatewayTimeout, "901"),
        ("kit_500_errorcode_137", GatewayTimeout, "137"),
        ("kit_500_errorcode_167", GatewayTimeout, "167"),
    ],
)
def test_recorded_errors_map(name: str, error: type[GatewayError], code: str) -> None:
    case = CASES[name]
    with use(case) as cassette:
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
    with use(case) as cassette:
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
        (429, "000", {}, GatewayRateLimited),
        (401, "000", {}, GatewayAuthenticationError),
        (403, "010", {}, GatewayAuthenticationError),
        (422, "167", {}, GatewayPaymentNotFound),
        (422, "100", {}, GatewayDeclined),
        (400, "000", {}, GatewayDeclined),
        # A status the plugin cannot classify: held.
        (404, None, {}, GatewayError),
        (405, "000", {}, GatewayError),
        (302, None, {}, GatewayError),
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


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 599])
@pytest.mark.parametrize("code", ["000", "010", "901", "137", "167", "703", "704", "00_500", None])
@pytest.mark.parametrize("transient", [False, True])
def test_a_5xx_is_held_whatever_its_error_code(
    status: int, code: str | None, transient: bool
) -> None:
    """R-2.4: only an answer that proves Adyen did not act releases the reservation. A 5xx
    may have been applied, so whatever errorCode (or transient-error header) it carries, the
    refund stays unknown and held (GatewayTimeout: recovery re-sends it with its key)."""
    headers = {"transient-error": "true"} if transient else {}
    for cls in (
        Adyen.exceptions.AdyenAPIResponseError,
        Adyen.exceptions.AdyenAPICommunicationError,
        Adyen.exceptions.AdyenAPIAuthenticationError,  # the class never decides over the status
        Adyen.exceptions.AdyenAPIUnprocessableEntity,
    ):
        exc = cls({"message": "x"}, "", "", "", "", headers, status, code)
        error = translate(exc)
        assert type(error) is GatewayTimeout, (cls.__name__, status, code, error)
        assert not isinstance(error, DEFINITE_REFUSALS)
        assert error.gateway_code == code

"""What the Adyen gateway sends: endpoints, the pinned transport, amounts, keys, reasons."""

from __future__ import annotations

import hashlib
from typing import Any

import Adyen.httpclient
import pytest
import requests
from _adyen_cassettes import CASES, gateway_config, use
from refundkit_adyen import ADYEN_EXPONENTS, AdyenGateway

from refundkit import (
    AmountNotRepresentable,
    ConfigurationError,
    GatewayError,
    GatewayRefundRequest,
    GatewayTimeout,
    Money,
)


def _request(amount: Money, key: str = "refundkit-rf_1", reason: str | None = None) -> Any:
    return GatewayRefundRequest(
        refund_id="rf_1",
        payment_id="pay_1",
        gateway_payment_id="QFQTPCQ8HXSKGK82",
        amount=amount,
        idempotency_key=key,
        reason=reason,
    )


class _Sent(Exception):
    pass


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replaces requests.request; any other transport would not be seen (and vcrpy neither)."""
    calls: list[dict[str, Any]] = []

    def fake(**kw: Any) -> Any:
        calls.append(kw)
        raise requests.ReadTimeout("captured")

    monkeypatch.setattr(requests, "request", fake)
    return calls


def test_the_transport_is_requests_never_pycurl(monkeypatch: pytest.MonkeyPatch) -> None:
    """vcrpy cannot see pycurl: even when pycurl is importable, the SDK is pinned to requests."""

    class Pycurl:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("pycurl was used")

    monkeypatch.setattr(Adyen.httpclient, "pycurl", Pycurl())
    gateway = AdyenGateway(gateway_config())
    assert gateway.transport == "requests"
    calls = _capture(monkeypatch)
    with pytest.raises(GatewayTimeout):
        gateway.refund(_request(Money(500, "EUR")))
    assert len(calls) == 1


def test_the_pin_holds_where_the_sdk_would_pick_pycurl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without requests importable the SDK would pick pycurl (which vcrpy cannot see); the
    gateway refuses to send instead, and with requests back it uses requests."""
    monkeypatch.setattr(Adyen.httpclient, "requests", None)
    monkeypatch.setattr(Adyen.httpclient, "pycurl", object())
    unpinned = Adyen.httpclient.HTTPClient("ua", "16.0.0")
    assert unpinned.request.__name__ == "_pycurl_request"
    pinned = AdyenGateway(gateway_config())
    with pytest.raises(ConfigurationError, match="requests"):
        pinned.refund(_request(Money(500, "EUR")))
    monkeypatch.undo()
    assert pinned.transport == "requests"


def test_test_and_live_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _capture(monkeypatch)
    live = {**gateway_config(), "platform": "live", "live_endpoint_prefix": "1797a841fbb37ca7-Co"}
    for config in (gateway_config(), live):
        with pytest.raises(GatewayTimeout):
            AdyenGateway(config).refund(_request(Money(500, "EUR")))
    assert [c["url"] for c in calls] == [
        "https://checkout-test.adyen.com/v72/payments/QFQTPCQ8HXSKGK82/refunds",
        "https://1797a841fbb37ca7-Co-checkout-live.adyenpayments.com/checkout/v72/payments/"
        "QFQTPCQ8HXSKGK82/refunds",
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"platform": "live"}, "live_endpoint_prefix"),
        ({"platform": "production"}, "'test' or 'live'"),
        ({"hmac_key": "not hex"}, "hex"),
    ],
)
def test_configuration_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AdyenGateway({**gateway_config(), **config})


def test_the_amount_is_always_sent_and_the_reason_mapped() -> None:
    gateway = AdyenGateway(gateway_config())
    body = gateway.refund_body(_request(Money(5000, "EUR"), reason="duplicate"))
    assert body == {
        "merchantAccount": "RefundkitTestECOM",
        "amount": {"currency": "EUR", "value": 5000},
        "reference": "rf_1",
        "merchantRefundReason": "DUPLICATE",
    }
    other = gateway.refund_body(_request(Money(5000, "EUR"), reason="changed their mind"))
    assert other["merchantRefundReason"] == "OTHER"


def test_a_long_key_is_hashed_to_64_characters_the_same_each_time() -> None:
    long_key = "k" * 65
    key = AdyenGateway.adyen_key(_request(Money(1, "EUR"), key=long_key))
    assert key == hashlib.sha256(long_key.encode()).hexdigest()
    assert len(key) == 64
    assert AdyenGateway.adyen_key(_request(Money(1, "EUR"), key="k" * 64)) == "k" * 64


@pytest.mark.parametrize(
    ("money", "value"),
    [
        (Money(1250, "CLP"), 125000),  # ISO 0 decimals, Adyen 2
        (Money(125, "ISK"), 12500),  # ISO 0, Adyen 2
        (Money(125000, "IDR"), 1250),  # ISO 2, Adyen 0
        (Money(12500, "CVE"), 125),  # ISO 2, Adyen 0
        # R-6.4's Adyen table
        (Money(1000, "CLP"), 100000),
        (Money(5, "ISK"), 500),
        (Money(1000000, "IDR"), 10000),
        (Money(10000, "CVE"), 100),
        (Money(1250, "JPY"), 1250),
        (Money(1250, "KWD"), 1250),
    ],
)
def test_adyen_currency_exponents(money: Money, value: int) -> None:
    """R-6.4: Adyen's wire amounts, in its own exponents."""
    gateway = AdyenGateway(gateway_config())
    assert gateway.to_gateway_amount(money) == value
    assert gateway.from_gateway_amount(value, money.currency) == money
    assert dict(ADYEN_EXPONENTS) == {"CLP": 2, "ISK": 2, "IDR": 0, "CVE": 0}


def test_an_unrepresentable_amount_is_refused_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R-6.4: IDR 10000.50 has no Adyen form; it is refused, not rounded, and nothing sent."""
    calls = _capture(monkeypatch)
    with pytest.raises(AmountNotRepresentable):
        AdyenGateway(gateway_config()).refund(_request(Money(1000050, "IDR")))
    assert calls == []


@pytest.mark.parametrize("name", ["refund_clp", "refund_idr"])
def test_refunds_in_adyen_exponents_on_cassettes(name: str) -> None:
    case = CASES[name]
    request = GatewayRefundRequest(
        refund_id=case.refund_id,
        payment_id="pay_1",
        gateway_payment_id=case.payment_psp,
        amount=Money(case.refund_amount, case.currency),
        idempotency_key=case.key,
        reason=case.reason,
    )
    with use(case) as cassette:
        result = AdyenGateway(gateway_config()).refund(request)
        assert cassette.all_played
    assert result.status == "pending"
    assert result.amount == request.amount


def test_repr_hides_the_configuration() -> None:
    gateway = AdyenGateway({**gateway_config(), "api_key": "AQE-secret-key-value"})
    assert "secret" not in repr(gateway)


def test_what_adyen_cannot_do_is_said_plainly() -> None:
    """No refund lookup, no payment fetch, no refund list: recovery and reconciliation get
    a clear answer instead of a guess."""
    gateway = AdyenGateway(gateway_config())
    assert gateway.lookup_refund(_request(Money(500, "EUR"))) is None
    assert gateway.list_refunds("QFQTPCQ8HXSKGK82") is None
    with pytest.raises(GatewayError) as info:
        gateway.fetch_payment("QFQTPCQ8HXSKGK82")
    assert info.value.gateway_code == "not_supported"

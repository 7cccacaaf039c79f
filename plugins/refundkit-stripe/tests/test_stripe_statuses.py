"""Issue 15 for Stripe: every refund status Stripe lists is mapped, and the HTTP status decides
before the error code (a 5xx is held whatever code its body carries; R-2.4)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
import refundkit_stripe
import stripe
from _stripe_cassettes import CASSETTES, CONFORMANCE, FIXTURES
from _stripe_support import cassette, make_gateway
from _stripe_webhooks import WEBHOOK_CONFIG, signed_refund_delivery
from refundkit_stripe import STATUS_TABLE, StatusOutcome, StripeGateway, server_error_body
from refundkit_stripe._errors import NOT_FOUND, REFUSALS, translate
from stripe import _refund

from refundkit import (
    GatewayError,
    GatewayTimeout,
    Money,
    Refund,
    RefundKit,
    RefundStatus,
)
from refundkit._gateway import DEFINITE_REFUSALS  # tests may reach in; plugins may not

SPEC = FIXTURES / "openapi" / "spec3.2023-09-12.subset.json"


def _backticked(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", text))


def spec_statuses() -> set[str]:
    """The statuses Stripe's OpenAPI spec gives for ``refund.status`` (an enum where the spec
    has one; this version lists them in the description)."""
    refund = json.loads(SPEC.read_text())["components"]["schemas"]["refund"]
    status = refund["properties"]["status"]
    return set(status.get("enum") or []) | _backticked(status["description"])


def sdk_statuses() -> set[str]:
    """The statuses the SDK documents for ``Refund.status`` (its docstring)."""
    source = inspect.getsource(_refund.Refund)
    doc = re.search(r"\n    status: .*?\n\s*\"\"\"(.*?)\"\"\"", source, re.S)
    assert doc is not None, "stripe.Refund.status has no docstring any more"
    return _backticked(doc.group(1).split("Learn more")[0])


def test_the_lists_are_read() -> None:
    assert {"pending", "succeeded", "failed"} <= spec_statuses()
    assert {"pending", "requires_action", "succeeded", "failed", "canceled"} <= sdk_statuses()


@pytest.mark.parametrize("status", sorted(spec_statuses() | sdk_statuses()))
def test_every_status_stripe_lists_is_mapped(status: str) -> None:
    """A status a new spec or SDK adds fails here until STATUS_TABLE says what it means."""
    assert STATUS_TABLE.get(status) in get_args(StatusOutcome)
    assert STATUS_TABLE[status] != "unknown"


def test_the_table_holds_nothing_stripe_does_not_list() -> None:
    assert set(STATUS_TABLE) <= spec_statuses() | sdk_statuses()
    assert StripeGateway.STATUS_TABLE is STATUS_TABLE


@pytest.mark.parametrize("status", sorted(STATUS_TABLE))
def test_each_row_is_what_a_webhook_gives(status: str) -> None:
    headers, body = signed_refund_delivery("rf_1", "re_1", status=status)
    [update] = make_gateway().parse_webhook(headers, body)
    assert update.status == STATUS_TABLE[status]


def test_a_reply_with_a_status_the_plugin_cannot_classify_is_held() -> None:
    """R-2.4: an unknown status in a reply raises GatewayError (the kit holds the refund)."""
    gateway = make_gateway()
    refund = {"id": "re_1", "amount": 100, "currency": "usd", "status": "on_its_way"}
    with pytest.raises(GatewayError) as info:
        gateway._result(refund)
    assert not isinstance(info.value, DEFINITE_REFUSALS)


# --- 5xx: held whatever its code ----------------------------------------------------------------


def _api_error(status: int, code: str | None) -> stripe.StripeError:
    """An APIError as the SDK raises it for this answer (Stripe's code in ``exc.error``)."""
    body = server_error_body(status, code)
    return stripe.APIError(
        "boom", http_body=body.decode(), http_status=status, json_body=json.loads(body)
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("code", [None, *sorted(REFUSALS), *sorted(NOT_FOUND), "rate_limit"])
def test_a_5xx_is_held_whatever_its_code(status: int, code: str | None) -> None:
    for make in (_api_error, _as_invalid_request, _as_card_error):
        error = translate(make(status, code))
        assert type(error) is GatewayTimeout, (make.__name__, status, code, error)
        assert not isinstance(error, DEFINITE_REFUSALS)
        assert error.gateway_code == code


def _as_invalid_request(status: int, code: str | None) -> stripe.StripeError:
    # The SDK raises InvalidRequestError for 400/404 only; the class never outranks a 5xx.
    return stripe.InvalidRequestError(  # type: ignore[no-untyped-call]
        "boom", param=None, code=code, http_status=status
    )


def _as_card_error(status: int, code: str | None) -> stripe.StripeError:
    return stripe.CardError("boom", param=None, code=code, http_status=status)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_a_409_with_a_refusal_code_is_held(code: str) -> None:
    """409 (idempotency_key_in_use): the first request may still succeed."""
    body = {"error": {"code": code, "message": "boom", "type": "invalid_request_error"}}
    error = translate(stripe.APIError("boom", http_status=409, json_body=body))
    assert isinstance(error, GatewayTimeout)


def test_a_4xx_refusal_still_releases() -> None:
    error = translate(
        stripe.InvalidRequestError(  # type: ignore[no-untyped-call]
            "boom", param=None, code="charge_already_refunded", http_status=400
        )
    )
    assert isinstance(error, DEFINITE_REFUSALS)


# --- through a kit --------------------------------------------------------------------------------


@pytest.fixture
def stripe_kit(tmp_path: Path) -> Iterator[RefundKit]:
    kit = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}",
        autoload=False,
        plugins=[refundkit_stripe],
        gateways={"stripe": {**WEBHOOK_CONFIG, "retry_delay": 0}},
        clock=WEBHOOK_CONFIG["clock"],
        retry_backoff=0,
    )
    yield kit
    kit.close()


def _refund_or_refusal(kit: RefundKit, payment_id: str, amount: Money) -> Refund | None:
    """The refund a kit made, also when a refusal was raised with it."""
    try:
        return kit.refund(payment_id, amount)
    except GatewayError as exc:
        return exc.refund


@pytest.mark.parametrize(
    ("name", "plays"),
    [("server_error_500_with_a_refusal_code", 1), ("server_error_503_retried", 3)],
)
def test_a_5xx_through_the_kit_leaves_the_refund_unknown_and_held(
    stripe_kit: RefundKit, name: str, plays: int
) -> None:
    """R-2.4 (issue 15): a 500 Stripe will replay for the key (Stripe-Should-Retry: false),
    or a 503 still failing after the SDK's two retries with the same key, may hide an applied
    refund: whatever code the body carries, the refund is unknown and its amount held."""
    case = CONFORMANCE["webhook_succeeded"]
    stripe_kit.record_payment(
        id="pay_1",
        customer_id="cus_1",
        amount=Money(case.amount, case.currency),
        gateway="stripe",
        gateway_payment_id=case.charge,
    )
    with cassette(CASSETTES / "kit" / f"{name}.yaml") as cass:
        refund = _refund_or_refusal(stripe_kit, "pay_1", Money(1000, "USD"))
    assert cass.play_count == plays
    assert refund is not None
    assert refund.status is RefundStatus.UNKNOWN
    assert stripe_kit.quote("pay_1").max_amount == Money(2000, "USD")
    assert stripe_kit.journal(refund.id) == []
    assert [e.type for e in stripe_kit.events()] == []


def test_server_error_body_is_stripes_error_object() -> None:
    body = json.loads(server_error_body(502, "lock_timeout"))
    error = {"code": "lock_timeout", "message": "An unknown error occurred", "type": "api_error"}
    assert body == {"error": error}
    with pytest.raises(ValueError, match="5xx"):
        server_error_body(429)

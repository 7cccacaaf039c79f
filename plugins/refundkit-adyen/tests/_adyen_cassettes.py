"""The Adyen cassettes: what each holds, how tests replay them, and how they were built.

No machine here reaches Adyen, so ``python -m _adyen_cassettes`` (run from this directory, see
cassettes/adyen/README.md) BUILDS the cassettes from the recordings in
``../shared/fixtures/adyen/``: same URL shape (moved from v71 to v72), same headers, same
bodies, with our references, keys and amounts put in. With ``ADYEN_RECORD=1`` and test
credentials in the environment, the tests record them against Adyen's test platform instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import vcr
import yaml  # type: ignore[import-untyped]  # no stubs installed
from refundkit_adyen import scrub, server_error_body

ROOT: Final = Path(__file__).resolve().parents[3]
CASSETTES: Final = ROOT / "cassettes" / "adyen"
#: Where the cassettes are built from (outside the repository; only ``build()`` reads it).
FIXTURES: Final = ROOT.parent / "shared" / "fixtures" / "adyen"
#: Copies of the few fixture files the tests read (the card samples), unchanged.
SOURCES: Final = CASSETTES / "sources"
CHECKOUT_SPEC: Final = CASSETTES / "openapi" / "checkout-v72-refunds.json"
#: Every eventCode of Adyen's Webhooks API (``Webhooks-v1.json``), for the status-table walk.
EVENT_CODES_SPEC: Final = CASSETTES / "openapi" / "webhooks-v1-event-codes.json"

#: Test configuration: a placeholder API key, and a test HMAC key (hex) to sign webhooks.
MERCHANT: Final = "RefundkitTestECOM"
API_KEY: Final = os.environ.get("ADYEN_API_KEY", "ADYEN_API_KEY_REDACTED")
HMAC_KEY: Final = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
WEBHOOK_USERNAME: Final = "refundkit-webhooks"
WEBHOOK_PASSWORD: Final = "test-password-not-secret"
RECORDING: Final = os.environ.get("ADYEN_RECORD") == "1"


def gateway_config() -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "merchant_account": os.environ.get("ADYEN_MERCHANT_ACCOUNT", MERCHANT),
        "platform": "test",
        "hmac_key": HMAC_KEY,
        "webhook_username": WEBHOOK_USERNAME,
        "webhook_password": WEBHOOK_PASSWORD,
    }


@attrs.frozen
class Exchange:
    """One refund request and Adyen's answer."""

    status: int
    #: errorCode for an error answer; None for 201 received.
    error_code: str | None = None
    message: str | None = None
    error_type: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Recorded:
    """One cassette: a payment at Adyen and the refund requests sent for it."""

    name: str
    source: str
    payment_psp: str
    currency: str
    payment_amount: int  # ISO minor units
    refund_amount: int  # ISO minor units
    refund_psp: str
    refund_id: str
    key: str
    exchanges: tuple[Exchange, ...]
    reason: str | None = "requested_by_customer"
    #: False when Adyen's test platform cannot give this answer on demand (a 429, a 5xx, a
    #: key still in progress): re-recording leaves the built cassette alone.
    reproducible: bool = True


_RECEIVED: Final = Exchange(201)
_SPEC_5XX: Final = (
    "openapi/CheckoutService-v72.json: POST /payments/{paymentPspReference}/refunds,"
    " response 500 (ServiceError, example generic-500)"
)
_SPREE_201: Final = "spreeadyen__checkout_v71_refund_201_received__rubyvcr.yml"
_SPREE_PARTIAL: Final = (
    "spreeadyen__checkout_v71_partial_refunds_201_and_401_unauthorized__rubyvcr.yml"
)


def _rec(name: str, source: str, *exchanges: Exchange, **kw: Any) -> Recorded:
    n = len(CASES_SO_FAR)
    fields: dict[str, Any] = {
        "name": name,
        "source": source,
        "payment_psp": f"QFQTPCQ8HXSKG{n:02d}A",
        "currency": "EUR",
        "payment_amount": 5000,
        "refund_amount": 5000,
        "refund_psp": f"RFNDPSP8HXSKG{n:02d}B",
        "refund_id": f"rf_adyen_{name.rsplit('/', 1)[-1]}",
        "key": f"refundkit-rf_adyen_{name.rsplit('/', 1)[-1]}",
        "exchanges": exchanges or (_RECEIVED,),
    }
    fields.update(kw)
    case = Recorded(**fields)
    CASES_SO_FAR.append(case)
    return case


CASES_SO_FAR: list[Recorded] = []

CASES: Final[Mapping[str, Recorded]] = {
    case.name: case
    for case in (
        # conformance scenarios
        _rec("conformance/full_refund", _SPREE_201, currency="USD"),
        _rec("conformance/partial_refund", _SPREE_PARTIAL, refund_amount=1250),
        _rec(
            "conformance/over_refund",
            "spreeadyen__checkout_v71_refund_422_errorCode137_invalid_amount__rubyvcr.yml",
            Exchange(422, "137", "Field 'amount' is not valid.", "validation"),
            refund_amount=5001,
        ),
        _rec("conformance/idempotent_retry", _SPREE_201, _RECEIVED, _RECEIVED, refund_amount=1500),
        _rec("conformance/webhook_succeeded", _SPREE_201, currency="USD", refund_amount=1000),
        _rec("conformance/webhook_failed", _SPREE_201, currency="GBP", refund_amount=1000),
        # errors
        _rec(
            "refund_422_unknown_payment",
            "spreeadyen__checkout_v71_refund_422_errorCode167_unknown_psp_reference__rubyvcr.yml",
            Exchange(422, "167", "Original pspReference required for this operation", "validation"),
        ),
        _rec(
            "refund_401_unauthorized",
            _SPREE_PARTIAL,
            Exchange(401, "000", "HTTP Status Response - Unauthorized", "security"),
        ),
        _rec(
            "refund_403_invalid_merchant",
            "adyenpy__checkout_403_errorCode901_invalid_merchant_account.json",
            Exchange(403, "901", "Invalid Merchant Account", "security"),
        ),
        _rec(
            "refund_704_in_progress",
            "spreeadyen__checkout_v71_refund_422_errorCode137_invalid_amount__rubyvcr.yml",
            Exchange(422, "704", "request already processed or in progress", "validation"),
            reproducible=False,
        ),
        _rec(
            "refund_429_then_received",
            _SPREE_201,
            Exchange(429, "00_500", "too many requests", "internal"),
            _RECEIVED,
            reproducible=False,
        ),
        _rec(
            "refund_500_too_many_requests",
            _SPEC_5XX,
            Exchange(500, "00_500", "too many requests", "internal"),
            reproducible=False,
        ),
        # currencies where Adyen's exponent differs from ISO 4217
        _rec(
            "refund_clp", _SPREE_PARTIAL, currency="CLP", payment_amount=50000, refund_amount=1250
        ),
        _rec(
            "refund_idr",
            _SPREE_PARTIAL,
            currency="IDR",
            payment_amount=5000000,
            refund_amount=125000,
        ),
        # the kit end to end: received, then a resend after a lost answer, then received
        _rec("kit_refund_received", _SPREE_201, refund_amount=2000, reason=None),
        _rec(
            "kit_recover_resend", _SPREE_201, _RECEIVED, _RECEIVED, refund_amount=2000, reason=None
        ),
        # 5xx with the codes of definite refusals: still unknown and held (issue 15)
        *(
            _rec(
                f"kit_{status}_errorcode_{code}",
                f"{_SPEC_5XX}, status {status}; errorCode and message of {example}",
                Exchange(status, code, message, error_type),
                refund_amount=2000,
                reason=None,
                reproducible=False,
            )
            for status, code, message, error_type, example in (
                (500, "000", None, "internal", "generic-401 (HTTP-layer errors)"),
                (502, "010", "Not allowed", "security", "Adyen's error-code list (010)"),
                (503, "901", "Invalid Merchant Account", "security", "generic-403"),
                (
                    500,
                    "137",
                    "Field 'amount' is not valid.",
                    "validation",
                    "spreeadyen__checkout_v71_refund_422_errorCode137_invalid_amount__rubyvcr.yml",
                ),
                (
                    500,
                    "167",
                    "Original pspReference required for this operation",
                    "validation",
                    "spreeadyen__checkout_v71_refund_422_errorCode167_unknown_psp_reference__rubyvcr.yml",
                ),
            )
        ),
    )
}

EXPONENTS: Final[Mapping[str, int]] = {"USD": 2, "EUR": 2, "GBP": 2, "CLP": 2, "IDR": 0}
ISO: Final[Mapping[str, int]] = {"USD": 2, "EUR": 2, "GBP": 2, "CLP": 0, "IDR": 2}


def adyen_value(case: Recorded, amount: int) -> int:
    shift = EXPONENTS[case.currency] - ISO[case.currency]
    return amount * int(10**shift) if shift >= 0 else amount // int(10 ** (-shift))


_REASONS: Final = {"requested_by_customer": "CUSTOMER REQUEST"}


def request_body(case: Recorded) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchantAccount": MERCHANT,
        "amount": {"currency": case.currency, "value": adyen_value(case, case.refund_amount)},
        "reference": case.refund_id,
    }
    if case.reason:
        body["merchantRefundReason"] = _REASONS[case.reason]
    return body


def response_body(case: Recorded, exchange: Exchange) -> dict[str, Any]:
    if exchange.error_code is None:
        return {
            "merchantAccount": MERCHANT,
            "paymentPspReference": case.payment_psp,
            "pspReference": case.refund_psp,
            "reference": case.refund_id,
            "status": "received",
            "amount": {"currency": case.currency, "value": adyen_value(case, case.refund_amount)},
            **({"merchantRefundReason": "CUSTOMER REQUEST"} if case.reason else {}),
        }
    if exchange.status >= 500:
        reply: dict[str, Any] = json.loads(
            server_error_body(
                exchange.status,
                exchange.error_code,
                exchange.message,
                exchange.error_type or "internal",
                case.refund_psp,
            )
        )
        return reply
    return {
        "status": exchange.status,
        "errorCode": exchange.error_code,
        "message": exchange.message,
        "errorType": exchange.error_type,
        "pspReference": case.refund_psp,
    }


_STATUS_TEXT: Final = {
    201: "Created",
    401: "Unauthorized",
    403: "Forbidden",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def interactions(case: Recorded) -> Iterator[dict[str, Any]]:
    url = f"https://checkout-test.adyen.com/v72/payments/{case.payment_psp}/refunds"
    for exchange in case.exchanges:
        yield {
            "request": {
                "body": json.dumps(request_body(case)),
                "headers": {
                    "Content-Type": ["application/json"],
                    "Idempotency-Key": [case.key],
                    "adyen-library-name": ["adyen-python-api-library"],
                    "adyen-library-version": ["16.0.0"],
                    "x-api-key": ["REDACTED"],
                },
                "method": "POST",
                "uri": url,
            },
            "response": {
                "body": {"string": json.dumps(response_body(case, exchange))},
                "headers": {
                    "Content-Type": ["application/json;charset=UTF-8"],
                    "Date": ["Sun, 22 Nov 2026 10:00:00 GMT"],
                    "pspReference": [case.refund_psp],
                    **{k: [v] for k, v in exchange.headers.items()},
                },
                "status": {"code": exchange.status, "message": _STATUS_TEXT[exchange.status]},
            },
        }


def path(case: Recorded) -> Path:
    return CASSETTES / f"{case.name}.yaml"


# --- replay ------------------------------------------------------------------------------------


def _same_request(r1: Any, r2: Any) -> None:
    """The request sent must be the one recorded: same JSON body and idempotency key."""
    assert json.loads(r1.body or b"{}") == json.loads(r2.body or b"{}"), (r1.body, r2.body)
    assert r1.headers.get("Idempotency-Key") == r2.headers.get("Idempotency-Key")


def _same_but_reference(r1: Any, r2: Any) -> None:
    """For the kit's own refunds (random ids): the same body but for ``reference``, and the
    idempotency key derived from that reference."""
    sent, recorded = json.loads(r1.body or b"{}"), json.loads(r2.body or b"{}")
    reference = sent.pop("reference", None)
    recorded.pop("reference", None)
    assert sent == recorded, (sent, recorded)
    assert r1.headers.get("Idempotency-Key") == f"refundkit-{reference}"


def _scrub_request(request: Any) -> Any:
    # vcrpy applies this before matching too: keep the body's type.
    if isinstance(request.body, bytes):
        request.body = scrub(request.body.decode()).encode()
    elif request.body:
        request.body = scrub(request.body)
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    # vcrpy applies this when a cassette loads too: keep the body's type.
    body = response["body"].get("string")
    if isinstance(body, bytes):
        response["body"]["string"] = scrub(body.decode()).encode()
    elif body:
        response["body"]["string"] = scrub(body)
    response["headers"].pop("Set-Cookie", None)
    return response


def use(case: Recorded, *, kit: bool = False) -> Any:
    """``with use(case):`` replays the case's cassette; while re-recording (``ADYEN_RECORD=1``)
    it records it, unless the test platform cannot reproduce it (``case.reproducible`` is
    False: a 429, a 5xx, a key still in progress), which is left alone and replayed."""
    mode = "all" if RECORDING and case.reproducible else "none"
    return adyen_vcr(kit=kit).use_cassette(str(path(case)), record_mode=mode)


def adyen_vcr(*, kit: bool = False) -> vcr.VCR:
    """vcrpy as the Adyen tests use it: replay only, every request matched with its body
    (``kit``: the kit picks the refund id, so only the rest of the body must match).
    Use ``use(case)`` to open a case's cassette (it knows which may be re-recorded)."""
    v = vcr.VCR(
        record_mode="none",
        decode_compressed_response=True,
        # secrets and card data never reach a recording.
        filter_headers=[("x-api-key", "REDACTED"), ("authorization", "REDACTED")],
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        match_on=["method", "scheme", "host", "path", "adyen_kit" if kit else "adyen_request"],
    )
    v.register_matcher("adyen_request", _same_request)
    v.register_matcher("adyen_kit", _same_but_reference)
    return v


# --- building --------------------------------------------------------------------------------


def _spec_subset() -> dict[str, Any]:
    """The parts of Checkout v72 that refund replies use, with every schema they refer to."""
    spec = json.loads((FIXTURES / "openapi" / "CheckoutService-v72.json").read_text())
    schemas = spec["components"]["schemas"]
    keep: dict[str, Any] = {}
    todo = ["PaymentRefundResponse", "ServiceError"]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = schemas[name]
        text = json.dumps(schemas[name])
        todo += [ref.split('"')[0] for ref in text.split("#/components/schemas/")[1:]]
    return {
        "source": "CheckoutService-v72.json (Adyen's OpenAPI), components.schemas, subset",
        "openapi": spec["openapi"],
        "components": {"schemas": keep},
    }


def _header(case: Recorded) -> str:
    kept = (
        ""
        if case.reproducible
        else ("# Not reproducible on Adyen's test platform: re-recording leaves this file alone.\n")
    )
    return (
        "# BUILT, not recorded (no machine here reaches Adyen); see cassettes/adyen/README.md.\n"
        f"# Source: ../shared/fixtures/adyen/{case.source}\n"
        "# Changed: API v71 -> v72 URL, our merchant account, pspReferences, reference,\n"
        "# Idempotency-Key and amounts; replies per Adyen's Checkout v72 OpenAPI schema.\n" + kept
    )


def _event_codes() -> dict[str, Any]:
    """The eventCode enums of every schema of Webhooks-v1.json, and its webhook names."""
    spec = json.loads((FIXTURES / "openapi" / "Webhooks-v1.json").read_text())
    codes: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            event = node.get("eventCode")
            if isinstance(event, dict) and isinstance(event.get("enum"), list):
                codes.update(event["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec["components"]["schemas"])
    return {
        "source": "Webhooks-v1.json (Adyen's OpenAPI): the union of every eventCode enum in"
        " components.schemas, and the names of its webhooks",
        "eventCodes": sorted(codes),
        "webhooks": sorted(name.strip("/") for name in spec["webhooks"]),
    }


def build() -> None:
    for case in CASES.values():
        target = path(case)
        target.parent.mkdir(parents=True, exist_ok=True)
        doc = {"interactions": list(interactions(case)), "version": 1}
        target.write_text(_header(case) + yaml.safe_dump(doc, sort_keys=False, width=100))
    CHECKOUT_SPEC.parent.mkdir(parents=True, exist_ok=True)
    CHECKOUT_SPEC.write_text(json.dumps(_spec_subset(), indent=1, sort_keys=True) + "\n")
    EVENT_CODES_SPEC.write_text(json.dumps(_event_codes(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    build()
    sys.stdout.write(f"wrote {len(CASES)} cassettes under {CASSETTES}\n")

"""Builds every cassette under ``cassettes/stripe/`` from Stripe's own shapes.

No machine that works on refundkit reaches Stripe, so these cassettes are built, not recorded:
the refund and charge bodies start from Stripe's example objects (``fixtures3.json`` of
stripe/openapi), the error bodies from real recordings (saleor's 404 ``resource_missing``,
pay-rails' 401) and Stripe's ``error`` schema; ids, amounts, currencies, metadata and
timestamps are refundkit's. ``python -m uv run python plugins/refundkit-stripe/tests/
_stripe_cassettes.py`` rewrites them; a test checks that the files equal what this builds.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs
import yaml  # type: ignore[import-untyped]
from refundkit_stripe import server_error_body

ROOT: Final = Path(__file__).resolve().parents[3]
#: ``$REFUNDKIT_STRIPE_CASSETTES`` replays another set (the recorder's dry run uses it).
CASSETTES: Final = Path(
    os.environ.get("REFUNDKIT_STRIPE_CASSETTES") or ROOT / "cassettes" / "stripe"
)
#: The parts of ../shared/fixtures/stripe the builder and the schema test use, copied into the
#: repository (tests never read outside it): fixtures/README.md says what and from where.
FIXTURES: Final = Path(__file__).resolve().parent / "fixtures"
API: Final = "https://api.stripe.com"
STRIPE_VERSION: Final = "2026-10-28.endive"  # what stripe 16.1.0 sends
#: When the built charges were made and the refunds sent (2026-11-20 09:00 UTC).
CREATED: Final = int(datetime(2026, 11, 20, 9, 0, tzinfo=UTC).timestamp())
#: When the built webhook events were sent; the tests' clock is pinned to it.
WEBHOOK_AT: Final = CREATED + 3600
#: The webhook signing secret the tests sign built events with (a placeholder, not Stripe's).
WEBHOOK_SECRET: Final = "whsec_refundkit_tests"
HEADER: Final = (
    "# Built for refundkit from Stripe's shapes, not recorded: cassettes/stripe/README.md\n"
)


@attrs.frozen
class Case:
    """One built payment and the refund sent for it."""

    name: str
    currency: str
    amount: int  # Stripe's minor units (here equal to ISO's)
    refund_amount: int

    @property
    def token(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def charge(self) -> str:
        return f"ch_rk{self.token}"

    @property
    def refund_id(self) -> str:
        return f"rf_{self.name}"

    @property
    def key(self) -> str:
        return f"refundkit-rf_{self.name}"

    @property
    def gateway_refund_id(self) -> str:
        return f"re_rk{self.token}"


CONFORMANCE: Final[Mapping[str, Case]] = {
    c.name: c
    for c in (
        Case("full_refund", "USD", 5000, 5000),
        Case("partial_refund", "EUR", 5000, 1250),
        Case("over_refund", "JPY", 5000, 5001),
        Case("idempotent_retry", "USD", 5000, 1500),
        Case("unknown_then_lookup", "KWD", 25000, 10000),
        Case("webhook_succeeded", "USD", 3000, 1000),
        Case("webhook_failed", "GBP", 3000, 1000),
        Case("card_masking", "USD", 1000, 1000),
    )
}

EXTRA: Final[Mapping[str, Case]] = {
    c.name: c
    for c in (
        Case("two_partial_refunds", "USD", 5000, 3000),  # then 2000, on a payment intent
        Case("charge_already_refunded", "USD", 5000, 5000),
        Case("charge_disputed", "USD", 5000, 5000),
        Case("unknown_charge", "USD", 5000, 5000),
        Case("bad_key", "USD", 5000, 5000),
        Case("lock_timeout_then_success", "USD", 5000, 2000),
        Case("server_error_then_success", "USD", 5000, 2000),
    )
}

#: The payment intent of ``two_partial_refunds`` and its second refund.
INTENT: Final = "pi_rkTwoPartialRefunds"
SECOND_REFUND: Final = ("rf_two_partial_refunds_2", "re_rkTwoPartialRefundsTwo", 2000)


def _example(resource: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / "openapi" / "fixtures3.subset.json").read_text())
    return copy.deepcopy(data["resources"][resource])


def refund_body(
    case: Case,
    status: str = "succeeded",
    *,
    refund_id: str | None = None,
    gateway_refund_id: str | None = None,
    amount: int | None = None,
    payment_intent: str | None = None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """fixtures3.json ``refund`` with refundkit's ids, amount, currency and metadata."""
    body = _example("refund")
    body.update(
        id=gateway_refund_id or case.gateway_refund_id,
        amount=case.refund_amount if amount is None else amount,
        charge=case.charge,
        created=CREATED,
        currency=case.currency.lower(),
        metadata={"refundkit_refund_id": refund_id or case.refund_id},
        payment_intent=payment_intent,
        reason="requested_by_customer",
        status=status,
    )
    if status == "pending":
        body["pending_reason"] = "processing"
        body["destination_details"]["card"]["type"] = "pending"
    if failure_reason:
        body["failure_reason"] = failure_reason
    return body


def charge_body(
    case: Case, refunded: int = 0, *, payment_intent: str | None = None
) -> dict[str, Any]:
    """fixtures3.json ``charge``, captured, with refundkit's id, amount and refunded total.

    ``source`` (a legacy Sources object with placeholder values) and ``refunds`` (not
    returned unless expanded since API version 2022-11-15) are dropped, so are the receipt
    URL and the example's placeholders (``outcome.type: "type"``, an empty ``shipping``, a
    Link wallet and an installment plan on a plain card charge); the card stays Stripe's
    example (visa 4242, 8/2030)."""
    body = _example("charge")
    del body["source"], body["refunds"]
    body.update(
        id=case.charge,
        amount=case.amount,
        amount_captured=case.amount,
        amount_refunded=refunded,
        captured=True,
        created=CREATED - 86400,
        currency=case.currency.lower(),
        description=None,
        payment_intent=payment_intent,
        payment_method=f"pm_rk{case.token}",
        receipt_url=None,
        refunded=refunded == case.amount,
        shipping=None,
        transfer_data=None,
    )
    body["billing_details"]["name"] = None
    body["outcome"].update(
        network_status="approved_by_network", seller_message="Payment complete.", type="authorized"
    )
    card = body["payment_method_details"]["card"]
    card.update(amount_authorized=case.amount, installments=None, wallet=None)
    card["overcapture"]["maximum_amount_capturable"] = case.amount
    return body


def intent_body(case: Case, refunded: int) -> dict[str, Any]:
    """fixtures3.json ``payment_intent``, succeeded, its ``latest_charge`` expanded.

    The example's placeholders and what contradicts a succeeded intent are replaced:
    ``next_action: {"type": "type"}``, ``obj_123`` ids (payment method configuration, transfer
    destination), a ``canceled_at``, a ``last_payment_error``, ``processing``, an empty
    ``shipping``; the client secret is dropped."""
    body = _example("payment_intent")
    body.update(
        id=INTENT,
        amount=case.amount,
        amount_received=case.amount,
        canceled_at=None,
        client_secret=None,
        created=CREATED - 86400,
        currency=case.currency.lower(),
        last_payment_error=None,
        latest_charge=charge_body(case, refunded, payment_intent=INTENT),
        managed_payments={"enabled": False},
        next_action=None,
        payment_method=f"pm_rk{case.token}",
        payment_method_configuration_details=None,
        processing=None,
        shipping=None,
        status="succeeded",
        transfer_data=None,
    )
    return body


def error_body(code: str | None, message: str, *, type_: str = "invalid_request_error",
               param: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Stripe's ``error`` object (the shape of saleor's recorded 404)."""
    error: dict[str, Any] = {"message": message, "type": type_}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return {"error": error}


def list_body(case: Case, refunds: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": refunds, "has_more": False, "url": "/v1/refunds"}


# --- interactions ------------------------------------------------------------------------------


def _form(params: list[tuple[str, str]]) -> str:
    return urllib.parse.urlencode(params)


def create_refund(
    case: Case,
    status: int,
    body: Mapping[str, Any],
    *,
    refund_id: str | None = None,
    amount: int | None = None,
    by_intent: bool = False,
    replayed: bool = False,
    kit: bool = False,
) -> dict[str, Any]:
    """POST /v1/refunds as StripeGateway.refund sends it (form body, Idempotency-Key header).

    ``kit=True``: the refund id and key are the kit's (random), so the request keeps no body
    or key to match on."""
    payment = ("payment_intent", INTENT) if by_intent else ("charge", case.charge)
    request: dict[str, Any] = {
        "method": "POST",
        "uri": f"{API}/v1/refunds",
        "body": None,
        "headers": {},
    }
    key = f"refundkit-{refund_id}" if refund_id else case.key
    if not kit:
        request["body"] = _form(
            [
                payment,
                ("amount", str(case.refund_amount if amount is None else amount)),
                ("metadata[refundkit_refund_id]", refund_id or case.refund_id),
                ("reason", "requested_by_customer"),
            ]
        )
        request["headers"] = {
            "Content-Type": ["application/x-www-form-urlencoded"],
            "Idempotency-Key": [key],
        }
    headers = {"Idempotency-Key": [key]} if not kit else {}
    if replayed:
        headers["Idempotent-Replayed"] = ["true"]
    return {"request": request, "response": _response(status, body, headers)}


def get(path: str, body: Mapping[str, Any], status: int = 200) -> dict[str, Any]:
    request: dict[str, Any] = {"method": "GET", "uri": f"{API}{path}", "body": None, "headers": {}}
    return {"request": request, "response": _response(status, body, {})}


_REASONS: Final = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                   429: "Too Many Requests", 500: "Internal Server Error",
                   503: "Service Unavailable"}  # fmt: skip


def _response(status: int, body: Mapping[str, Any], extra: dict[str, list[str]]) -> dict[str, Any]:
    headers = {
        "Content-Type": ["application/json"],
        "Request-Id": ["req_rkBuilt"],
        "Stripe-Version": [STRIPE_VERSION],
        **extra,
    }
    if status == 401:
        headers["Www-Authenticate"] = ['Bearer realm="Stripe"']
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    return {
        "status": {"code": status, "message": _REASONS[status]},
        "headers": headers,
        "body": {"string": text},
    }


def _charge_path(case: Case) -> str:
    return f"/v1/charges/{case.charge}"


def _refunds_query(case: Case) -> str:
    return f"/v1/refunds?charge={case.charge}&limit=100"


def conformance_interactions() -> dict[str, list[dict[str, Any]]]:
    c = CONFORMANCE
    ok = {name: refund_body(case) for name, case in c.items()}
    retry = c["idempotent_retry"]
    lookup = c["unknown_then_lookup"]
    partial = c["partial_refund"]
    over = c["over_refund"]
    return {
        "full_refund": [create_refund(c["full_refund"], 200, ok["full_refund"])],
        "partial_refund": [
            create_refund(partial, 200, ok["partial_refund"]),
            get(_charge_path(partial), charge_body(partial, partial.refund_amount)),
        ],
        "over_refund": [
            create_refund(
                over,
                400,
                error_body(
                    "amount_too_large",
                    "Refund amount (¥5,001) is greater than unrefunded amount on charge (¥5,000)",
                    param="amount",
                ),
            )
        ],
        "idempotent_retry": [
            create_refund(retry, 200, ok["idempotent_retry"]),
            create_refund(retry, 200, ok["idempotent_retry"], replayed=True),
            get(_charge_path(retry), charge_body(retry, retry.refund_amount)),
        ],
        "unknown_then_lookup": [
            create_refund(lookup, 200, ok["unknown_then_lookup"]),
            get(_refunds_query(lookup), list_body(lookup, [ok["unknown_then_lookup"]])),
            get(_refunds_query(lookup), list_body(lookup, [ok["unknown_then_lookup"]])),
        ],
        "webhook_succeeded": [
            create_refund(
                c["webhook_succeeded"], 200, refund_body(c["webhook_succeeded"], "pending")
            )
        ],
        "webhook_failed": [create_refund(c["webhook_failed"], 200, ok["webhook_failed"])],
        "card_masking": [get(_charge_path(c["card_masking"]), charge_body(c["card_masking"]))],
    }


def extra_interactions() -> dict[str, list[dict[str, Any]]]:
    e = EXTRA
    two = e["two_partial_refunds"]
    second_id, second_gateway_id, second_amount = SECOND_REFUND
    lock = e["lock_timeout_then_success"]
    server = e["server_error_then_success"]
    return {
        "two_partial_refunds": [
            create_refund(two, 200, refund_body(two, payment_intent=INTENT), by_intent=True),
            create_refund(
                two,
                200,
                refund_body(
                    two,
                    refund_id=second_id,
                    gateway_refund_id=second_gateway_id,
                    amount=second_amount,
                    payment_intent=INTENT,
                ),
                refund_id=second_id,
                amount=second_amount,
                by_intent=True,
            ),
            get(
                f"/v1/payment_intents/{INTENT}?expand[0]=latest_charge",
                intent_body(two, two.amount),
            ),
        ],
        "charge_already_refunded": [
            create_refund(
                e["charge_already_refunded"],
                400,
                error_body(
                    "charge_already_refunded",
                    f"Charge {e['charge_already_refunded'].charge} has already been refunded.",
                ),
            )
        ],
        "charge_disputed": [
            create_refund(
                e["charge_disputed"],
                400,
                error_body(
                    "charge_disputed",
                    f"Charge {e['charge_disputed'].charge} has been charged back; cannot issue"
                    " a refund.",
                ),
            )
        ],
        "unknown_charge": [
            create_refund(
                e["unknown_charge"],
                404,
                error_body(
                    "resource_missing",
                    f"No such charge: '{e['unknown_charge'].charge}'",
                    param="charge",
                ),
            )
        ],
        "bad_key": [
            create_refund(
                e["bad_key"],
                401,
                error_body(None, "Invalid API Key provided: sk_test_****************ZZZZ"),
            )
        ],
        "lock_timeout_then_success": [
            create_refund(
                lock,
                429,
                error_body(
                    "lock_timeout",
                    "This object cannot be accessed right now because another API request or"
                    " Stripe process is currently accessing it.",
                ),
            ),
            create_refund(lock, 200, refund_body(lock)),
        ],
        "server_error_then_success": [
            create_refund(
                server,
                500,
                error_body(None, "An unknown error occurred", type_="api_error"),
            ),
            create_refund(server, 200, refund_body(server)),
        ],
    }


def _server_error(status: int, code: str, message: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(server_error_body(status, code, message))
    return body


def kit_interactions() -> dict[str, list[dict[str, Any]]]:
    """The webhook scenarios' refunds as a kit sends them (its refund id and key are random),
    and 5xx answers whose body carries the code of a refusal (issue 15: still held)."""
    ok = CONFORMANCE["webhook_succeeded"]
    bad = CONFORMANCE["webhook_failed"]
    once = create_refund(
        ok,
        500,
        _server_error(500, "charge_already_refunded", "An unknown error occurred"),
        kit=True,
    )
    # Stripe replays a 500 for the same key, so it tells the SDK not to retry it.
    once["response"]["headers"]["Stripe-Should-Retry"] = ["false"]
    retried = create_refund(
        ok, 503, _server_error(503, "resource_missing", "Service unavailable"), kit=True
    )
    return {
        "pending_then_webhook": [create_refund(ok, 200, refund_body(ok, "pending"), kit=True)],
        "succeeded_then_webhook": [create_refund(bad, 200, refund_body(bad), kit=True)],
        "server_error_500_with_a_refusal_code": [once],
        # The SDK retries a 503 twice with the same key (max_network_retries 2).
        "server_error_503_retried": [retried, copy.deepcopy(retried), copy.deepcopy(retried)],
    }


def webhook_events() -> dict[str, dict[str, Any]]:
    """Event bodies (unsigned: the tests sign them with ``WEBHOOK_SECRET`` at ``WEBHOOK_AT``)."""
    ok = CONFORMANCE["webhook_succeeded"]
    bad = CONFORMANCE["webhook_failed"]
    return {
        "refund_updated_succeeded": _event(
            "evt_rkRefundUpdatedSucceeded",
            "refund.updated",
            refund_body(ok, "succeeded"),
            {"status": "pending"},
        ),
        "refund_failed_after_success": _event(
            "evt_rkRefundFailedAfterSuccess",
            "refund.failed",
            refund_body(bad, "failed", failure_reason="expired_or_canceled_card"),
            {"status": "succeeded", "failure_reason": None},
        ),
        # The pending refund of webhook_succeeded succeeded, then failed; this failure is
        # delivered before refund_updated_succeeded (issue 15).
        "refund_failed_before_its_success": _event(
            "evt_rkRefundFailedBeforeItsSuccess",
            "refund.failed",
            refund_body(ok, "failed", failure_reason="declined"),
            {"status": "succeeded", "failure_reason": None},
        ),
    }


def _event(id_: str, type_: str, obj: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": id_,
        "object": "event",
        "api_version": STRIPE_VERSION,
        "created": WEBHOOK_AT,
        "data": {"object": obj, "previous_attributes": previous},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


_FIXTURES: Final = "../shared/fixtures/stripe/"
_SPEC: Final = _FIXTURES + "openapi/spec3.2023-09-12.yaml"
_BODIES: Final = {
    "refund": _FIXTURES + "openapi/fixtures3.json (resources.refund)",
    "list": _FIXTURES + "openapi/fixtures3.json (resources.refund, in a list)",
    "charge": _FIXTURES + "openapi/fixtures3.json (resources.charge)",
    "payment_intent": _FIXTURES
    + "openapi/fixtures3.json (resources.payment_intent, resources.charge)",
    401: _FIXTURES + "payrails__401_invalid_api_key__rubyvcr_MANGLED_HEADERS.yml (the body)",
    "error": _FIXTURES + "saleor__unknown_payment_intent_404_resource_missing__vcrpy.yaml"
    " (the error's shape)",
}
#: Answers Stripe's test mode cannot give on demand: record_stripe.py leaves them as built.
NOT_REPRODUCIBLE: Final = frozenset(
    {
        "errors/lock_timeout_then_success.yaml",
        "errors/server_error_then_success.yaml",
        "kit/server_error_500_with_a_refusal_code.yaml",
        "kit/server_error_503_retried.yaml",
    }
)


def _template(path: str) -> str:
    spec = {"/v1/charges/": "/v1/charges/{charge}", "/v1/payment_intents/":
            "/v1/payment_intents/{intent}"}  # fmt: skip
    return next((t for prefix, t in spec.items() if path.startswith(prefix)), path)


def sources(interactions: list[dict[str, Any]]) -> list[str]:
    """The ``Source:`` lines of a built cassette: where each reply body's shape comes from, and
    the operation of Stripe's OpenAPI spec each exchange follows."""
    found: list[str] = []
    for interaction in interactions:
        request, response = interaction["request"], interaction["response"]
        status = response["status"]["code"]
        body = json.loads(response["body"]["string"])
        kind = "error" if "error" in body else body.get("object")
        shape = _BODIES[401] if status == 401 else _BODIES[kind]
        path = urllib.parse.urlsplit(request["uri"]).path
        operation = f"{_SPEC}: {request['method']} {_template(path)} -> {status}"
        found += [line for line in (shape, operation) if line not in found]
    return found


def _header(relative: str, interactions: list[dict[str, Any]]) -> str:
    lines = "".join(f"# Source: {line}\n" for line in sources(interactions))
    if relative in NOT_REPRODUCIBLE:
        lines += "# Not reproducible in Stripe's test mode: record_stripe.py leaves it as built.\n"
    return HEADER + lines


def build() -> dict[str, str]:
    """Relative path under ``cassettes/stripe/`` → file text."""
    files: dict[str, str] = {}
    groups = (
        ("conformance", conformance_interactions()),
        ("errors", extra_interactions()),
        ("kit", kit_interactions()),
    )
    for folder, cassettes in groups:
        for name, interactions in cassettes.items():
            text = yaml.safe_dump(
                {"interactions": interactions, "version": 1}, sort_keys=False, allow_unicode=True
            )
            relative = f"{folder}/{name}.yaml"
            files[relative] = _header(relative, interactions) + text
    for name, event in webhook_events().items():
        files[f"webhooks/{name}.json"] = json.dumps(event, indent=2, sort_keys=True) + "\n"
    return files


def main() -> None:
    for relative, text in build().items():
        path = CASSETTES / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path.relative_to(ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()

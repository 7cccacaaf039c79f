"""Build ``cassettes/braintree/`` from the real recordings in ``../shared/fixtures/braintree/``.

No machine here reaches Braintree, so the cassettes are built, not recorded: each response
body is a real recorded body (a sale, a credit, an error) with its ids, amounts, statuses and
order ids changed for the scenario, and personal data scrubbed. The requests are the ones the
plugin really makes: this script runs ``BraintreeGateway`` against a canned HTTP strategy and
writes what it sent next to the canned reply. Usage (from the repository root)::

    python3 -m uv run python plugins/refundkit-braintree/tests/_braintree_build_cassettes.py \
        [--fixtures ../shared/fixtures/braintree]

``cassettes/braintree/README.md`` lists each cassette and the fixture it comes from.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import yaml  # type: ignore[import-untyped]

from refundkit import GatewayRefundRequest, Money, RefundkitError

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent.parent.parent
CASSETTES: Final = ROOT / "cassettes" / "braintree"
sys.path.insert(0, str(HERE))

from _braintree_support import (  # noqa: E402
    CONFORMANCE,
    EXTRA,
    MERCHANT_ID,
    TEST_CONFIG,
    Plan,
)
from refundkit_braintree import BraintreeGateway  # noqa: E402
from refundkit_braintree import scrub as scrub_text  # noqa: E402

SALE_TEMPLATE: Final = "solidus__partial_refund_20_of_40_settled_card__rubyvcr.yml"
PAYPAL_TEMPLATE: Final = "spreevzero__partial_refund_paypal_account__rubyvcr.yml"
ERROR_TEMPLATE: Final = "spreevzero__refund_unsettled_422_91506__rubyvcr.yml"
AUTH_TEMPLATE: Final = "spreevzero__401_invalid_credentials_client_token__rubyvcr.yml"
NOT_FOUND_TEMPLATE: Final = "saleor__refund_unknown_txn_404__vcrpy.yaml"

#: Cassettes a sandbox account cannot reproduce: a 429, a 5xx, a declined refund
#: authorization, a reply lost to a timeout, a credit in a status set by hand. Re-recording
#: (record_braintree.py) leaves them alone, and each says so in its header.
NOT_REPRODUCIBLE: Final = frozenset(
    {
        "rate_limited_429_then_success",
        "processor_declined_refund",
        "conformance/unknown_then_lookup",
        "kit_timeout_then_recover",
        "server_error_500_with_91506",
        "service_unavailable_503",
        "credit_settlement_confirmed",
        "credit_settlement_failed",
        "credit_authorizing",
        "credit_authorization_expired",
    }
)

# --- reading the fixtures ------------------------------------------------------------------


#: A SafeLoader that reads Ruby VCR's ``!binary`` (base64) bodies as bytes.
_Loader: Any = type("_Loader", (yaml.SafeLoader,), {})
_Loader.add_constructor(
    "!binary", lambda loader, node: base64.b64decode(loader.construct_scalar(node))
)


def _bodies(path: Path) -> list[tuple[int, bytes]]:
    """(status, decoded body) of every interaction of a Ruby VCR or vcrpy cassette."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    out = []
    for item in data.get("http_interactions") or data.get("interactions"):
        response = item["response"]
        body = response["body"]
        raw: Any = (
            body.get("string", body.get("base64_string", b"")) if isinstance(body, dict) else body
        )
        if "base64_string" in body:
            raw = base64.b64decode(raw)
        if isinstance(raw, str):
            raw = raw.encode("latin-1")
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        out.append((int(response["status"]["code"]), raw))
    return out


def _xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)


# --- scrubbing and adapting ----------------------------------------------------------------

#: Elements whose children are personal data: emptied (nil) whatever they held.
_PERSONAL: Final = ("customer", "billing", "shipping")
_PLACEHOLDERS: Final = {
    "payer-email": "buyer@example.com",
    "payer-id": "PAYERID0000",
    "payment-id": "PAYID-REFUNDKIT-0000",
    "capture-id": "CAPTURE-REFUNDKIT-0",
    "refund-id": None,
    "debug-id": "debug0000000",
    "user": "refundkit",
    "payer-first-name": None,
    "payer-last-name": None,
    "cardholder-name": None,
    "network-transaction-id": None,
    "global-id": None,
    "refunded-transaction-global-id": None,
    "authorized-transaction-global-id": None,
    "settlement-batch-id": None,
    "unique-number-identifier": None,
}


def _nil(element: ET.Element) -> None:
    element.clear()
    element.set("nil", "true")


def scrub(root: ET.Element) -> ET.Element:
    """Remove personal data and recorded ids that identify a real account."""
    for name in _PERSONAL:
        for parent in root.iter(name):
            for child in parent:
                _nil(child)
    for element in root.iter():
        if element.tag in _PLACEHOLDERS:
            value = _PLACEHOLDERS[element.tag]
            if value is None:
                _nil(element)
            else:
                element.text = value
        if element.tag == "merchant-account-id":
            element.text = "refundkit_usd"
    for array in root.iter("refund-global-ids"):
        array.clear()
        array.set("type", "array")
    return root


def _set(root: ET.Element, tag: str, text: str | None) -> None:
    element = root.find(tag)
    assert element is not None, tag
    if text is None:
        _nil(element)
    else:
        element.attrib.pop("nil", None)
        element.text = text


def transaction(
    template: ET.Element,
    *,
    id: str,
    amount: str,
    status: str,
    order_id: str | None = None,
    refunded_transaction_id: str | None = None,
    refund_ids: tuple[str, ...] = (),
    processor: tuple[str, str] | None = None,
) -> ET.Element:
    """A copy of ``template`` (a scrubbed recorded transaction) adapted to a scenario."""
    txn = scrub(ET.fromstring(ET.tostring(template)))
    _set(txn, "id", id)
    _set(txn, "amount", amount)
    _set(txn, "status", status)
    _set(txn, "order-id", order_id)
    _set(txn, "refunded-transaction-id", refunded_transaction_id)
    ids = txn.find("refund-ids")
    assert ids is not None
    ids.clear()
    ids.set("type", "array")
    for refund_id in refund_ids:
        ET.SubElement(ids, "item").text = refund_id
    for event in txn.iter("status-event"):
        amount_el = event.find("amount")
        if amount_el is not None:
            amount_el.text = amount
    if processor is not None:
        _set(txn, "processor-response-code", processor[0])
        _set(txn, "processor-response-text", processor[1])
        if txn.find("processor-response-type") is not None:
            _set(txn, "processor-response-type", "hard_declined")
    return txn


def error_response(
    template: ET.Element,
    code: str,
    message: str,
    params: dict[str, str],
    sale_id: str,
    txn: ET.Element | None = None,
) -> ET.Element:
    """The recorded 422 ``api-error-response`` with another error code, message and params."""
    root = ET.fromstring(ET.tostring(template))
    errors = root.find("errors/transaction/errors")
    assert errors is not None
    errors.clear()
    errors.set("type", "array")
    if code:
        error = ET.SubElement(errors, "error")
        ET.SubElement(error, "code").text = code
        ET.SubElement(error, "attribute", {"type": "symbol"}).text = "base"
        ET.SubElement(error, "message").text = message
    _set(root, "message", message)
    sent = root.find("params/transaction")
    assert sent is not None
    sent.clear()
    for key, value in params.items():
        ET.SubElement(sent, key).text = value
    merchant = root.find("params/merchant-id")
    assert merchant is not None
    merchant.text = MERCHANT_ID
    _set(root, "params/id", sale_id)
    if txn is not None:
        root.append(txn)
    return root


def search_ids(*ids: str) -> ET.Element:
    """``/transactions/advanced_search_ids`` reply (shape: braintree SDK transaction_gateway)."""
    root = ET.Element("search-results")
    ET.SubElement(root, "page-size", {"type": "integer"}).text = "50"
    array = ET.SubElement(root, "ids", {"type": "array"})
    for id_ in ids:
        ET.SubElement(array, "item").text = id_
    return root


def search_page(*txns: ET.Element) -> ET.Element:
    """``/transactions/advanced_search`` reply: a ``credit-card-transactions`` collection."""
    root = ET.Element("credit-card-transactions", {"type": "collection"})
    ET.SubElement(root, "current-page-number", {"type": "integer"}).text = "1"
    ET.SubElement(root, "page-size", {"type": "integer"}).text = "50"
    ET.SubElement(root, "total-items", {"type": "integer"}).text = str(len(txns))
    root.extend(txns)
    return root


def xml_bytes(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(ET.tostring(root, encoding="utf-8"))


# --- running the plugin against canned replies ---------------------------------------------


Reply = tuple[int, bytes]


@attrs.define
class _Recorder:
    replies: list[Reply]
    sent: list[tuple[str, str, bytes, Reply]] = attrs.field(factory=list)


_CURRENT: list[_Recorder] = []


class CannedStrategy:
    """A braintree ``http_strategy`` answering from ``_CURRENT[0]`` and noting each request."""

    def __init__(self, config: Any, environment: Any) -> None:
        self.config = config

    def http_do(self, verb: str, url: str, headers: Any, body: Any) -> list[Any]:
        recorder = _CURRENT[0]
        reply = recorder.replies.pop(0)
        data = body.encode() if isinstance(body, str) else (body or b"")
        recorder.sent.append((verb, url, data, reply))
        return [reply[0], reply[1].decode("utf-8")]

    def handle_exception(self, exc: Exception) -> None:
        raise exc


def run(replies: list[Reply], action: Callable[[BraintreeGateway], object]) -> _Recorder:
    recorder = _Recorder(list(replies))
    _CURRENT[:] = [recorder]
    gateway = BraintreeGateway({**TEST_CONFIG, "http_strategy": CannedStrategy})
    with contextlib.suppress(RefundkitError):  # refusals are what some cassettes record
        action(gateway)
    assert not recorder.replies, f"unused replies: {len(recorder.replies)}"
    return recorder


#: A SafeDumper writing multi-line bodies as literal blocks (a cassette reads like its XML).
_Dumper: Any = type("_Dumper", (yaml.SafeDumper,), {})


def _str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

_REASONS: Final = {
    200: "OK",
    201: "Created",
    401: "Unauthorized",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def write(name: str, source: str, recorder: _Recorder, root: Path = CASSETTES) -> Path:
    interactions = []
    for verb, url, body, (status, reply) in recorder.sent:
        interactions.append(
            {
                "request": {
                    "body": body.decode("utf-8") if body else None,
                    "headers": {"Content-Type": ["application/xml"]} if body else {},
                    "method": verb.upper(),
                    "uri": url,
                },
                "response": {
                    "status": {"code": status, "message": _REASONS[status]},
                    "headers": {"Content-Type": ["application/xml; charset=utf-8"]},
                    # The plugin's scrub() as a last pass over what the element scrub above left.
                    "body": {"string": scrub_text(reply.decode("utf-8"))},
                },
            }
        )
    text = yaml.dump(
        {"interactions": interactions, "version": 1}, Dumper=_Dumper, sort_keys=False, width=100
    )
    if name in NOT_REPRODUCIBLE:
        source += "\nNot reproducible in the sandbox: record_braintree.py leaves this file alone."
    header = "".join(f"# {line}\n" for line in source.strip().splitlines())
    path = root / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + text, encoding="utf-8")
    print(f"wrote {path} ({len(interactions)} interactions)", file=sys.stderr)
    return path


def request(plan: Plan, amount: Money | None = None, void: bool = False) -> GatewayRefundRequest:
    return GatewayRefundRequest(
        refund_id=plan.refund_id,
        payment_id="pay_" + plan.sale_id,
        gateway_payment_id=plan.sale_id,
        amount=amount or plan.refund_amount,
        idempotency_key=plan.idempotency_key,
        void=void,
    )


def build(fixtures: Path) -> Iterator[tuple[str, str, _Recorder]]:
    sale_bodies = _bodies(fixtures / SALE_TEMPLATE)
    sale = _xml(sale_bodies[1][1])  # the sandbox "settle" reply: a settled card sale
    credit = _xml(sale_bodies[2][1])  # the refund reply: a card credit
    unsettled = _xml(sale_bodies[0][1])  # the sale reply: submitted_for_settlement
    paypal_bodies = _bodies(fixtures / PAYPAL_TEMPLATE)
    paypal_sale, paypal_credit = _xml(paypal_bodies[0][1]), _xml(paypal_bodies[1][1])
    error = _xml(_bodies(fixtures / ERROR_TEMPLATE)[1][1])
    auth_status, auth_body = _bodies(fixtures / AUTH_TEMPLATE)[0]
    nf_status, nf_body = _bodies(fixtures / NOT_FOUND_TEMPLATE)[0]
    assert (auth_status, nf_status) == (401, 404)

    def sale_of(plan: Plan, status: str = "settled", *refunds: str) -> ET.Element:
        return transaction(
            sale, id=plan.sale_id, amount=plan.amount_wire, status=status, refund_ids=refunds
        )

    def credit_of(plan: Plan, id: str, amount: str | None = None) -> ET.Element:
        return transaction(
            credit,
            id=id,
            amount=amount or plan.refund_wire,
            status="submitted_for_settlement",
            order_id=plan.refund_id,
            refunded_transaction_id=plan.sale_id,
        )

    def ok(root: ET.Element, status: int = 201) -> Reply:
        return status, xml_bytes(root)

    def refusal(plan: Plan, code: str, message: str, txn: ET.Element | None = None) -> Reply:
        params = {"amount": plan.refund_wire, "order-id": plan.refund_id}
        return 422, xml_bytes(error_response(error, code, message, params, plan.sale_id, txn))

    src_credit = (
        f"Built from ../shared/fixtures/braintree/{SALE_TEMPLATE}\n"
        "(solidus_braintree, real sandbox traffic 2019-09-13): the settled sale is its 'settle'\n"
        "reply, the credit its refund reply. Changed: ids, amounts, order-id (our refund id),\n"
        "refund-ids; scrubbed: customer/billing/shipping, status-history users, global and\n"
        "network ids. Requests: what refundkit_braintree sends (built by running the plugin).\n"
    )
    c = CONFORMANCE

    p = c["full_refund"]
    yield (
        "conformance/full_refund",
        src_credit + "Scenario: full refund 40.00 of a settled 40.00 USD card sale\n"
        "(the shape of solidus__full_refund_40_of_40_settled_card__rubyvcr.yml).",
        run([ok(credit_of(p, "rkcrfull"))], lambda g: g.refund(request(p))),
    )
    p = c["partial_refund"]
    yield (
        "conformance/partial_refund",
        src_credit + "Scenario: partial refund 20.00 of 40.00, then the sale and its refund.",
        run(
            [
                ok(credit_of(p, "rkcrpart")),
                ok(sale_of(p, "settled", "rkcrpart"), 200),
                ok(credit_of(p, "rkcrpart"), 200),
            ],
            lambda g: (g.refund(request(p)), g.fetch_payment(p.sale_id)),
        ),
    )
    p = c["over_refund"]
    yield (
        "conformance/over_refund",
        f"Built from ../shared/fixtures/braintree/{ERROR_TEMPLATE}\n"
        "(spree_braintree_vzero, real sandbox traffic): its 422 api-error-response with the\n"
        "code changed from 91506 to 91521 (RefundAmountIsTooLarge) and the params to ours.",
        run(
            [refusal(p, "91521", "Refund amount is too large.")],
            lambda g: g.refund(request(p)),
        ),
    )
    p = c["idempotent_retry"]
    yield (
        "conformance/idempotent_retry",
        src_credit + "Scenario: the same refund (same api_request_key) sent twice; Braintree\n"
        "answers both with the one credit; then the sale and its one refund.",
        run(
            [
                ok(credit_of(p, "rkcridem")),
                ok(credit_of(p, "rkcridem")),
                ok(sale_of(p, "settled", "rkcridem"), 200),
                ok(credit_of(p, "rkcridem"), 200),
            ],
            lambda g: (g.refund(request(p)), g.refund(request(p)), g.fetch_payment(p.sale_id)),
        ),
    )
    p = c["unknown_then_lookup"]
    unsent = attrs.evolve(request(p), refund_id=p.refund_id + "_unsent")
    yield (
        "conformance/unknown_then_lookup",
        src_credit + "Scenario: the refund is applied but its reply times out (the test's\n"
        "HTTP strategy drops it); recovery searches credits by order-id (search replies\n"
        "shaped as the braintree SDK parses them), then a never-sent refund finds none.",
        run(
            [
                ok(credit_of(p, "rkcrlook")),
                ok(search_ids("rkcrlook"), 200),
                ok(search_page(credit_of(p, "rkcrlook")), 200),
                ok(search_ids(), 200),
            ],
            lambda g: (g.refund(request(p)), g.lookup_refund(request(p)), g.lookup_refund(unsent)),
        ),
    )
    for name, id_ in (("webhook_succeeded", "rkcrwhok"), ("webhook_failed", "rkcrwhno")):
        p = c[name]
        yield (
            f"conformance/{name}",
            src_credit + "Scenario: a refund whose outcome a signed webhook then announces\n"
            "(the webhook is built by _braintree_webhooks.py, signed with the test keys).",
            run([ok(credit_of(p, id_))], _refunder(request(p))),
        )
    p = c["card_masking"]
    yield (
        "conformance/card_masking",
        src_credit + "Scenario: the settled card sale (Visa, bin 401288, last 4 1881).",
        run([ok(sale_of(p), 200)], lambda g: g.fetch_payment(p.sale_id)),
    )

    # --- the other scenarios of issue 5 ----------------------------------------------------
    p = EXTRA["two_partials"]
    second = attrs.evolve(request(p), refund_id=p.refund_id + "_2", idempotency_key="rk-two-2")
    second_credit = transaction(
        credit,
        id="rkcrtwo2",
        amount=p.refund_wire,
        status="submitted_for_settlement",
        order_id=second.refund_id,
        refunded_transaction_id=p.sale_id,
    )
    yield (
        "two_partials_to_full",
        src_credit + "Scenario: two partial refunds of 20.00 bring a 40.00 sale to fully\n"
        "refunded; a third of 0.01 is refused with 91512 (HasAlreadyBeenRefunded, the code\n"
        "in the 422 shape of " + ERROR_TEMPLATE + ").",
        run(
            [
                ok(credit_of(p, "rkcrtwo1")),
                ok(second_credit),
                ok(sale_of(p, "settled", "rkcrtwo1", "rkcrtwo2"), 200),
                ok(credit_of(p, "rkcrtwo1"), 200),
                ok(second_credit, 200),
                refusal(p, "91512", "Transaction has already been fully refunded."),
            ],
            lambda g: (
                g.refund(request(p)),
                g.refund(second),
                g.fetch_payment(p.sale_id),
                g.refund(
                    attrs.evolve(
                        request(p, Money(1, "USD")),
                        refund_id=p.refund_id + "_3",
                        idempotency_key="rk-two-3",
                    )
                ),
            ),
        ),
    )
    p = EXTRA["paypal"]
    yield (
        "paypal_partial_refund",
        f"Built from ../shared/fixtures/braintree/{PAYPAL_TEMPLATE}\n"
        "(spree_braintree_vzero, real sandbox traffic 2016-08-04): partial refund 0.73 of a\n"
        "12.73 USD PayPal-account sale (credit 'settling'), then the sale. Scrubbed: payer\n"
        "email, names and PayPal ids, shipping address. Changed: ids, order-id.",
        run(
            [
                ok(
                    transaction(
                        paypal_credit,
                        id="rkcrpayp",
                        amount=p.refund_wire,
                        status="settling",
                        order_id=p.refund_id,
                        refunded_transaction_id=p.sale_id,
                    )
                ),
                ok(
                    transaction(
                        paypal_sale,
                        id=p.sale_id,
                        amount=p.amount_wire,
                        status="settled",
                        refund_ids=("rkcrpayp",),
                    ),
                    200,
                ),
                ok(
                    transaction(
                        paypal_credit,
                        id="rkcrpayp",
                        amount=p.refund_wire,
                        status="settling",
                        order_id=p.refund_id,
                        refunded_transaction_id=p.sale_id,
                    ),
                    200,
                ),
            ],
            lambda g: (g.refund(request(p)), g.fetch_payment(p.sale_id)),
        ),
    )
    p = EXTRA["unsettled"]
    yield (
        "unsettled_91506",
        f"Built from ../shared/fixtures/braintree/{ERROR_TEMPLATE} (spree_braintree_vzero,\n"
        "real sandbox traffic): a partial refund of an unsettled sale refused with 91506\n"
        "(CannotRefundUnlessSettled). Changed: params (amount, order-id, id).",
        run(
            [refusal(p, "91506", "Cannot refund transaction unless it is settled.")],
            _refunder(request(p)),
        ),
    )
    pending = transaction(
        unsettled, id=p.sale_id, amount=p.amount_wire, status="submitted_for_settlement"
    )
    voided = transaction(unsettled, id=p.sale_id, amount=p.amount_wire, status="voided")
    void_request = attrs.evolve(
        request(p, Money(4000, "USD"), void=True), refund_id="rf_void", idempotency_key="rk-void"
    )
    yield (
        "unsettled_void",
        f"Built from ../shared/fixtures/braintree/{SALE_TEMPLATE} (solidus_braintree, real\n"
        "sandbox traffic): its sale reply (submitted_for_settlement) is the unsettled sale the\n"
        "kit finds when recording the payment (GET); the full refund the quote then allows\n"
        "is a void (PUT .../void), answered with the same sale, status changed to voided.",
        run(
            [ok(pending, 200), ok(voided, 200)],
            lambda g: (g.fetch_payment(p.sale_id), g.refund(void_request)),
        ),
    )
    yield (
        "settled_since_recording",
        f"Built from ../shared/fixtures/braintree/{SALE_TEMPLATE} (solidus_braintree, real\n"
        "sandbox traffic): the sale is submitted_for_settlement when the kit records the\n"
        "payment (GET, its sale reply) and settled when the quote asks again (GET, its\n"
        "'settle' reply); the partial refund then goes out as a credit (POST .../refund).",
        run(
            [ok(pending, 200), ok(sale_of(p, "settled"), 200), ok(credit_of(p, "rkcrsset"))],
            lambda g: (
                g.fetch_payment(p.sale_id),
                g.fetch_payment(p.sale_id),
                g.refund(request(p)),
            ),
        ),
    )
    p = EXTRA["void_settled"]
    yield (
        "void_after_settlement_refunds",
        f"Built from ../shared/fixtures/braintree/{ERROR_TEMPLATE} and {SALE_TEMPLATE}.\n"
        "Scenario: a void of a sale that settled since the quote is refused with 91504\n"
        "(CannotBeVoided), so the plugin refunds the whole amount instead.",
        run(
            [
                refusal(
                    p,
                    "91504",
                    "Transaction can only be voided if status is authorized,"
                    " submitted_for_settlement, or - for PayPal - settlement_pending.",
                ),
                ok(credit_of(p, "rkcrvset")),
            ],
            lambda g: g.refund(request(p, void=True)),
        ),
    )
    p = EXTRA["kit_recover"]
    yield (
        "kit_timeout_then_recover",
        src_credit + "Scenario (R-1.7): the kit records the sale (GET), its refund reaches\n"
        "Braintree but the reply is lost (the test's HTTP strategy drops it), and recovery\n"
        "finds the credit by order-id (search replies shaped as the braintree SDK parses them).\n"
        "The kit's refund id and key are random: the test normalises them in the request body.",
        run(
            [
                ok(sale_of(p), 200),
                ok(credit_of(p, "rkcrkitr")),
                ok(search_ids("rkcrkitr"), 200),
                ok(search_page(credit_of(p, "rkcrkitr")), 200),
            ],
            lambda g: (
                g.fetch_payment(p.sale_id),
                g.refund(request(p)),
                g.lookup_refund(request(p)),
            ),
        ),
    )
    p = EXTRA["not_found"]
    yield (
        "unknown_transaction_404",
        f"Built from ../shared/fixtures/braintree/{NOT_FOUND_TEMPLATE} (saleor, real\n"
        "sandbox traffic): 404 with an empty body for a refund of an unknown transaction.",
        run([(404, nf_body)], lambda g: g.refund(request(p))),
    )
    p = EXTRA["bad_credentials"]
    yield (
        "bad_credentials_401",
        f"Built from ../shared/fixtures/braintree/{AUTH_TEMPLATE} (spree_braintree_vzero,\n"
        "real sandbox traffic): 401 'HTTP Basic: Access denied.' (there for a client token,\n"
        "here for a refund: Braintree answers every path the same way without valid keys).",
        run([(401, auth_body)], lambda g: g.refund(request(p))),
    )
    p = EXTRA["rate_limited"]
    yield (
        "rate_limited_429_then_success",
        "No recording of a Braintree 429 exists in the fixtures: the 429 is made up (the SDK\n"
        "reads only the status, braintree/util/http.py), its body the 401's plain-text shape.\n"
        "The success that follows is built like conformance/full_refund from " + SALE_TEMPLATE,
        run(
            [(429, b"Too Many Requests"), ok(credit_of(p, "rkcrrate"))],
            lambda g: (_swallow(g.refund, request(p)), g.refund(request(p))),
        ),
    )
    p = EXTRA["processor_declined"]
    declined = transaction(
        credit,
        id="rkcrdecl",
        amount=p.refund_wire,
        status="processor_declined",
        order_id=p.refund_id,
        refunded_transaction_id=p.sale_id,
        processor=("2004", "Expired Card"),
    )
    yield (
        "processor_declined_refund",
        f"Built from ../shared/fixtures/braintree/{ERROR_TEMPLATE} (the 422 shape, with no\n"
        f"validation error) and the credit of {SALE_TEMPLATE} set to processor_declined with\n"
        "processor-response-code 2004 'Expired Card': how the SDK >= 4.0 reports a refund\n"
        "authorization the issuer declined (no such recording exists in the fixtures).",
        run(
            [refusal(p, "", "Expired Card", declined)],
            lambda g: g.refund(request(p)),
        ),
    )


def _refunder(refund: GatewayRefundRequest) -> Callable[[BraintreeGateway], object]:
    return lambda gateway: gateway.refund(refund)


def _swallow(call: Callable[[GatewayRefundRequest], object], arg: GatewayRefundRequest) -> object:
    with contextlib.suppress(RefundkitError):
        return call(arg)
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--fixtures", type=Path, default=ROOT.parent / "shared" / "fixtures" / "braintree"
    )
    args = parser.parse_args(argv)
    fixtures: Path = args.fixtures
    if not fixtures.is_dir():
        fixtures = Path("/work/shared/fixtures/braintree")
    from _braintree_build_statuses import build_statuses

    for name, source, recorder in (*build(fixtures), *build_statuses(fixtures)):
        write(name, source, recorder)


if __name__ == "__main__":
    main()

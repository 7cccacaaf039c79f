"""The cassettes of issue 15 for Braintree, built like the others (``_braintree_build_cassettes``
writes them too): a kit refund answered with a credit in each status the plugin used not to
map, and 5xx answers whose body carries a refusal's code.

Each ``credit_<status>`` cassette: the kit records the settled sale (GET), then its refund gets
a 201 credit in that status (POST .../refund); ``credit_authorizing`` adds the lookup recovery
makes later (search by order_id), which finds the credit submitted for settlement.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Final

from _braintree_build_cassettes import (
    ERROR_TEMPLATE,
    SALE_TEMPLATE,
    _bodies,
    _Recorder,
    _xml,
    request,
    run,
    search_ids,
    search_page,
    transaction,
    xml_bytes,
)
from _braintree_support import Plan
from refundkit_braintree import server_error_body

from refundkit import Money

#: The four statuses of ``braintree.Transaction.Status`` the plugin did not map, each on a sale
#: of its own (a kit records it, then refunds 10.00 of 40.00).
STATUS_PLANS: Final[Mapping[str, Plan]] = {
    status: Plan(
        f"rkst{tag}", Money(4000, "USD"), Money(1000, "USD"), f"rf_{status}", f"rk-{status}-1"
    )
    for status, tag in (
        ("settlement_confirmed", "conf"),
        ("settlement_failed", "fail"),
        ("authorizing", "auth"),
        ("authorization_expired", "expd"),
    )
}
#: 5xx answers to a kit's refund: (status, the validation code its body carries).
SERVER_ERRORS: Final[Mapping[str, tuple[int, str | None]]] = {
    "server_error_500_with_91506": (500, "91506"),
    "service_unavailable_503": (503, None),
}
SERVER_ERROR_PLAN: Final = Plan(
    "rkst5xx", Money(4000, "USD"), Money(1000, "USD"), "rf_server_error", "rk-server-error-1"
)


def build_statuses(fixtures: Path) -> Iterator[tuple[str, str, _Recorder]]:
    sale_bodies = _bodies(fixtures / SALE_TEMPLATE)
    sale, credit = _xml(sale_bodies[1][1]), _xml(sale_bodies[2][1])
    source = (
        f"Source: ../shared/fixtures/braintree/{SALE_TEMPLATE}\n"
        "(solidus_braintree, real sandbox traffic 2019-09-13): the settled sale is its 'settle'\n"
        "reply, the credit its refund reply with the status changed. Changed: ids, amounts,\n"
        "order-id; scrubbed as the other cassettes. Requests: what refundkit_braintree sends.\n"
    )
    for status, plan in STATUS_PLANS.items():
        settled = transaction(sale, id=plan.sale_id, amount=plan.amount_wire, status="settled")

        def credit_in(state: str, plan: Plan = plan) -> bytes:
            return xml_bytes(
                transaction(
                    credit,
                    id=f"rkcr{plan.sale_id[4:]}",
                    amount=plan.refund_wire,
                    status=state,
                    order_id=plan.refund_id,
                    refunded_transaction_id=plan.sale_id,
                )
            )

        replies = [(200, xml_bytes(settled)), (201, credit_in(status))]
        later = ""
        if status == "authorizing":
            found = _xml(credit_in("submitted_for_settlement"))
            replies += [
                (200, xml_bytes(search_ids(f"rkcr{plan.sale_id[4:]}"))),
                (200, xml_bytes(search_page(found))),
            ]
            later = "; recovery then finds it by order-id, submitted_for_settlement"
        yield (
            f"credit_{status}",
            source + f"Scenario (issue 15): a kit's refund answered with a credit in status\n"
            f"{status} (braintree.Transaction.Status){later}.",
            run(replies, partial(_kit_calls, plan=plan, status=status)),
        )
    yield from _server_errors(fixtures)


def _kit_calls(gateway: object, plan: Plan, status: str) -> None:
    from refundkit_braintree import BraintreeGateway

    assert isinstance(gateway, BraintreeGateway)
    gateway.fetch_payment(plan.sale_id)
    gateway.refund(request(plan))
    if status == "authorizing":
        gateway.lookup_refund(request(plan))


def _server_errors(fixtures: Path) -> Iterator[tuple[str, str, _Recorder]]:
    plan = SERVER_ERROR_PLAN
    sale_bodies = _bodies(fixtures / SALE_TEMPLATE)
    settled = transaction(
        _xml(sale_bodies[1][1]), id=plan.sale_id, amount=plan.amount_wire, status="settled"
    )
    for name, (status, code) in SERVER_ERRORS.items():
        body = server_error_body(status, code, "Cannot refund transaction unless it is settled.")
        what = (
            f"an api-error-response carrying validation code {code} (the 422 shape of\n"
            f"{ERROR_TEMPLATE})"
            if code
            else "an empty body"
        )
        yield (
            name,
            f"Source: ../shared/fixtures/braintree/{SALE_TEMPLATE} (the settled sale).\n"
            f"The {status} is built by refundkit_braintree.server_error_body(): no fixture holds\n"
            f"a Braintree 5xx (the SDK raises on the status, braintree/util/http.py, and never\n"
            f"reads the body); its body is {what}.",
            run(
                [(200, xml_bytes(settled)), (status, body)],
                partial(_fetch_then_refund, plan=plan),
            ),
        )


def _fetch_then_refund(gateway: object, plan: Plan) -> None:
    from refundkit_braintree import BraintreeGateway

    assert isinstance(gateway, BraintreeGateway)
    gateway.fetch_payment(plan.sale_id)
    gateway.refund(request(plan))

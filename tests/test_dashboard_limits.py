"""A balance refund takes only a plan for the customer's balance (issue 14: point 9's
malformed plan, extra 2). Runs on both stores.

- A hand-made "balance" plan could refund an invoice payment; it is now refused (400,
  ``InvalidPlan``) before any leg runs. Malformed plan JSON was an HTTP 500; now a 400.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from starlette.testclient import TestClient

from refundkit import InvalidPlan, Money, RefundKit
from refundkit._approvals import Approvals
from refundkit.dashboard import create_app

from ._dashboard import BALANCE_PAYMENT, CUSTOMER, INVOICE_PAYMENT, seed, settings
from .test_dashboard import preview_plan, refund_form, sign_in


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


@pytest.fixture
def seeded(kit: RefundKit) -> RefundKit:
    seed(kit)
    return kit


@pytest.fixture
def client(seeded: RefundKit) -> Iterator[TestClient]:
    with TestClient(create_app(seeded, settings()), follow_redirects=False) as c:
        yield c


def refund(client: TestClient, payment_id: str, amount: str) -> str:
    """Post a refund as the signed-in user; returns the page the redirect leads to."""
    r = client.post(
        f"/payments/{payment_id}/refund", data=refund_form(client, payment_id, amount=amount)
    )
    assert r.status_code == 303, r.text
    return str(client.get(f"/payments/{payment_id}").text)


def made(kit: RefundKit) -> list[tuple[str, Money]]:
    return [(r.payment_id, r.amount) for r in kit.refunds()]


def pending(kit: RefundKit) -> list[Money]:
    return sorted(a.amount for a in Approvals(kit).find(status="pending"))


# --- extra 2 and point 9: only a well-formed plan for the customer's balance -------------------


def post_plan(client: TestClient, token: str, plan: str) -> Any:
    return client.post(
        f"/customers/{CUSTOMER}/refund-balance",
        data={"csrf": token, "plan": plan, "reason": "account_closed"},
    )


@pytest.mark.parametrize(
    "plan",
    ["", "not json", "[]", '"plan"', "5", '{"legs": 5}', "[" * 100_000 + "]" * 100_000],
    ids=["empty", "text", "list", "string", "number", "partial", "deep"],
)
def test_malformed_plan_json_is_a_400_with_the_sentence(
    client: TestClient, seeded: RefundKit, plan: str
) -> None:
    """Used to be an HTTP 500 (a TypeError or RecursionError out of the handler)."""
    token = sign_in(client, "ann")
    r = post_plan(client, token, plan)
    assert r.status_code == 400
    assert "plan" in r.text
    assert seeded.refunds() == []


def test_a_hand_made_balance_plan_refunding_an_invoice_payment_is_refused(
    client: TestClient, seeded: RefundKit
) -> None:
    """Support edits the previewed balance plan's leg to refund the invoice payment instead
    (no lot, or the top-up's lot): refused before any leg runs, nothing written."""
    token = sign_in(client, "sam")
    plan = json.loads(preview_plan(client, token, "10.00"))
    [leg] = plan["legs"]
    top_up_lot = leg["lot_id"]
    for lot_id in (None, top_up_lot):
        leg |= {"payment_id": INVOICE_PAYMENT, "lot_id": lot_id}
        plan["basis"] = {f"payment:{INVOICE_PAYMENT}": 0}
        r = post_plan(client, token, json.dumps(plan))
        assert r.status_code == 400
        assert "outside the customer balance" in r.text
    assert seeded.refunds() == []
    with pytest.raises(InvalidPlan, match="only balance lots"):
        seeded.execute(plan)


def test_a_plan_for_another_customers_payment_is_refused(seeded: RefundKit) -> None:
    seeded.record_payment(
        id="pay_other", customer_id="cus_other", amount=usd("40.00"), gateway="sandbox",
        gateway_payment_id="sbx_other",
    )  # fmt: skip
    plan = seeded.plan_refund(CUSTOMER, usd("10.00")).to_dict()
    plan["legs"][0] |= {"payment_id": "pay_other", "lot_id": None}
    plan["basis"] = {"payment:pay_other": 0}
    with pytest.raises(InvalidPlan, match="not a payment of cus_ada"):
        seeded.execute(plan)
    on_invoice = seeded.plan_refund(CUSTOMER, usd("10.00"), scope="inv_1001").to_dict()
    on_invoice["legs"][0] |= {"payment_id": BALANCE_PAYMENT, "lot_id": None}
    on_invoice["basis"] = {f"payment:{BALANCE_PAYMENT}": 0}
    with pytest.raises(InvalidPlan, match="not on inv_1001"):
        seeded.execute(on_invoice)
    assert seeded.refunds() == []

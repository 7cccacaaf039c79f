"""A support user's refund limit counts what they refunded already, and a balance refund
takes only a plan for the customer's balance (issue 14: point 9's malformed plan, extras 1
and 2). Runs on both stores.

- A limit of 20.00 used to apply per refund, so 200.00 went out as ten refunds of 20.00 with
  no approval. Now it counts the user's own refunds of the payment (ever) and of the customer
  (in any 24 hours; ``support_daily_refund_limit``, by default the same amount).
- A hand-made "balance" plan could refund an invoice payment; it is now refused (400,
  ``InvalidPlan``) before any leg runs. Malformed plan JSON was an HTTP 500; now a 400.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from starlette.testclient import TestClient

from refundkit import InvalidPlan, Money, RefundKit
from refundkit._approvals import Approvals
from refundkit._errors import ConfigurationError
from refundkit.dashboard import create_app, settings_from_config

from ._dashboard import BALANCE_PAYMENT, CUSTOMER, INVOICE_PAYMENT, seed, settings
from .conftest import FakeClock
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


# --- extra 1: the limit counts what the user refunded already -------------------------------


def test_a_support_limit_cannot_be_split_into_several_refunds_of_one_payment(
    client: TestClient, seeded: RefundKit
) -> None:
    """Limit 20.00: 20.00 runs; a second 20.00 of the same payment waits for approval, and
    so does any amount once what sam refunded of it reaches the limit."""
    sign_in(client, "sam")
    refund(client, INVOICE_PAYMENT, "20.00")
    assert made(seeded) == [(INVOICE_PAYMENT, usd("20.00"))]
    html = refund(client, INVOICE_PAYMENT, "20.00")
    assert "sam would have refunded 40.00 USD of pay_inv_1" in html
    assert "20.00 USD awaits approval (asked by sam); it is not held" in html
    refund(client, INVOICE_PAYMENT, "0.01")
    assert made(seeded) == [(INVOICE_PAYMENT, usd("20.00"))]  # nothing more without approval
    assert pending(seeded) == [usd("0.01"), usd("20.00")]


def test_small_refunds_add_up_to_the_limit(client: TestClient, seeded: RefundKit) -> None:
    sign_in(client, "sam")
    for _ in range(4):
        refund(client, INVOICE_PAYMENT, "5.00")
    assert sum(a.amount for _, a in made(seeded)) == 2000
    refund(client, INVOICE_PAYMENT, "5.00")
    assert len(made(seeded)) == 4
    assert pending(seeded) == [usd("5.00")]


def test_the_limit_counts_one_customer_across_payments_in_24_hours(
    client: TestClient, seeded: RefundKit, clock: FakeClock
) -> None:
    """By default the per-customer allowance is the same 20.00: 20.00 of the invoice payment
    leaves nothing for the top-up until 24 hours have passed."""
    sign_in(client, "sam")
    refund(client, INVOICE_PAYMENT, "20.00")
    html = refund(client, BALANCE_PAYMENT, "5.00")
    assert f"sam would have refunded 25.00 USD of {CUSTOMER} in 24 hours" in html
    assert len(made(seeded)) == 1
    clock.advance(hours=24, seconds=1)
    sign_in(client, "sam")  # a session ends 8 hours after sign-in: the next day, sign in again
    refund(client, BALANCE_PAYMENT, "5.00")
    assert made(seeded)[-1] == (BALANCE_PAYMENT, usd("5.00"))


def test_a_configured_daily_limit_allows_several_payments_of_one_customer(
    seeded: RefundKit,
) -> None:
    roomy = attrs.evolve(settings(), support_daily_limits={"USD": usd("30.00")})
    with TestClient(create_app(seeded, roomy), follow_redirects=False) as client:
        sign_in(client, "sam")
        refund(client, INVOICE_PAYMENT, "20.00")
        refund(client, BALANCE_PAYMENT, "10.00")
        assert len(made(seeded)) == 2
        html = refund(client, BALANCE_PAYMENT, "0.01")  # 30.01 of the customer today
        assert "in 24 hours" in html
    assert pending(seeded) == [usd("0.01")]


def test_a_balance_refund_counts_against_the_same_allowance(
    client: TestClient, seeded: RefundKit
) -> None:
    token = sign_in(client, "sam")
    refund(client, INVOICE_PAYMENT, "15.00")
    plan = preview_plan(client, token, "10.00")
    r = client.post(
        f"/customers/{CUSTOMER}/refund-balance",
        data={"csrf": token, "plan": plan, "reason": "account_closed"},
    )
    assert r.status_code == 303
    assert len(made(seeded)) == 1  # the balance refund waits: 25.00 of the customer
    [approval] = Approvals(seeded).find(customer_id=CUSTOMER)
    assert (approval.kind, approval.amount) == ("balance", usd("10.00"))


def test_refunds_approved_by_someone_else_are_not_the_users_own(
    client: TestClient, seeded: RefundKit
) -> None:
    sign_in(client, "sam")
    refund(client, INVOICE_PAYMENT, "30.00")  # waits
    [approval] = Approvals(seeded).find(status="pending")
    Approvals(seeded).approve(approval.id, approver="ann")
    refund(client, INVOICE_PAYMENT, "20.00")  # sam's own 20.00: within the limit
    assert sorted(str(r.actor) for r in seeded.refunds()) == ["sam", "sam, approved by ann"]


def test_the_daily_limit_setting_is_read_and_checked() -> None:
    base: dict[str, Any] = {
        "secret_key": "k" * 40,
        "users": [{"name": "sam", "role": "support", "password_hash": "$argon2id$x"}],
        "support_refund_limit": "20.00 USD",
    }
    default = settings_from_config(base)
    assert default.daily_refund_limit("support", "USD") == usd("20.00")
    assert default.daily_refund_limit("billing_admin", "USD") is None
    s = settings_from_config(base | {"support_daily_refund_limit": {"USD": "250.00"}})
    assert s.daily_refund_limit("support", "USD") == usd("250.00")
    assert s.daily_refund_limit("support", "EUR") == Money.zero("EUR")
    with pytest.raises(ConfigurationError, match="support_daily_refund_limit"):
        settings_from_config(base | {"support_daily_refund_limit": 250})


# --- extra 2 and point 9: only a well-formed plan for the customer's balance -------------------


def post_plan(client: TestClient, token: str, plan: str) -> Any:
    return client.post(
        f"/customers/{CUSTOMER}/refund-balance",
        data={"csrf": token, "plan": plan, "reason": "account_closed"},
    )


@pytest.mark.parametrize(
    "plan",
    # "deep" nests far past Python's recursion limit yet stays under the 64 KiB form limit.
    ["", "not json", "[]", '"plan"', "5", '{"legs": 5}', "[" * 9_000 + "]" * 9_000],
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

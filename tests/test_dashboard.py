"""The dashboard's routes through Starlette's TestClient: sign-in, CSRF, roles, the quote's
sentences, refunds, approvals (four eyes) and the balance planner. The browser tests
(test_dashboard_browser.py) walk the same flows in Chromium."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import attrs
import pytest
from httpx import Response
from markupsafe import escape

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork in its TestClient; httpx works the same here.
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from starlette.testclient import TestClient

from refundkit import Card, Destination, Money, RefundKit
from refundkit._approvals import Approvals
from refundkit._errors import (
    ApprovalRefused,
    ConfigurationError,
    InsufficientRefundableBalance,
    RefundNotAllowed,
    StalePlan,
)
from refundkit._pans import find_pans
from refundkit.dashboard import create_app, settings_from_config

from ._dashboard import (
    BALANCE_PAYMENT,
    CUSTOMER,
    INVOICE_PAYMENT,
    USERS,
    csrf_of,
    seed,
    settings,
)
from .conftest import FakeClock


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


def sign_in(client: TestClient, name: str) -> str:
    """Sign in as ``name``; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": name, "password": USERS[name][1], "csrf": token})
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/payments").text)


def refund_form(client: TestClient, payment_id: str, **data: str) -> dict[str, str]:
    page = client.get(f"/payments/{payment_id}").text
    key = page.split('name="key" value="', 1)[1].split('"', 1)[0]
    return {"csrf": csrf_of(page), "key": key, "reason": "requested_by_customer", **data}


# --- sign-in and sessions ---------------------------------------------------------------------


def test_pages_need_sign_in(client: TestClient) -> None:
    r = client.get(f"/payments/{INVOICE_PAYMENT}")
    assert r.status_code == 303
    assert r.headers["location"] == "/login"


@pytest.mark.parametrize(("name", "password"), [("ann", "wrong"), ("nobody", "ann-password-1")])
def test_wrong_name_or_password_is_refused_alike(
    client: TestClient, name: str, password: str
) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": name, "password": password, "csrf": token})
    assert r.status_code == 400
    assert "Wrong name or password." in r.text
    assert client.get("/payments").status_code == 303


def test_session_cookie_is_signed_httponly_and_samesite_lax(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": "ann", "password": USERS["ann"][1], "csrf": token})
    cookie = r.headers["set-cookie"].lower()
    assert "refundkit_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert USERS["ann"][1] not in r.headers["set-cookie"]


def test_sign_in_gives_a_new_csrf_token_and_logout_ends_the_session(client: TestClient) -> None:
    before = csrf_of(client.get("/login").text)
    after = sign_in(client, "ann")
    assert after != before
    assert client.post("/logout", data={"csrf": after}).status_code == 303
    assert client.get("/payments").status_code == 303


def test_pages_forbid_framing_and_scripts(client: TestClient) -> None:
    r = client.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "<script" not in r.text


def try_sign_in(client: TestClient, name: str, password: str) -> Response:
    token = csrf_of(client.get("/login").text)
    response: Response = client.post(
        "/login", data={"name": name, "password": password, "csrf": token}
    )
    return response


def test_failed_sign_ins_block_the_name_for_the_window(
    client: TestClient, clock: FakeClock
) -> None:
    """Five wrong passwords for a name block it (429, Retry-After) without checking the
    password, even the right one, until the window has passed; other names still sign in.
    The window runs on the kit's clock."""
    for _ in range(5):
        assert try_sign_in(client, "ann", "wrong").status_code == 400
    blocked = try_sign_in(client, "ann", USERS["ann"][1])
    assert blocked.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minutes." in blocked.text
    assert blocked.headers["retry-after"] == "900"
    assert client.get("/payments").status_code == 303  # not signed in
    assert try_sign_in(client, "ANN ", "wrong").status_code == 429  # same name, other case
    assert try_sign_in(client, "sam", USERS["sam"][1]).status_code == 303
    clock.advance(seconds=899)
    assert try_sign_in(client, "ann", USERS["ann"][1]).headers["retry-after"] == "1"
    clock.advance(seconds=1)
    assert try_sign_in(client, "ann", USERS["ann"][1]).status_code == 303


def test_a_right_password_clears_the_names_failures(client: TestClient) -> None:
    for _ in range(4):
        assert try_sign_in(client, "ann", "wrong").status_code == 400
    assert try_sign_in(client, "ann", USERS["ann"][1]).status_code == 303
    for _ in range(4):
        assert try_sign_in(client, "ann", "wrong").status_code == 400  # counted from zero again


def test_many_names_guessed_from_one_address_block_that_address(seeded: RefundKit) -> None:
    app = create_app(seeded, attrs.evolve(settings(), sign_in_attempts_per_address=3))
    with TestClient(app, follow_redirects=False) as client:
        for name in ("x1", "x2", "x3"):
            assert try_sign_in(client, name, "guess").status_code == 400
        assert try_sign_in(client, "ann", USERS["ann"][1]).status_code == 429


def test_a_card_number_typed_as_a_name_never_reaches_the_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """R-5.4: the throttle's warning names the blocked name, which a stranger typed."""
    pan = "4111 1111 1111 1111"
    for _ in range(6):
        try_sign_in(client, pan, "wrong")
    assert "dashboard sign-in throttled" in caplog.text
    assert not find_pans(caplog.text)


def test_a_blocked_sign_in_does_not_check_the_password(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guessing must not cost the server an argon2 check per try once blocked."""
    d = client.app.state.dashboard  # type: ignore[attr-defined]
    for _ in range(5):
        try_sign_in(client, "ann", "wrong")
    checks: list[str] = []

    def counted(user: object, password: str) -> bool:
        checks.append(password)
        return False

    monkeypatch.setattr(d, "_password_ok", counted)
    assert try_sign_in(client, "ann", "wrong").status_code == 429
    assert checks == []


def test_sign_in_throttle_configuration() -> None:
    s = settings_from_config(
        config(sign_in_attempts=3, sign_in_attempts_per_address=9, sign_in_window="1h")
    )
    assert (s.sign_in_attempts, s.sign_in_attempts_per_address) == (3, 9)
    assert s.sign_in_window == timedelta(hours=1)
    defaults = settings_from_config(config())
    assert (defaults.sign_in_attempts, defaults.sign_in_window) == (5, timedelta(minutes=15))
    for bad in ({"sign_in_attempts": 0}, {"sign_in_attempts": "5"}, {"sign_in_window": "1h,2h"}):
        with pytest.raises(ConfigurationError, match="sign_in_"):
            settings_from_config(config(**bad))


# --- CSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(
    client: TestClient, seeded: RefundKit, token: str | None
) -> None:
    sign_in(client, "ann")
    data = refund_form(client, INVOICE_PAYMENT, amount="10.00")
    if token is None:
        del data["csrf"]
    else:
        data["csrf"] = token
    r = client.post(f"/payments/{INVOICE_PAYMENT}/refund", data=data)
    assert r.status_code == 403
    assert "expired or was not sent by this dashboard" in r.text
    assert seeded.refunds() == []


def test_sign_in_itself_needs_the_csrf_token(client: TestClient) -> None:
    client.get("/login")
    r = client.post("/login", data={"name": "ann", "password": USERS["ann"][1]})
    assert r.status_code == 403
    assert client.get("/payments").status_code == 303


# --- payments ---------------------------------------------------------------------------------


def test_payments_list_shows_amount_destination_and_card(client: TestClient) -> None:
    sign_in(client, "vic")
    html = client.get("/payments").text
    assert "mastercard •••• 4444" in html
    assert "customer balance" in html
    assert "invoice inv_1001" in html
    assert "120.00 USD" in html
    # Refundable is the quote's maximum: 15.00 of the 50.00 top-up was spent.
    row = html.split(f'href="/payments/{BALANCE_PAYMENT}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">35.00 USD</td>' in row
    assert "50.00 USD" in row


@pytest.mark.parametrize("q", ["sbx_ch_bal", "pay_bal", "CUS_ADA"])
def test_payments_search_by_gateway_id_payment_id_or_customer(client: TestClient, q: str) -> None:
    sign_in(client, "vic")
    html = client.get("/payments", params={"q": q}).text
    assert f'href="/payments/{BALANCE_PAYMENT}"' in html
    if q != "CUS_ADA":
        assert f'href="/payments/{INVOICE_PAYMENT}"' not in html


@pytest.mark.parametrize("payment_id", [INVOICE_PAYMENT, BALANCE_PAYMENT])
def test_payment_page_shows_every_limit_sentence_and_the_default_amount(
    client: TestClient, seeded: RefundKit, payment_id: str
) -> None:
    """Invoice and customer-balance payments get the same Refund button logic."""
    sign_in(client, "sam")
    quote = seeded.quote(payment_id)
    html = client.get(f"/payments/{payment_id}").text
    assert quote.refundable
    assert f'Refundable: up to <strong id="max-amount">{quote.max_amount}</strong>' in html
    for limit in quote.limits:
        assert str(escape(limit.message)) in html
    assert f'name="amount" value="{quote.default_amount.decimal_str()}"' in html
    assert ">Refund</button>" in html


def test_balance_payment_quote_names_the_spent_balance(client: TestClient) -> None:
    sign_in(client, "vic")
    html = client.get(f"/payments/{BALANCE_PAYMENT}").text
    assert 'data-code="customer_balance"' in html
    assert "inv_1003" in html


def test_viewer_sees_no_refund_button_and_cannot_post_one(
    client: TestClient, seeded: RefundKit
) -> None:
    token = sign_in(client, "vic")
    html = client.get(f"/payments/{INVOICE_PAYMENT}").text
    assert ">Refund</button>" not in html
    assert "Your role (viewer) cannot refund." in html
    r = client.post(
        f"/payments/{INVOICE_PAYMENT}/refund",
        data={"csrf": token, "amount": "1.00", "reason": "x"},
    )
    assert r.status_code == 403
    assert seeded.refunds() == []


def test_partial_refund_shows_its_status_and_the_new_quote(
    client: TestClient, seeded: RefundKit
) -> None:
    sign_in(client, "sam")
    data = refund_form(client, BALANCE_PAYMENT, amount="10.00")
    r = client.post(f"/payments/{BALANCE_PAYMENT}/refund", data=data)
    assert r.status_code == 303
    html = client.get(f"/payments/{BALANCE_PAYMENT}").text
    [refund] = seeded.refunds(BALANCE_PAYMENT)
    assert refund.status.value == "succeeded"
    assert refund.actor == "sam"
    assert "Refund of 10.00 USD went back to the card." in html
    assert str(refund.gateway_refund_id) in html
    assert 'Refundable: up to <strong id="max-amount">25.00 USD</strong>' in html
    assert "refund.succeeded" in html or "charge.refunded" in html  # the events table
    assert "customer_balance:" in html  # the journal


def test_resubmitting_the_same_form_refunds_once(client: TestClient, seeded: RefundKit) -> None:
    """R-1.1: the form's idempotency key makes a double submit one refund."""
    sign_in(client, "ann")
    data = refund_form(client, INVOICE_PAYMENT, amount="30.00")
    for _ in range(2):
        assert client.post(f"/payments/{INVOICE_PAYMENT}/refund", data=data).status_code == 303
    assert [r.amount for r in seeded.refunds(INVOICE_PAYMENT)] == [usd("30.00")]


def test_the_forms_key_never_looks_like_a_card_number(
    client: TestClient, seeded: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-5.4: a random form key with a Luhn-valid run of 13+ digits would be refused as a card
    number, and the Refund button would fail about once in 4,000 page views (it did in CI)."""
    sign_in(client, "sam")
    real = secrets.token_hex
    draws = iter(["4111111111111111" + "abcdefgh", "0123456789ab" * 2])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(draws, None) or real(n))
    data = refund_form(client, BALANCE_PAYMENT, amount="10.00")
    assert data["key"] == "dash-0123456789ab0123456789ab"
    assert client.post(f"/payments/{BALANCE_PAYMENT}/refund", data=data).status_code == 303
    assert [r.status.value for r in seeded.refunds(BALANCE_PAYMENT)] == ["succeeded"]


def test_more_than_the_maximum_is_refused_with_the_limits_sentence(
    client: TestClient, seeded: RefundKit
) -> None:
    """R-3.1: never above the cap; the refusal names the limit that binds."""
    sign_in(client, "ann")
    limit = next(lim for lim in seeded.quote(BALANCE_PAYMENT).limits if lim.amount == usd("35"))
    data = refund_form(client, BALANCE_PAYMENT, amount="40.00")
    r = client.post(f"/payments/{BALANCE_PAYMENT}/refund", data=data)
    assert r.status_code == 400
    assert "40.00 USD is more than the 35.00 USD that may be refunded." in r.text
    assert str(escape(limit.message)) in r.text
    assert 'name="amount" value="40.00"' in r.text  # the form keeps what was typed
    assert seeded.refunds() == []


@pytest.mark.parametrize("amount", ["1.5.0", "-3.00", "0.001", "1e3", ""])
def test_bad_amounts_are_refused_without_writing(
    client: TestClient, seeded: RefundKit, amount: str
) -> None:
    sign_in(client, "ann")
    r = client.post(
        f"/payments/{INVOICE_PAYMENT}/refund",
        data=refund_form(client, INVOICE_PAYMENT, amount=amount),
    )
    assert r.status_code == 400
    assert 'class="error"' in r.text
    assert seeded.refunds() == []


def test_unknown_payment_is_a_404(client: TestClient) -> None:
    sign_in(client, "vic")
    r = client.get("/payments/pay_nope")
    assert r.status_code == 404
    assert "no payment" in r.text


# --- approvals --------------------------------------------------------------------------------


def ask_for_approval(client: TestClient, amount: str = "30.00") -> None:
    sign_in(client, "sam")
    data = refund_form(client, INVOICE_PAYMENT, amount=amount)
    r = client.post(f"/payments/{INVOICE_PAYMENT}/refund", data=data)
    assert r.status_code == 303
    html = client.get(f"/payments/{INVOICE_PAYMENT}").text
    assert f"{amount} USD awaits approval (asked by sam); it is not held" in html


def pending_id(kit: RefundKit) -> str:
    [approval] = Approvals(kit).find(status="pending")
    return approval.id


def test_support_refund_above_the_limit_waits_for_approval(
    client: TestClient, seeded: RefundKit
) -> None:
    ask_for_approval(client)
    assert seeded.refunds() == []
    [approval] = Approvals(seeded).find()
    assert (approval.status, approval.requested_by) == ("pending", "sam")
    assert approval.amount == usd("30.00")
    # The requester sees no Approve button and may not post one.
    html = client.get("/approvals").text
    assert "yours: another person decides" in html
    r = client.post(f"/approvals/{approval.id}/approve", data={"csrf": csrf_of(html)})
    assert r.status_code == 403


def test_support_refund_within_the_limit_runs_at_once(
    client: TestClient, seeded: RefundKit
) -> None:
    sign_in(client, "sam")
    data = refund_form(client, INVOICE_PAYMENT, amount="20.00")
    assert client.post(f"/payments/{INVOICE_PAYMENT}/refund", data=data).status_code == 303
    assert [r.status.value for r in seeded.refunds()] == ["succeeded"]
    assert Approvals(seeded).find() == []


def test_billing_admin_approves_and_the_refund_runs_audited(
    client: TestClient, seeded: RefundKit
) -> None:
    ask_for_approval(client)
    approval_id = pending_id(seeded)
    token = sign_in(client, "ann")
    r = client.post(
        f"/approvals/{approval_id}/approve",
        data={"csrf": token, "note": "customer called", "back": f"/payments/{INVOICE_PAYMENT}"},
    )
    assert r.headers["location"] == f"/payments/{INVOICE_PAYMENT}"
    [refund] = seeded.refunds()
    assert (refund.amount, refund.status.value) == (usd("30.00"), "succeeded")
    assert refund.actor == "sam, approved by ann"
    approval = Approvals(seeded).get(approval_id)
    assert (approval.status, approval.decided_by, approval.refund_id) == (
        "approved", "ann", refund.id,
    )  # fmt: skip
    assert approval.decision_note == "customer called"
    assert approval.decided_at is not None
    html = client.get(f"/payments/{INVOICE_PAYMENT}").text
    assert "Approved. Refund of 30.00 USD went back to the card." in html
    assert "awaits approval" not in html
    # A second approver finds it decided: still one refund.
    token = sign_in(client, "bea")
    client.post(f"/approvals/{approval_id}/approve", data={"csrf": token})
    assert "already approved by ann" in client.get("/approvals").text
    assert len(seeded.refunds()) == 1


def test_rejecting_needs_a_reason_and_is_audited(client: TestClient, seeded: RefundKit) -> None:
    ask_for_approval(client)
    approval_id = pending_id(seeded)
    token = sign_in(client, "bea")
    client.post(f"/approvals/{approval_id}/reject", data={"csrf": token, "note": ""})
    assert Approvals(seeded).get(approval_id).status == "pending"
    client.post(f"/approvals/{approval_id}/reject", data={"csrf": token, "note": "duplicate"})
    approval = Approvals(seeded).get(approval_id)
    assert (approval.status, approval.decided_by, approval.decision_note) == (
        "rejected", "bea", "duplicate",
    )  # fmt: skip
    client.post(f"/approvals/{approval_id}/approve", data={"csrf": token})
    assert seeded.refunds() == []
    assert "already rejected by bea" in client.get("/approvals").text


def test_approval_checks_the_caps_when_approved_not_when_asked(
    client: TestClient, seeded: RefundKit
) -> None:
    """R-3.1: a pending approval holds nothing, so the refund made meanwhile leaves less; the
    approval is refused with the limit's sentence and stays pending (no over-refund)."""
    ask_for_approval(client, amount="100.00")
    approval_id = pending_id(seeded)
    seeded.refund(INVOICE_PAYMENT, usd("50.00"), reason="meanwhile")
    token = sign_in(client, "ann")
    client.post(f"/approvals/{approval_id}/approve", data={"csrf": token})
    html = client.get("/approvals").text
    assert "100.00 USD is more than the 70.00 USD that may be refunded." in html
    assert Approvals(seeded).get(approval_id).status == "pending"
    assert sum(r.amount.amount for r in seeded.refunds()) == 5000


def test_four_eyes_the_requester_never_decides(seeded: RefundKit) -> None:
    approvals = Approvals(seeded)
    a = approvals.request(INVOICE_PAYMENT, usd("5.00"), reason="r", requested_by="ann")
    with pytest.raises(ApprovalRefused, match="four eyes"):
        approvals.approve(a.id, approver="ann")
    with pytest.raises(ApprovalRefused, match="four eyes"):
        approvals.reject(a.id, approver="ann", note="no")
    assert seeded.refunds() == []
    assert approvals.get(a.id).status == "pending"


def test_four_eyes_holds_in_the_database_too(seeded: RefundKit) -> None:
    import sqlalchemy as sa

    from refundkit._schema import refund_approvals

    a = Approvals(seeded).request(INVOICE_PAYMENT, usd("5.00"), reason="r", requested_by="ann")
    with pytest.raises(sa.exc.IntegrityError), seeded.store.connect() as conn:
        conn.execute(
            refund_approvals.update()
            .where(refund_approvals.c.id == a.id)
            .values(status="rejected", decided_by="ann")
        )


def test_approving_again_after_a_crash_replays_the_same_refund(seeded: RefundKit) -> None:
    """R-1.1: the refund's idempotency key comes from the approval, so an approval left
    ``approving`` (crash after the refund) finishes with the same refund, not a second one."""
    approvals = Approvals(seeded)
    a = approvals.request(INVOICE_PAYMENT, usd("25.00"), reason="r", requested_by="sam")
    first = seeded.refund(
        INVOICE_PAYMENT, usd("25.00"), reason="r", idempotency_key=a.idempotency_key,
        actor="sam, approved by ann",
    )  # fmt: skip
    approvals._set(a.id, ("pending",), status="approving")  # as the crashed approval left it
    refund = approvals.approve(a.id, approver="ann")
    assert refund.id == first.id
    assert len(seeded.refunds()) == 1
    assert approvals.get(a.id).status == "approved"


def test_asking_for_more_than_the_maximum_is_refused_at_once(seeded: RefundKit) -> None:
    with pytest.raises(InsufficientRefundableBalance, match=r"more than the 120\.00 USD"):
        Approvals(seeded).request(INVOICE_PAYMENT, usd("500.00"), reason="r", requested_by="s")
    assert Approvals(seeded).find() == []


# --- customers and the balance planner --------------------------------------------------------


def test_customer_page_shows_balance_lots_and_their_funding_payments(client: TestClient) -> None:
    sign_in(client, "vic")
    html = client.get(f"/customers/{CUSTOMER}").text
    assert "<strong>35.00 USD</strong>" in html
    assert f'<a href="/payments/{BALANCE_PAYMENT}">{BALANCE_PAYMENT}</a>' in html
    assert "mastercard •••• 4444" in html
    assert 'id="plan-form"' not in html  # a viewer gets no refund form


def test_balance_refund_previews_the_plan_before_executing(
    client: TestClient, seeded: RefundKit
) -> None:
    token = sign_in(client, "ann")
    r = client.post(
        f"/customers/{CUSTOMER}/preview", data={"csrf": token, "amount": "30.00", "currency": "USD"}
    )
    assert r.status_code == 200
    assert "Preview: 30.00 USD back to the cards" in r.text
    assert seeded.refunds() == []  # nothing yet
    plan = r.text.split('name="plan" value="', 1)[1].split('"', 1)[0]
    import html as html_mod

    r = client.post(
        f"/customers/{CUSTOMER}/refund-balance",
        data={"csrf": token, "plan": html_mod.unescape(plan), "reason": "account_closed"},
    )
    assert r.status_code == 303
    [refund] = seeded.refunds()
    assert (refund.payment_id, refund.amount, refund.actor) == (BALANCE_PAYMENT, usd("30"), "ann")
    assert seeded.balance(CUSTOMER).totals["USD"] == usd("5.00")


# --- balance approvals: a support user's balance refund above the limit waits -----------------

SECOND_TOP_UP = "pay_bal_2"


def preview_plan(client: TestClient, token: str, amount: str) -> str:
    """The plan JSON the preview puts in its confirm form."""
    import html as html_mod

    r = client.post(
        f"/customers/{CUSTOMER}/preview", data={"csrf": token, "amount": amount, "currency": "USD"}
    )
    assert r.status_code == 200, r.text
    return html_mod.unescape(r.text.split('name="plan" value="', 1)[1].split('"', 1)[0])


def ask_for_balance_approval(client: TestClient, kit: RefundKit, amount: str = "30.00") -> str:
    """Sam previews ``amount`` of the balance and confirms: it waits. Returns its id."""
    token = sign_in(client, "sam")
    plan = preview_plan(client, token, amount)
    r = client.post(
        f"/customers/{CUSTOMER}/refund-balance",
        data={"csrf": token, "plan": plan, "reason": "account_closed"},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/customers/{CUSTOMER}"
    html = client.get(f"/customers/{CUSTOMER}").text
    assert (
        f"{amount} USD of {CUSTOMER}&#39;s balance awaits approval (asked by sam); it is not held"
        in html
    )
    [approval] = Approvals(kit).find(customer_id=CUSTOMER)
    return approval.id


def second_top_up(kit: RefundKit, clock: FakeClock) -> None:
    """A newer top-up of 20.00: the balance is 55.00 in two lots, newest first pay_bal_2."""
    clock.advance(days=1)
    kit.record_payment(
        id=SECOND_TOP_UP, customer_id=CUSTOMER, amount=usd("20.00"), gateway="sandbox",
        gateway_payment_id="sbx_ch_bal_2", destination=Destination.CUSTOMER_BALANCE,
        card=Card(brand="visa", last4="1111", exp_month=1, exp_year=2031),
    )  # fmt: skip
    assert kit.balance(CUSTOMER).totals["USD"] == usd("55.00")


def test_support_balance_refund_above_the_limit_waits_for_approval(
    client: TestClient, seeded: RefundKit
) -> None:
    """Was refused outright ("above your limit ... without approval"); now it waits, holding
    nothing, like a payment refund."""
    approval_id = ask_for_balance_approval(client, seeded)
    assert seeded.refunds() == []
    assert seeded.balance(CUSTOMER).totals["USD"] == usd("35.00")  # not held
    approval = Approvals(seeded).get(approval_id)
    assert (approval.kind, approval.customer_id, approval.payment_id) == (
        "balance", CUSTOMER, None,
    )  # fmt: skip
    assert (approval.amount, approval.strategy, approval.reason) == (
        usd("30.00"), "newest_first", "account_closed",
    )  # fmt: skip
    assert (approval.status, approval.requested_by, approval.plan) == ("pending", "sam", None)
    html = client.get("/approvals").text
    assert f'balance of <a href="/customers/{CUSTOMER}">{CUSTOMER}</a>' in html
    assert "yours: another person decides" in html
    r = client.post(f"/approvals/{approval_id}/approve", data={"csrf": csrf_of(html)})
    assert r.status_code == 403  # support may not approve at all
    assert seeded.refunds() == []


def test_support_balance_refund_within_the_limit_runs_at_once(
    client: TestClient, seeded: RefundKit
) -> None:
    token = sign_in(client, "sam")
    plan = preview_plan(client, token, "20.00")
    r = client.post(
        f"/customers/{CUSTOMER}/refund-balance", data={"csrf": token, "plan": plan, "reason": "x"}
    )
    assert r.status_code == 303
    [refund] = seeded.refunds()
    assert (refund.amount, refund.actor) == (usd("20.00"), "sam")
    assert Approvals(seeded).find() == []


def test_billing_admin_approves_a_balance_refund_and_its_legs_run(
    client: TestClient, seeded: RefundKit, clock: FakeClock
) -> None:
    second_top_up(seeded, clock)
    approval_id = ask_for_balance_approval(client, seeded, "45.00")
    token = sign_in(client, "ann")
    assert 'action="/approvals/' in client.get(f"/customers/{CUSTOMER}").text  # decide here
    r = client.post(
        f"/approvals/{approval_id}/approve",
        data={"csrf": token, "note": "closing", "back": f"/customers/{CUSTOMER}"},
    )
    assert r.headers["location"] == f"/customers/{CUSTOMER}"
    # Planned now, newest lot first: 20.00 back to pay_bal_2, 25.00 to pay_bal_1.
    refunds = {r.payment_id: r for r in seeded.refunds()}
    assert {p: (r.amount, r.status.value) for p, r in refunds.items()} == {
        SECOND_TOP_UP: (usd("20.00"), "succeeded"),
        BALANCE_PAYMENT: (usd("25.00"), "succeeded"),
    }
    assert {(r.actor, r.reason) for r in refunds.values()} == {
        ("sam, approved by ann", "account_closed")
    }
    assert seeded.balance(CUSTOMER).totals["USD"] == usd("10.00")
    approval = Approvals(seeded).get(approval_id)
    assert (approval.status, approval.decided_by, approval.decision_note) == (
        "approved", "ann", "closing",
    )  # fmt: skip
    assert approval.plan is not None
    assert [(leg.payment_id, leg.amount) for leg in approval.plan.legs] == [
        (SECOND_TOP_UP, usd("20.00")), (BALANCE_PAYMENT, usd("25.00")),
    ]  # fmt: skip
    assert set(approval.refund_ids) == {r.id for r in refunds.values()}
    for i, leg in enumerate(approval.plan.legs):  # each leg ran under the stored plan's key
        assert refunds[leg.payment_id].idempotency_key == approval.plan.leg_key(i)
    for refund in refunds.values():  # journal and events, through the kit
        lines = seeded.journal(refund.id)
        debits = sum(x.amount.amount for x in lines if x.side == "debit")
        assert debits == refund.amount.amount
        assert debits == sum(x.amount.amount for x in lines if x.side == "credit")
        assert [e.type for e in seeded.events(refund_id=refund.id)] == ["charge.refunded"]
    html = client.get(f"/customers/{CUSTOMER}").text
    assert (
        f"Approved. Balance refund: 20.00 USD to {SECOND_TOP_UP}: succeeded, "
        f"25.00 USD to {BALANCE_PAYMENT}: succeeded."
    ) in html
    assert "awaits approval" not in html
    audit = client.get("/approvals").text
    assert all(r.id in audit for r in refunds.values())
    assert approval.plan.id in audit
    # A second approver finds it decided: still one set of refunds.
    token = sign_in(client, "bea")
    client.post(f"/approvals/{approval_id}/approve", data={"csrf": token})
    assert "already approved by ann" in client.get("/approvals").text
    assert len(seeded.refunds()) == 2


def test_balance_approval_four_eyes(seeded: RefundKit) -> None:
    approvals = Approvals(seeded)
    a = approvals.request_balance(CUSTOMER, usd("30.00"), reason="r", requested_by="ann")
    with pytest.raises(ApprovalRefused, match="four eyes"):
        approvals.approve_balance(a.id, approver="ann")
    with pytest.raises(ApprovalRefused, match="four eyes"):
        approvals.reject(a.id, approver="ann", note="no")
    assert seeded.refunds() == []
    assert (approvals.get(a.id).status, approvals.get(a.id).plan) == ("pending", None)


def test_approving_a_balance_approval_twice_makes_one_set_of_refunds(
    seeded: RefundKit, clock: FakeClock
) -> None:
    second_top_up(seeded, clock)
    approvals = Approvals(seeded)
    a = approvals.request_balance(CUSTOMER, usd("45.00"), reason="r", requested_by="sam")
    first = approvals.approve_balance(a.id, approver="ann")
    with pytest.raises(ApprovalRefused, match="already approved by ann"):
        approvals.approve_balance(a.id, approver="bea")
    assert sorted(r.id for r in seeded.refunds()) == sorted(
        leg.refund_id for leg in first.legs if leg.refund_id
    )
    assert len(seeded.refunds()) == 2


class Crash(Exception):
    """A process dying at a chosen point (not a RefundkitError: nothing handles it)."""


def crash(*args: object, **kwargs: object) -> NoReturn:
    raise Crash


def test_a_crash_between_claim_and_execute_replays_the_stored_plan(
    seeded: RefundKit, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan is stored as the approval is claimed; approving again (anyone but the asker)
    executes that SAME plan, even though the balance grew meanwhile (a new plan would differ)."""
    approvals = Approvals(seeded)
    a = approvals.request_balance(CUSTOMER, usd("30.00"), reason="r", requested_by="sam")

    monkeypatch.setattr(seeded, "execute", crash)
    with pytest.raises(Crash):
        approvals.approve_balance(a.id, approver="ann")
    monkeypatch.undo()
    claimed = approvals.get(a.id)
    assert claimed.status == "approving"
    assert claimed.plan is not None
    assert seeded.refunds() == []
    second_top_up(seeded, clock)  # newest first would now take pay_bal_2 first
    result = approvals.approve_balance(a.id, approver="bea")
    assert result.plan_id == claimed.plan.id
    [refund] = seeded.refunds()
    assert (refund.payment_id, refund.amount) == (BALANCE_PAYMENT, usd("30.00"))
    assert refund.idempotency_key == claimed.plan.leg_key(0)
    done = approvals.get(a.id)
    assert (done.status, done.decided_by, done.refund_ids) == ("approved", "bea", (refund.id,))


def test_a_crash_after_execute_replays_the_legs_without_new_refunds(
    seeded: RefundKit, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    second_top_up(seeded, clock)
    approvals = Approvals(seeded)
    a = approvals.request_balance(CUSTOMER, usd("45.00"), reason="r", requested_by="sam")
    execute = seeded.execute

    def execute_then_crash(*args: Any, **kwargs: Any) -> None:
        execute(*args, **kwargs)
        raise Crash

    monkeypatch.setattr(seeded, "execute", execute_then_crash)
    with pytest.raises(Crash):
        approvals.approve_balance(a.id, approver="ann")
    monkeypatch.undo()
    made = sorted(r.id for r in seeded.refunds())
    assert len(made) == 2
    assert approvals.get(a.id).status == "approving"
    result = approvals.approve_balance(a.id, approver="ann")
    assert sorted(r.id for r in seeded.refunds()) == made  # replayed, nothing new
    assert sorted(leg.refund_id or "" for leg in result.legs) == made
    assert sorted(approvals.get(a.id).refund_ids) == made


def test_rejecting_a_balance_approval_needs_a_reason_and_is_audited(
    client: TestClient, seeded: RefundKit
) -> None:
    approval_id = ask_for_balance_approval(client, seeded)
    token = sign_in(client, "bea")
    back = f"/customers/{CUSTOMER}"
    client.post(f"/approvals/{approval_id}/reject", data={"csrf": token, "note": "", "back": back})
    assert Approvals(seeded).get(approval_id).status == "pending"
    r = client.post(
        f"/approvals/{approval_id}/reject", data={"csrf": token, "note": "duplicate", "back": back}
    )
    assert r.headers["location"] == back
    assert "Rejected the balance refund of 30.00 USD." in client.get(back).text
    approval = Approvals(seeded).get(approval_id)
    assert (approval.status, approval.decided_by, approval.decision_note) == (
        "rejected", "bea", "duplicate",
    )  # fmt: skip
    assert approval.decided_at is not None
    client.post(f"/approvals/{approval_id}/approve", data={"csrf": token})
    assert seeded.refunds() == []
    assert "already rejected by bea" in client.get("/approvals").text


def test_balance_spent_meanwhile_refuses_the_approval_and_it_stays_pending(
    client: TestClient, seeded: RefundKit
) -> None:
    """Nothing is held: the balance spent meanwhile leaves too little, so approving is refused
    with the planner's sentence, writes nothing and the approval stays pending."""
    approval_id = ask_for_balance_approval(client, seeded, "30.00")
    seeded.redeem_balance(CUSTOMER, usd("20.00"), reference="inv_1004")  # 15.00 left
    sentence = seeded.plan_refund(CUSTOMER, usd("30.00"), scope="balance").reason
    assert sentence
    token = sign_in(client, "ann")
    client.post(f"/approvals/{approval_id}/approve", data={"csrf": token})
    assert str(escape(sentence)) in client.get("/approvals").text
    approval = Approvals(seeded).get(approval_id)
    assert (approval.status, approval.plan, approval.decided_by) == ("pending", None, None)
    assert seeded.refunds() == []
    assert seeded.balance(CUSTOMER).totals["USD"] == usd("15.00")


def test_asking_for_more_than_the_balance_is_refused_at_once(
    client: TestClient, seeded: RefundKit
) -> None:
    """The asker's plan no longer fits when confirmed: the planner's sentence, no approval."""
    token = sign_in(client, "sam")
    plan = preview_plan(client, token, "30.00")
    seeded.redeem_balance(CUSTOMER, usd("20.00"), reference="inv_1004")
    sentence = seeded.plan_refund(CUSTOMER, usd("30.00"), scope="balance").reason
    assert sentence
    r = client.post(
        f"/customers/{CUSTOMER}/refund-balance", data={"csrf": token, "plan": plan, "reason": "x"}
    )
    assert r.status_code == 400
    assert str(escape(sentence)) in r.text
    assert Approvals(seeded).find() == []
    with pytest.raises(InsufficientRefundableBalance):
        Approvals(seeded).request_balance(CUSTOMER, usd("500.00"), reason="r", requested_by="sam")
    assert Approvals(seeded).find() == []


def test_a_stale_stored_plan_sends_the_approval_back_to_pending(
    seeded: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claimed (then a crash), and the balance spent before it ran: its stored plan is stale,
    no leg ran, so nothing was written and it waits again; approving plans anew then."""
    approvals = Approvals(seeded)
    a = approvals.request_balance(CUSTOMER, usd("30.00"), reason="r", requested_by="sam")
    monkeypatch.setattr(seeded, "execute", crash)
    with pytest.raises(Crash):
        approvals.approve_balance(a.id, approver="ann")
    monkeypatch.undo()
    seeded.redeem_balance(CUSTOMER, usd("10.00"), reference="inv_1004")  # 25.00 left
    with pytest.raises(StalePlan, match="pending again"):
        approvals.approve_balance(a.id, approver="ann")
    assert (approvals.get(a.id).status, approvals.get(a.id).plan) == ("pending", None)
    assert seeded.refunds() == []
    with pytest.raises(InsufficientRefundableBalance):
        approvals.approve_balance(a.id, approver="ann")
    assert approvals.get(a.id).status == "pending"


def test_a_policy_refusal_of_every_leg_sends_the_approval_back_to_pending(
    seeded: RefundKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The funding payment disputed between claim and execute: its leg is refused by the
    policy, nothing is written, the approval is pending again and can still be rejected."""
    from refundkit.gateways.sandbox import SandboxGateway

    approvals = Approvals(seeded)
    a = approvals.request_balance(CUSTOMER, usd("30.00"), reason="r", requested_by="sam")
    monkeypatch.setattr(seeded, "execute", crash)
    with pytest.raises(Crash):
        approvals.approve_balance(a.id, approver="ann")
    monkeypatch.undo()
    sandbox = seeded.gateway("sandbox")
    assert isinstance(sandbox, SandboxGateway)
    sandbox.set_disputed("sbx_ch_bal_1")
    assert seeded.refresh_payment(BALANCE_PAYMENT).disputed
    with pytest.raises(RefundNotAllowed):
        approvals.approve_balance(a.id, approver="ann")
    assert (approvals.get(a.id).status, approvals.get(a.id).plan) == ("pending", None)
    assert seeded.refunds() == []
    approvals.reject(a.id, approver="bea", note="disputed")
    assert approvals.get(a.id).status == "rejected"


def test_a_balance_approval_is_one_kind_in_the_database_too(seeded: RefundKit) -> None:
    """CHECKs: a balance approval names no payment, and one approving keeps its plan."""
    import sqlalchemy as sa

    from refundkit._schema import refund_approvals as t

    a = Approvals(seeded).request_balance(CUSTOMER, usd("30.00"), reason="r", requested_by="s")
    for values in ({"payment_id": BALANCE_PAYMENT}, {"status": "approving"}, {"kind": "payment"}):
        with pytest.raises(sa.exc.IntegrityError), seeded.store.connect() as conn:
            conn.execute(t.update().where(t.c.id == a.id).values(**values))
    assert Approvals(seeded).get(a.id) == a


# --- manual review: a billing admin decides ----------------------------------------------------


def in_manual_review(kit: RefundKit, clock: FakeClock) -> str:
    """A 10.95 refund of the invoice payment that timed out before the sandbox applied it,
    given up on by recovery."""
    kit.retry_schedule = (timedelta(minutes=1),)
    rid = kit.refund(INVOICE_PAYMENT, usd("10.95")).id
    clock.advance(days=2)  # past the sandbox's key window: recovery only looks up
    kit.recover(force=True)
    assert kit.get_refund(rid).status.value == "manual_review"
    return rid


def test_a_billing_admin_resolves_a_refund_in_manual_review(
    client: TestClient, seeded: RefundKit, clock: FakeClock
) -> None:
    rid = in_manual_review(seeded, clock)
    token = sign_in(client, "ann")
    page = client.get(f"/payments/{INVOICE_PAYMENT}").text
    assert f'action="/refunds/{rid}/resolve"' in page
    url = f"/refunds/{rid}/resolve"
    said = {"csrf": token, "note": "seen in the dashboard"}
    r = client.post(url, data={**said, "outcome": "succeeded"})  # the gateway never saw it
    assert r.status_code == 303
    assert "not succeeded; nothing was changed" in client.get(r.headers["location"]).text
    assert seeded.get_refund(rid).status.value == "manual_review"
    r = client.post(url, data={**said, "outcome": "failed"})
    page = client.get(r.headers["location"]).text
    assert "Resolved as failed: 10.95 USD." in page
    assert "decided by ann: seen in the dashboard" in page  # the history says who decided
    assert seeded.get_refund(rid).status.value == "failed"
    resolution = seeded.resolution(rid)
    assert resolution is not None
    assert (resolution["resolved_by"], resolution["note"]) == ("ann", "seen in the dashboard")


def test_only_a_billing_admin_sees_and_may_post_the_resolve_form(
    client: TestClient, seeded: RefundKit, clock: FakeClock
) -> None:
    rid = in_manual_review(seeded, clock)
    token = sign_in(client, "sam")
    assert "/resolve" not in client.get(f"/payments/{INVOICE_PAYMENT}").text
    r = client.post(
        f"/refunds/{rid}/resolve", data={"csrf": token, "note": "n", "outcome": "failed"}
    )
    assert r.status_code == 403
    assert seeded.get_refund(rid).status.value == "manual_review"


# --- configuration ----------------------------------------------------------------------------

GOOD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"


def config(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "secret_key": "s" * 40,
        "users": [{"name": "ann", "role": "billing_admin", "password_hash": GOOD_HASH}],
    }
    return base | over


def test_config_reads_users_roles_and_limits() -> None:
    s = settings_from_config(config(support_refund_limit={"usd": "100.00", "JPY": "5000"}))
    assert s.users["ann"].role == "billing_admin"
    assert s.refund_limit("support", "USD") == usd("100.00")
    assert s.refund_limit("support", "JPY") == Money(5000, "JPY")
    assert s.refund_limit("support", "EUR") == Money.zero("EUR")  # not listed: always approval
    assert s.refund_limit("billing_admin", "USD") is None
    one = settings_from_config(config(support_refund_limit="25.50 EUR"))
    assert one.support_limits == {"EUR": Money.parse("25.50", "EUR")}
    assert "password_hash" not in repr(s.users["ann"])
    assert "s" * 40 not in repr(s)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"secret_key": "short"}, "at least 32 characters"),
        ({"users": []}, "at least one"),
        ({"users": [{"name": "a", "role": "root", "password_hash": GOOD_HASH}]}, "role must be"),
        ({"users": [{"name": "a", "role": "viewer", "password_hash": "plain"}]}, "argon2 hash"),
        (
            {"users": [{"name": "a", "role": "viewer", "password_hash": GOOD_HASH}] * 2},
            "listed twice",
        ),
        ({"support_refund_limit": {"USD": 100.0}}, "as strings"),
        ({"support_refund_limit": "100.00 XXY"}, "support_refund_limit"),
        ({"support_refund_limit": "-1.00 USD"}, "cannot be negative"),
        ({"support_refund_limit": 100}, "support_refund_limit must be"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    over: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings_from_config(config(**over))


def test_cli_hash_password_reads_a_prompt_and_verifies() -> None:
    from argon2 import PasswordHasher
    from click.testing import CliRunner

    from refundkit.cli import cli

    r = CliRunner().invoke(cli, ["dashboard", "hash-password"], input="s3cret-pass\ns3cret-pass\n")
    assert r.exit_code == 0, r.output
    hashed = r.output.strip().splitlines()[-1]
    assert PasswordHasher().verify(hashed, "s3cret-pass")
    short = CliRunner().invoke(cli, ["dashboard", "hash-password"], input="abc\nabc\n")
    assert short.exit_code == 2
    assert "at least 8 characters" in short.output


def test_cli_serve_refuses_a_missing_dashboard_configuration(tmp_path: object) -> None:
    from click.testing import CliRunner

    from refundkit.cli import cli

    r = CliRunner().invoke(
        cli, ["serve", "--db", "sqlite:///:memory:"], env={"REFUNDKIT_CONFIG": ""}
    )
    assert r.exit_code == 2
    assert "secret_key" in r.output


def test_serve_demo_store_and_users_work(tmp_path: Path) -> None:
    """`refundkit serve --demo`: the demo store has refundable payments and the printed demo
    users sign in with the printed passwords."""
    from refundkit.dashboard import _serve

    demo = _serve.open_demo(tmp_path)
    try:
        banner = "\n".join(_serve.demo_banner(demo, "http://127.0.0.1:8000/"))
        with TestClient(create_app(demo.kit, demo.settings), follow_redirects=False) as c:
            for name, role, password in _serve.DEMO_USERS:
                assert f"{name:<8} {password:<13} {role}" in banner
                token = csrf_of(c.get("/login").text)
                r = c.post("/login", data={"name": name, "password": password, "csrf": token})
                assert r.status_code == 303, name
            html = c.get("/payments").text
            assert html.count('href="/payments/pay_') == 3
            assert ">Refund</button>" not in c.get("/payments/pay_1003").text  # viewer
    finally:
        demo.kit.close()


def test_an_approval_being_approved_cannot_be_rejected(seeded: RefundKit) -> None:
    approvals = Approvals(seeded)
    a = approvals.request(INVOICE_PAYMENT, usd("25.00"), reason="r", requested_by="sam")
    approvals._set(a.id, ("pending",), status="approving")  # ann's approval under way
    with pytest.raises(ApprovalRefused, match="already approving"):
        approvals.reject(a.id, approver="bea", note="no")


@pytest.mark.parametrize(
    ("amount", "status", "words"),
    [
        ("1.91", "failed", "failed: nothing was refunded"),
        ("25.92", "pending", "is pending: the gateway confirms later"),
        ("1.94", "unknown", "has an unknown outcome: recovery will ask the gateway"),
    ],
)
def test_after_submitting_the_page_says_the_refunds_status(
    client: TestClient, seeded: RefundKit, amount: str, status: str, words: str
) -> None:
    """The sandbox's magic amounts give each outcome; the page names it in words."""
    sign_in(client, "ann")
    data = refund_form(client, INVOICE_PAYMENT, amount=amount)
    assert client.post(f"/payments/{INVOICE_PAYMENT}/refund", data=data).status_code == 303
    [refund] = seeded.refunds(INVOICE_PAYMENT)
    assert refund.status.value == status
    html = client.get(f"/payments/{INVOICE_PAYMENT}").text
    assert f"Refund of {amount} USD {words}" in html
    assert f'class="status {status}"' in html


def test_an_unknown_customer_is_a_404(client: TestClient) -> None:
    sign_in(client, "vic")
    r = client.get("/customers/cus_nobody")
    assert r.status_code == 404
    assert "no customer" in r.text


def test_importing_refundkit_and_its_cli_loads_no_web_stack() -> None:
    """The dashboard is imported only by `refundkit serve` and `refundkit dashboard ...`."""
    import subprocess
    import sys

    code = (
        "import refundkit, refundkit.cli, sys; "
        "web = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('starlette', 'jinja2', 'uvicorn', 'argon2', 'itsdangerous', 'multipart') "
        "or m.startswith(('refundkit.dashboard', 'refundkit._approvals'))); "
        "assert not web, web"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_serve_also_receives_gateway_webhooks(seeded: RefundKit, client: TestClient) -> None:
    """One `refundkit serve` carries POST /webhooks/{gateway}: signed updates are applied
    without a session or CSRF token (the gateway's signature is the check), bad ones are 400."""
    from refundkit.gateways.sandbox import SandboxGateway

    sandbox = seeded.gateway("sandbox")
    assert isinstance(sandbox, SandboxGateway)
    sandbox.script("pending_succeed")
    refund = seeded.refund(INVOICE_PAYMENT, usd("1.00"))
    assert refund.status.value == "pending"
    [(headers, body)] = sandbox.settle_pending()

    bad = client.post("/webhooks/sandbox", headers=dict(headers), content=body + b" ")
    assert bad.status_code == 400
    assert seeded.get_refund(refund.id).status.value == "pending"

    good = client.post("/webhooks/sandbox", headers=dict(headers), content=body)
    assert good.status_code == 200, good.text
    assert seeded.get_refund(refund.id).status.value == "succeeded"


def test_gateway_webhooks_can_be_left_out(seeded: RefundKit) -> None:
    app = create_app(seeded, settings(), gateway_webhooks=False)
    with TestClient(app, follow_redirects=False) as c:
        assert c.post("/webhooks/sandbox", content=b"{}").status_code in (403, 404, 405)

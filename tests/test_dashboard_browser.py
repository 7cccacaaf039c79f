"""The dashboard in a real browser: Playwright drives Debian's headless Chromium against the app
served by uvicorn on a loopback port. One server and one browser for the module; each test
gets its own browser context (its own session cookie). The tests run in order on one store.

They save screenshots of the main pages to docs/images/, which docs/dashboard.md shows
(``REFUNDKIT_UPDATE_SCREENSHOTS=1`` replaces the committed ones).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from refundkit import RefundKit
from refundkit._approvals import Approvals
from refundkit.dashboard import create_app

from ._dashboard import BALANCE_PAYMENT, CUSTOMER, INVOICE_PAYMENT, USERS, seed, settings
from .conftest import FakeClock

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
VIEWPORT = {"width": 1200, "height": 860}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RefundKit]:
    path = tmp_path_factory.mktemp("browser") / "kit.db"
    kit = RefundKit.open(f"sqlite:///{path}", autoload=False, clock=FakeClock(), retry_backoff=0)
    seed(kit)
    yield kit
    kit.close()


@pytest.fixture(scope="module")
def base_url(store: RefundKit) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(store, settings()), host="127.0.0.1", port=port, log_level="warning",
        lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # readiness, not a timed wait
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it: apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def sign_in(page: Page, name: str) -> None:
    page.goto("/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(USERS[name][1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Payments")).to_be_visible()


@pytest.fixture(scope="module", autouse=True)
def _shots_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> None:
    global SHOTS
    SHOTS = tmp_path_factory.mktemp("screenshots")


SHOTS = IMAGES


def shot(page: Page, name: str) -> None:
    """Screenshot a page for docs/dashboard.md. Ids differ on every run, so an existing
    picture is replaced only with REFUNDKIT_UPDATE_SCREENSHOTS=1 (the shot is taken anyway)."""
    target = IMAGES / f"dashboard-{name}.png"
    if target.exists() and os.environ.get("REFUNDKIT_UPDATE_SCREENSHOTS") != "1":
        target = SHOTS / target.name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 1000


def quote_headline(page: Page) -> str:
    return page.locator("#quote .headline").inner_text()


# --- in order, on one store ------------------------------------------------------------------


def test_sign_in_and_find_a_customer_balance_payment(page: Page) -> None:
    page.goto("/login")
    shot(page, "sign-in")
    sign_in(page, "sam")
    page.get_by_placeholder("customer, payment id or gateway id").fill("sbx_ch_bal")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#payments tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("customer balance")
    expect(rows.first).to_contain_text("mastercard •••• 4444")
    page.get_by_placeholder("customer, payment id or gateway id").fill("")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#payments tbody tr")).to_have_count(2)
    shot(page, "payments")
    page.get_by_role("link", name=BALANCE_PAYMENT).click()
    expect(page.get_by_role("heading", name=f"Payment {BALANCE_PAYMENT}")).to_be_visible()
    expect(page.get_by_role("button", name="Refund", exact=True)).to_be_visible()
    expect(page.get_by_label("Amount (USD)")).to_have_value("35.00")  # the quote's default
    expect(page.locator("#quote .limits li[data-code=customer_balance]")).to_contain_text(
        "inv_1003"
    )
    shot(page, "payment")


def test_partial_refund_shows_the_status_and_the_new_quote(page: Page, store: RefundKit) -> None:
    sign_in(page, "sam")
    page.goto(f"/payments/{BALANCE_PAYMENT}")
    assert quote_headline(page) == "Refundable: up to 35.00 USD."
    page.get_by_label("Amount (USD)").fill("10.00")
    page.get_by_label("Reason").fill("requested_by_customer")
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Refund of 10.00 USD went back to the card.")
    assert quote_headline(page) == "Refundable: up to 25.00 USD."
    expect(page.get_by_label("Amount (USD)")).to_have_value("25.00")
    [refund] = store.refunds(BALANCE_PAYMENT)
    expect(page.locator("#refunds")).to_contain_text(str(refund.gateway_refund_id))
    expect(page.locator("#refunds")).to_contain_text("succeeded")
    expect(page.locator("#journal")).to_contain_text("customer_balance:")
    shot(page, "refunded")


def test_more_than_the_maximum_shows_the_limits_sentence(page: Page, store: RefundKit) -> None:
    sign_in(page, "sam")
    page.goto(f"/payments/{BALANCE_PAYMENT}")
    page.get_by_label("Amount (USD)").fill("19.00")  # under sam's limit, over the quote
    page.get_by_label("Reason").fill("requested_by_customer")
    before = store.quote(BALANCE_PAYMENT)
    binding = [lim.message for lim in before.limits if lim.amount == before.max_amount]
    page.get_by_label("Amount (USD)").fill("26.00")
    page.get_by_role("button", name="Refund", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("26.00 USD is more than the 25.00 USD that may be refunded.")
    for message in binding:
        expect(alert).to_contain_text(message)
    assert len(store.refunds(BALANCE_PAYMENT)) == 1
    shot(page, "refused")


def test_support_large_refund_waits_and_a_billing_admin_approves(
    browser: Browser, base_url: str, page: Page, store: RefundKit
) -> None:
    sign_in(page, "sam")
    page.goto(f"/payments/{INVOICE_PAYMENT}")
    page.get_by_label("Amount (USD)").fill("60.00")
    page.get_by_label("Reason").fill("service_outage")
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("60.00 USD awaits approval (asked by sam)")
    expect(page.locator("#quote .awaiting")).to_contain_text("it is not held")
    assert store.refunds(INVOICE_PAYMENT) == []
    page.goto("/approvals")
    expect(page.locator("#pending")).to_contain_text("yours: another person decides")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)

    admin = browser.new_context(base_url=base_url, viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        ann = admin.new_page()
        sign_in(ann, "ann")
        ann.get_by_role("link", name="Approvals").click()
        expect(ann.locator("#pending tbody tr")).to_have_count(1)
        shot(ann, "approvals")
        ann.get_by_label("Approval note").fill("outage credit agreed")
        ann.get_by_role("button", name="Approve").click()
        expect(ann.get_by_role("status")).to_have_text(
            "Approved. Refund of 60.00 USD went back to the card."
        )
        expect(ann.locator("#audit")).to_contain_text("outage credit agreed")
    finally:
        admin.close()
    [refund] = store.refunds(INVOICE_PAYMENT)
    assert refund.actor == "sam, approved by ann"
    [approval] = Approvals(store).find(payment_id=INVOICE_PAYMENT)
    assert (approval.status, approval.decided_by, approval.refund_id) == (
        "approved", "ann", refund.id,
    )  # fmt: skip
    page.goto(f"/payments/{INVOICE_PAYMENT}")
    assert quote_headline(page) == "Refundable: up to 60.00 USD."
    expect(page.locator("#approvals")).to_contain_text("approved")


def test_viewer_sees_no_refund_button(page: Page) -> None:
    sign_in(page, "vic")
    page.goto(f"/payments/{INVOICE_PAYMENT}")
    expect(page.locator("#quote")).to_be_visible()
    expect(page.get_by_role("button", name="Refund", exact=True)).to_have_count(0)
    expect(page.get_by_text("Your role (viewer) cannot refund.")).to_be_visible()


def test_a_form_posted_without_its_csrf_token_is_refused(page: Page, store: RefundKit) -> None:
    sign_in(page, "ann")
    page.goto(f"/payments/{INVOICE_PAYMENT}")
    page.locator("#refund-form input[name=csrf]").evaluate("e => e.remove()")
    page.get_by_label("Amount (USD)").fill("5.00")
    page.get_by_label("Reason").fill("requested_by_customer")
    with page.expect_response(f"**/payments/{INVOICE_PAYMENT}/refund") as answer:
        page.get_by_role("button", name="Refund", exact=True).click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("not sent by this dashboard")
    assert len(store.refunds(INVOICE_PAYMENT)) == 1  # only the approved one


def test_customer_balance_refund_previews_before_executing(page: Page, store: RefundKit) -> None:
    sign_in(page, "ann")
    page.goto(f"/customers/{CUSTOMER}")
    expect(page.locator("#balance .totals")).to_have_text("25.00 USD")
    expect(page.locator("#lots")).to_contain_text(BALANCE_PAYMENT)
    page.locator("#plan-form").get_by_label("Amount").fill("5.00")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#plan")).to_contain_text("mastercard •••• 4444")
    assert len(store.refunds(BALANCE_PAYMENT)) == 1  # a preview refunds nothing
    shot(page, "customer")
    page.locator("#plan").get_by_label("Reason").fill("account_closed")
    page.get_by_role("button", name="Refund 5.00 USD").click()
    expect(page.get_by_role("status")).to_contain_text(f"5.00 USD to {BALANCE_PAYMENT}: succeeded")
    expect(page.locator("#balance .totals")).to_have_text("20.00 USD")

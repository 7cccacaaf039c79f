"""Inbound webhooks that are authentic but unreadable, and where the sandbox's route is served
(issue 14, docs/webhooks.md "Authentic but unreadable").

A correctly signed delivery whose body the plugin cannot read as the gateway's event was a
500 for Stripe and Adyen (an unknown currency, a field of the wrong type) and a 400 for the
sandbox: each gateway retried that poison message for days (Stripe 3, Adyen 30). Now it is
acknowledged with 200 and ``"unprocessable"``, kept in ``unprocessable_webhooks`` (never the
body: its SHA-256 and size), logged without card data, and nothing else is written. A delivery
that is not authentic is still refused with 400 and leaves no record.

The sandbox's route was mounted by every ``refundkit serve``, with a public default secret:
now ``/webhooks/sandbox`` answers only when the kit configures the sandbox (always in
``--demo``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from starlette.testclient import TestClient

import refundkit_adyen
import refundkit_stripe
from refundkit_stripe._webhooks import sign as stripe_sign

from refundkit import RefundKit, RefundStatus
from refundkit._pans import find_pans
from refundkit.asgi import webhook_app
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import TABLES, FakeClock, record, usd

PAN = "4111111111111111"
STRIPE_AT = 1_795_341_600
STRIPE_SECRET = "whsec_refundkit_test"
ADYEN_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"


def counts(kit: RefundKit) -> dict[str, int]:
    """Rows of the kit's tables (unprocessable_webhooks apart)."""
    with kit.store.connect() as conn:
        return {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES
        }


def recorded(kit: RefundKit) -> list[dict[str, Any]]:
    with kit.store.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM unprocessable_webhooks ORDER BY id"))
        return [dict(r) for r in rows.mappings()]


def client_of(kit: RefundKit) -> TestClient:
    return TestClient(webhook_app(kit), raise_server_exceptions=False)


# --- the sandbox ------------------------------------------------------------------------------


@pytest.fixture
def pending(kit: RefundKit, sandbox: SandboxGateway) -> str:
    record(kit)
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is RefundStatus.PENDING
    return refund.id


@pytest.mark.parametrize(
    "body",
    [
        b"NaN",
        f'{{"card": "{PAN}", "note": "not an event"}}'.encode(),
        b'{"id": "sbx_evt_1", "type": "refund.updated", "data": {"status": "succeeded",'
        b' "amount": 1.5, "currency": "USD"}}',
    ],
    ids=["not-json", "not-an-event-with-a-card-number", "float-amount"],
)
def test_a_signed_but_unreadable_sandbox_webhook_is_acknowledged_and_recorded(
    kit: RefundKit,
    sandbox: SandboxGateway,
    clock: FakeClock,
    pending: str,
    body: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = counts(kit)
    headers = {"sandbox-signature": sandbox.sign(body, int(clock.now.timestamp()))}
    r = client_of(kit).post("/webhooks/sandbox", headers=headers, content=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["received"] is True
    assert answer["refunds"] == []
    assert answer["unprocessable"]["code"] == "webhook_unprocessable"
    [row] = recorded(kit)
    assert (row["gateway"], row["error_code"]) == ("sandbox", "webhook_unprocessable")
    assert row["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert row["body_bytes"] == len(body)
    assert row["id"] == answer["unprocessable"]["record"]
    # Nothing else is written, and the refund waits for a readable update (or recovery).
    assert counts(kit) == before
    assert kit.get_refund(pending).status is RefundStatus.PENDING
    # One log line says so; no card number in it, in the answer or in the record.
    assert "acknowledged an unprocessable sandbox webhook" in caplog.text
    assert not find_pans(caplog.text + r.text + json.dumps(row, default=str))


def test_a_wrongly_signed_webhook_is_still_refused_and_not_recorded(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock, pending: str
) -> None:
    body = b"NaN"
    headers = {"sandbox-signature": sandbox.sign(body + b" ", int(clock.now.timestamp()))}
    r = client_of(kit).post("/webhooks/sandbox", headers=headers, content=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "webhook_verification_failed"
    assert recorded(kit) == []


def test_a_store_that_cannot_record_it_answers_500_so_the_gateway_retries(
    kit: RefundKit,
    sandbox: SandboxGateway,
    clock: FakeClock,
    pending: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from refundkit import _store
    from refundkit._errors import StoreUnavailable

    def down(*args: object) -> int:
        raise StoreUnavailable("the store is down")

    monkeypatch.setattr(_store, "insert_unprocessable_webhook", down)
    body = b"NaN"
    headers = {"sandbox-signature": sandbox.sign(body, int(clock.now.timestamp()))}
    r = client_of(kit).post("/webhooks/sandbox", headers=headers, content=body)
    assert r.status_code == 500


# --- Stripe and Adyen: their plugins, signed as the gateways sign -----------------------------


@pytest.fixture
def gateway_kit(db_url: str) -> Iterator[RefundKit]:
    kit = RefundKit.open(
        db_url,
        autoload=False,
        plugins=[refundkit_stripe, refundkit_adyen],
        gateways={
            "stripe": {
                "api_key": "sk_test_refundkit_placeholder",
                "webhook_secret": STRIPE_SECRET,
                "clock": lambda: datetime.fromtimestamp(STRIPE_AT, UTC),
            },
            "adyen": {"api_key": "test", "merchant_account": "Refundkit", "hmac_key": ADYEN_KEY},
        },
    )
    yield kit
    kit.close()


def stripe_delivery(refund: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    event = {"id": "evt_1", "object": "event", "type": "refund.updated",
             "data": {"object": {"id": "re_1", "object": "refund", **refund}}}  # fmt: skip
    body = json.dumps(event).encode()
    return {"Stripe-Signature": stripe_sign(body, STRIPE_SECRET, STRIPE_AT)}, body


def adyen_delivery(amount: dict[str, Any], psp: object = "P1") -> tuple[dict[str, str], bytes]:
    item: dict[str, Any] = {"eventCode": "REFUND", "success": "true", "pspReference": psp,
                            "merchantReference": "rf_1", "amount": amount}  # fmt: skip
    key = bytes.fromhex(ADYEN_KEY)
    item["additionalData"] = {"hmacSignature": refundkit_adyen.sign_notification_item(item, key)}
    body = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
    return {"Content-Type": "application/json"}, json.dumps(body).encode()


Delivery = tuple[str, Callable[[], tuple[dict[str, str], bytes]]]
DELIVERIES: dict[str, Delivery] = {
    "stripe-unknown-currency": (
        "stripe",
        lambda: stripe_delivery({"amount": 100, "currency": "zzz", "status": "succeeded"}),
    ),
    "stripe-status-not-a-string": (
        "stripe",
        lambda: stripe_delivery({"amount": 100, "currency": "usd", "status": ["succeeded"]}),
    ),
    "adyen-unknown-currency": (
        "adyen",
        lambda: adyen_delivery({"value": 100, "currency": "ZZZ"}),
    ),
}


@pytest.mark.parametrize("name", DELIVERIES)
def test_stripe_and_adyen_authentic_but_unreadable_webhooks_are_not_500(
    gateway_kit: RefundKit, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """They were 500 (an InvalidMoney or a TypeError out of the plugin's parse_webhook), and
    the gateway retried them for days; now 200, recorded, and nothing else written."""
    gateway, make = DELIVERIES[name]
    headers, body = make()
    before = counts(gateway_kit)
    r = client_of(gateway_kit).post(f"/webhooks/{gateway}", headers=headers, content=body)
    assert r.status_code == 200, r.text
    assert r.json()["unprocessable"]["code"] == "webhook_unprocessable"
    [row] = recorded(gateway_kit)
    assert row["gateway"] == gateway
    assert row["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert counts(gateway_kit) == before
    assert f"acknowledged an unprocessable {gateway} webhook" in caplog.text


def test_a_tampered_stripe_webhook_is_refused_and_not_recorded(gateway_kit: RefundKit) -> None:
    headers, body = stripe_delivery({"amount": 100, "currency": "zzz", "status": "succeeded"})
    r = client_of(gateway_kit).post("/webhooks/stripe", headers=headers, content=body + b" ")
    assert r.status_code == 400
    assert recorded(gateway_kit) == []


# --- the sandbox's route ----------------------------------------------------------------------


@pytest.fixture
def unconfigured(db_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[RefundKit]:
    """A kit as `refundkit serve` opens one without [gateways.sandbox]: the sandbox plugin is
    built in, so its payments can still be recorded, but it is not configured."""
    kit = RefundKit.open(db_url, autoload=False, clock=clock, retry_backoff=0)
    yield kit
    kit.close()


def forged_sandbox_settlement(kit: RefundKit) -> tuple[str, dict[str, str], bytes]:
    """A pending sandbox refund and its settlement, signed with the public default secret."""
    record(kit)
    sandbox = cast(SandboxGateway, kit.gateway("sandbox"))
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    [(headers, body)] = sandbox.settle_pending()
    return refund.id, dict(headers), body


def test_the_sandbox_route_is_not_served_unless_the_sandbox_is_configured(
    unconfigured: RefundKit,
) -> None:
    """Anyone who read the docs could sign sandbox webhooks with the default secret; a server
    whose kit does not configure the sandbox answers 404, as for a gateway not installed."""
    from refundkit.dashboard import create_app

    from ._dashboard import settings

    refund_id, headers, body = forged_sandbox_settlement(unconfigured)
    for app in (webhook_app(unconfigured), create_app(unconfigured, settings())):
        r = TestClient(app).post("/webhooks/sandbox", headers=headers, content=body)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "unknown_gateway"
    assert unconfigured.get_refund(refund_id).status is RefundStatus.PENDING


def test_the_sandbox_route_is_served_when_asked_or_configured(
    unconfigured: RefundKit, kit: RefundKit
) -> None:
    refund_id, headers, body = forged_sandbox_settlement(unconfigured)
    r = TestClient(webhook_app(unconfigured, sandbox=True)).post(
        "/webhooks/sandbox", headers=headers, content=body
    )
    assert r.status_code == 200
    assert unconfigured.get_refund(refund_id).status is RefundStatus.SUCCEEDED
    assert kit.runtime.gateways.configured("sandbox")  # the test kit configures it


def test_the_demo_serves_the_sandbox_route(tmp_path: Path) -> None:
    from refundkit.dashboard import _serve, create_app

    demo = _serve.open_demo(tmp_path)
    try:
        app = create_app(demo.kit, demo.settings)
        r = TestClient(app).post("/webhooks/sandbox", content=b"{}")
        assert r.status_code == 400  # served: the signature is what refuses this one
    finally:
        demo.kit.close()

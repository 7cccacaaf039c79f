"""Card numbers nowhere (issue 14). Requirements: reliability.md R-5.3 (inputs carrying card
data are refused before any persistence or logging) and R-5.4 (no sink holds a card number).

The rule (docs/facade.md, "Card data"): a card number is 13-19 digits, Luhn-valid, with an
issuer's prefix, written plain or in groups joined by spaces, dashes, dots, slashes or
underscores (mixed, 1-3 in a row), in any Unicode digits, URL-encoded or not. Every id,
reference, key, filter and line of free text that holds one is refused with
``CardDataRefused`` and is not echoed; logs redact one. Ids that are digit-heavy but no card
number pass: gateway ids (Adyen pspReferences start with 8 or 9), dated ids, timestamps.

The property tests generate card numbers (``tests/_cards.py``) for every text field of every
entry point: the facade (and approvals), the CLI, the dashboard's forms and query strings, and
inbound webhooks; then they scan every sink: all tables of the store, the sandbox gateway's
books, the events, delivered webhook bodies, the log records, the CLI's output, the dashboard's
pages and the server's access log line.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from refundkit import CardDataRefused, Destination, RefundKit
from refundkit._logs import LOGGERS, RedactCardNumbers
from refundkit._model import check_id, new_id
from refundkit._pans import REDACTED, find_pans, has_pan, is_pan, luhn_valid, redact_pans
from refundkit.gateways.sandbox import SandboxGateway

from ._cards import AccessLog, capture_access_log, luhn_complete, pans, url_encoded, written
from .conftest import record, row_counts, usd

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from starlette.testclient import TestClient

PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

#: Adyen pspReferences as recorded in ../shared/fixtures (OpenAPI examples, spree_adyen and
#: adyen-python-api-library webhooks), and 8815329842815468 (one of the same shape): 16
#: characters, digits first; none is a card number.
PSP_REFERENCES = (
    "8313547924770610",
    "8515208516304269",
    "8516091485743033",
    "851617892359708H",
    "851617892360718D",
    "8524873258461343",
    "8535296650153317",
    "8535762347980628",
    "8536173024791891",
    "861617275047284E",
    "8616178914061985",
    "861617892359057J",
    "861617892360059B",
    "861617892360062F",
    "8636172945333378",
    "8815517812932012",
    "881611827877203B",
    "8816118280275544",
    "8816178914079738",
    "881617892360409G",
    "881617892361436J",
    "882595494831959A",
    "882595499620961A",
    "882610009233471H",
    "9913140798220028",
    "9914748988390044",
    "991559660454807J",
    "9935272408535455",
    "993617894903480A",
    "993617894906488A",
    "993617895195570C",
    "993617895199574A",
    "993617895204576J",
    "993617895215577D",
    "8815329842815468",
)


# --- the finder -----------------------------------------------------------------------------


@given(pan=pans(), data=st.data())
@PROPERTY
def test_r5_4_every_written_card_number_is_found_and_redacted(
    pan: str, data: st.DataObject
) -> None:
    """R-5.4: plain, grouped, any separators (mixed), full-width, inside other text."""
    assert is_pan(pan)
    text = data.draw(written(pan))
    assert has_pan(text)
    assert pan in find_pans(text)
    redacted = redact_pans(text)
    assert REDACTED in redacted
    assert not has_pan(redacted)


@given(pan=pans(), plus=st.booleans())
@PROPERTY
def test_r5_4_a_url_encoded_card_number_is_found(pan: str, plus: bool) -> None:
    """R-5.4: a query string or a logged URL carries a card number URL-encoded."""
    text = "/payments?q=" + url_encoded(f"{pan[:4]} {pan[4:8]} {pan[8:]}", plus=plus)
    assert has_pan(text)
    assert not has_pan(redact_pans(text))


#: Digit-heavy ids that are no card numbers: accepted as ids, never redacted.
IDS = (
    *PSP_REFERENCES,
    "1754402620828",  # epoch milliseconds
    "1732271234567",
    "2026112210000012",  # a dated id
    "order_20261122100000123",
    "INV-2026-11-22-0000012345",
    "ch_3OxYz1234567890AbCdEfGh",
    "pi_3Ox1234567890123abc",
    luhn_complete("411111111111111") + "123456",  # 22 digits in a row: no card number
)
#: Free text with long digit runs that is no card number.
TEXTS = (
    "2026-11-22T10:00:00.123456+00:00",
    "2026.11.22 10.00.00",
    "12,345,678,901,234.56 USD",
    "411111…1111",  # a masked card: first 6 + last 4
    "411111 1111",
    "4111 1111 1111 111" + str((int(luhn_complete("411111111111111")[-1]) + 1) % 10),  # no Luhn
    "ticket 1732271234567 of 2026-11-22",
)


@pytest.mark.parametrize("value", IDS)
def test_digit_heavy_ids_are_accepted_and_never_redacted(value: str) -> None:
    """Gateway ids, Adyen pspReferences (8 or 9 first; the 15-digit run of 993617895204576J
    passes the Luhn check), dated ids, epoch stamps."""
    assert check_id(value, "gateway payment id") == value
    assert redact_pans(value) == value


@pytest.mark.parametrize("value", TEXTS)
def test_timestamps_amounts_and_masked_cards_in_text_are_not_card_numbers(value: str) -> None:
    assert not has_pan(value)
    assert redact_pans(value) == value


def test_the_recorded_psp_reference_that_holds_a_luhn_valid_run_is_accepted() -> None:
    """Why the issuer prefix matters: Adyen's own example pspReference would be refused by a
    Luhn-only rule, and a real gateway payment id must be recorded."""
    assert luhn_valid("993617895204576")
    assert check_id("993617895204576J", "gateway payment id") == "993617895204576J"


def test_redaction_keeps_the_digits_around_a_card_number() -> None:
    pan = luhn_complete("411111111111111")
    text = f"exp 12/2030 card {pan[:4]}.{pan[4:8]}.{pan[8:12]}.{pan[12:]} on 2026-11-22"
    assert redact_pans(text) == f"exp 12/2030 card {REDACTED} on 2026-11-22"


def test_new_ids_never_join_a_suffix_into_a_card_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan leg's key is ``<plan id>.<n>``: a token ending in digits could make one."""
    import secrets

    ends_in_digits = "abcdef" + "4" * 6 + "401288888888"  # + ".1" would be Luhn-valid digits
    draws = iter([ends_in_digits, "0123456789ab" * 2])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(draws))
    assert new_id("pln_") == "pln_0123456789ab0123456789ab"
    monkeypatch.undo()
    assert all(not new_id("pln_")[-1].isdigit() for _ in range(200))


def test_the_finder_is_fast_enough_for_every_input() -> None:
    """It runs on every id and line of text, and on every log record."""
    line = "refund rf_0a1b2c3d of pay_123 for 12.34 USD at 2026-11-22 10:00:00 by support:alice"
    start = time.perf_counter()
    for _ in range(10_000):
        has_pan(line)
    assert (time.perf_counter() - start) / 10_000 < 50e-6  # well under 50 µs a line
    start = time.perf_counter()
    has_pan("1 2 " * 50_000)  # a hostile 200 kB of digit groups
    assert time.perf_counter() - start < 5.0  # linear: about 0.5 s here, on a shared machine


# --- logs -----------------------------------------------------------------------------------


def test_r5_4_every_refundkit_logger_and_the_servers_carry_the_filter() -> None:
    """A filter on a logger sees only records logged through it: each logger has its own."""
    import refundkit.asgi
    import refundkit.cli
    import refundkit.dashboard

    refundkit.cli.cli  # noqa: B018
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "refundkit"]
    names += ["uvicorn.access", "uvicorn.error"]
    for name in names:
        filters = logging.getLogger(name).filters
        assert any(isinstance(f, RedactCardNumbers) for f in filters), name
    assert set(names) <= set(LOGGERS)


def test_r5_4_a_logged_card_number_is_redacted_in_message_args_extra_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pan = luhn_complete("601111111111111")
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("refundkit")
    log.warning("payment %s not found", f"{pan[:4]}.{pan[4:8]}.{pan[8:12]}.{pan[12:]}")
    log.info("card seen", extra={"card": {"number": pan}})
    assert caplog.records[-1].__dict__["card"] == "{'number': '[card number removed]'}"
    try:
        raise ValueError(f"bad {pan}")
    except ValueError:
        log.exception("boom")
    assert REDACTED in caplog.text
    assert not has_pan(caplog.text), caplog.text


# --- the facade: every text field ---------------------------------------------------------------


Call = Callable[[RefundKit, dict[str, Any], str], object]


def _card(value: str, field: str) -> dict[str, Any]:
    return {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, field: value}


def _plan(ctx: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**ctx["plan"], **changes}


def _pay(field: str) -> Call:
    """``record_payment`` with ``field`` set to the value tried."""
    fields: dict[str, Any] = {}
    return lambda kit, ctx, v: record(kit, "pay_new", **(fields | {field: v}))


API: dict[str, Call] = {
    "record_payment id": lambda kit, ctx, v: record(kit, v),
    "record_payment customer_id": _pay("customer_id"),
    "record_payment gateway": lambda kit, ctx, v: kit.record_payment(
        id="pay_new", customer_id="cus_1", amount=usd("1.00"), gateway=v, gateway_payment_id="x"
    ),
    "record_payment gateway_payment_id": lambda kit, ctx, v: kit.record_payment(
        id="pay_new",
        customer_id="cus_1",
        amount=usd("1.00"),
        gateway="sandbox",
        gateway_payment_id=v,
    ),
    "record_payment invoice_id": _pay("invoice_id"),
    "record_payment destination": lambda kit, ctx, v: record(
        kit, "pay_new", destination=cast(Any, v)
    ),
    "record_payment card brand": lambda kit, ctx, v: record(kit, "pay_new", card=_card(v, "brand")),
    "record_payment card last4": lambda kit, ctx, v: record(kit, "pay_new", card=_card(v, "last4")),
    "record_payment card first6": lambda kit, ctx, v: record(
        kit, "pay_new", card=_card(v, "first6")
    ),
    "record_payment card other": lambda kit, ctx, v: record(kit, "pay_new", card=_card(v, "note")),
    "refund payment_id": lambda kit, ctx, v: kit.refund(v, usd("1.00")),
    "refund reason": lambda kit, ctx, v: kit.refund("pay_1", usd("1.00"), reason=v),
    "refund actor": lambda kit, ctx, v: kit.refund("pay_1", usd("1.00"), actor=v),
    "refund idempotency_key": lambda kit, ctx, v: kit.refund(
        "pay_1", usd("1.00"), idempotency_key=v
    ),
    "payment": lambda kit, ctx, v: kit.payment(v),
    "payments customer_id": lambda kit, ctx, v: kit.payments(v),
    "quote": lambda kit, ctx, v: kit.quote(v),
    "refresh_payment": lambda kit, ctx, v: kit.refresh_payment(v),
    "invoice": lambda kit, ctx, v: kit.invoice(v),
    "get_refund": lambda kit, ctx, v: kit.get_refund(v),
    "refunds payment_id": lambda kit, ctx, v: kit.refunds(v),
    "refunds status": lambda kit, ctx, v: kit.refunds(status=v),
    "recover payment_id": lambda kit, ctx, v: kit.recover(v),
    "resolve refund_id": lambda kit, ctx, v: kit.resolve(v, "failed", actor="a", note="n"),
    "resolve status": lambda kit, ctx, v: kit.resolve(ctx["refund"], v, actor="a", note="n"),
    "resolve actor": lambda kit, ctx, v: kit.resolve(ctx["refund"], "failed", actor=v, note="n"),
    "resolve note": lambda kit, ctx, v: kit.resolve(ctx["refund"], "failed", actor="a", note=v),
    "resolve gateway_refund_id": lambda kit, ctx, v: kit.resolve(
        ctx["refund"], "succeeded", actor="a", note="n", gateway_refund_id=v
    ),
    "resolution": lambda kit, ctx, v: kit.resolution(v),
    "reconcile payment_id": lambda kit, ctx, v: kit.reconcile(v),
    "reconcile gateway": lambda kit, ctx, v: kit.reconcile(gateway=v),
    "handle_gateway_webhook gateway": lambda kit, ctx, v: kit.handle_gateway_webhook(v, {}, b"{}"),
    "events after": lambda kit, ctx, v: kit.events(v),
    "events refund_id": lambda kit, ctx, v: kit.events(refund_id=v),
    "journal refund_id": lambda kit, ctx, v: kit.journal(v),
    "export_journal format": lambda kit, ctx, v: kit.export_journal(ctx["out"], v),
    "deliver_events url": lambda kit, ctx, v: kit.deliver_events(
        [{"url": "https://hooks.example/" + v, "secret": ctx["secret"]}], send=ctx["send"]
    ),
    "webhook_deliveries status": lambda kit, ctx, v: kit.webhook_deliveries(v),
    "webhook_deliveries event_id": lambda kit, ctx, v: kit.webhook_deliveries(event_id=v),
    "retry_event": lambda kit, ctx, v: kit.retry_event(v),
    "enable_webhook_endpoint": lambda kit, ctx, v: kit.enable_webhook_endpoint(
        "https://hooks.example/" + v
    ),
    "gateway": lambda kit, ctx, v: kit.gateway(v),
    "balance": lambda kit, ctx, v: kit.balance(v),
    "redeem_balance customer_id": lambda kit, ctx, v: kit.redeem_balance(
        v, usd("1.00"), reference="r"
    ),
    "redeem_balance reference": lambda kit, ctx, v: kit.redeem_balance(
        "cus_1", usd("1.00"), reference=v
    ),
    "redeem_balance order": lambda kit, ctx, v: kit.redeem_balance(
        "cus_1", usd("1.00"), reference="r", order=v
    ),
    "issue_credit source_id": lambda kit, ctx, v: kit.issue_credit(v, usd("1.00")),
    "issue_credit reference": lambda kit, ctx, v: kit.issue_credit(
        "pay_1", usd("1.00"), reference=v
    ),
    "plan_refund customer_id": lambda kit, ctx, v: kit.plan_refund(v, usd("1.00")),
    "plan_refund strategy": lambda kit, ctx, v: kit.plan_refund("cus_1", usd("1.00"), strategy=v),
    "plan_refund scope": lambda kit, ctx, v: kit.plan_refund("cus_1", usd("1.00"), scope=v),
    "execute plan id": lambda kit, ctx, v: kit.execute(_plan(ctx, id=v)),
    "execute plan customer_id": lambda kit, ctx, v: kit.execute(_plan(ctx, customer_id=v)),
    "execute plan scope": lambda kit, ctx, v: kit.execute(_plan(ctx, scope=v)),
    "execute reason": lambda kit, ctx, v: kit.execute(ctx["plan"], reason=v),
    "execute actor": lambda kit, ctx, v: kit.execute(ctx["plan"], actor=v),
    "refund_balance customer_id": lambda kit, ctx, v: kit.refund_balance(v, usd("1.00")),
    "refund_balance strategy": lambda kit, ctx, v: kit.refund_balance(
        "cus_1", usd("1.00"), strategy=v
    ),
    "refund_balance reason": lambda kit, ctx, v: kit.refund_balance("cus_1", usd("1.00"), reason=v),
    "approvals request payment_id": lambda kit, ctx, v: ctx["approvals"].request(
        v, usd("1.00"), reason="r", requested_by="sam"
    ),
    "approvals request reason": lambda kit, ctx, v: ctx["approvals"].request(
        "pay_1", usd("1.00"), reason=v, requested_by="sam"
    ),
    "approvals request requested_by": lambda kit, ctx, v: ctx["approvals"].request(
        "pay_1", usd("1.00"), reason="r", requested_by=v
    ),
    "approvals request_balance customer_id": lambda kit, ctx, v: ctx["approvals"].request_balance(
        v, usd("1.00"), reason="r", requested_by="sam"
    ),
    "approvals get": lambda kit, ctx, v: ctx["approvals"].get(v),
    "approvals approve note": lambda kit, ctx, v: ctx["approvals"].approve(
        ctx["approval"], approver="ann", note=v
    ),
    "approvals approve approver": lambda kit, ctx, v: ctx["approvals"].approve(
        ctx["approval"], approver=v
    ),
    "approvals reject note": lambda kit, ctx, v: ctx["approvals"].reject(
        ctx["approval"], approver="ann", note=v
    ),
}


class Sent:
    """A webhook receiver in memory: the bodies the deliverer sent."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str]] = []

    def __call__(self, url: str, headers: Any, body: bytes) -> Any:
        from refundkit._delivery import Outcome

        self.bodies.append((f"webhook to {url}", body.decode()))
        return Outcome(200)


def everyday(kit: RefundKit) -> dict[str, Any]:
    """Ordinary use before the attacks, so every sink has something in it: two payments, a
    refund and its events delivered, a pending approval and a plan to execute."""
    import io

    from refundkit._approvals import Approvals
    from refundkit.webhooks import new_secret

    record(kit, "pay_1")
    record(kit, "pay_2", destination=Destination.CUSTOMER_BALANCE)
    refund = kit.refund("pay_1", usd("10.00"), reason="requested_by_customer", actor="sam")
    approvals = Approvals(kit)
    approval = approvals.request("pay_1", usd("1.00"), reason="r", requested_by="sam")
    sent = Sent()
    ctx = {
        "refund": refund.id,
        "approvals": approvals,
        "approval": approval.id,
        "plan": kit.plan_refund("cus_1", usd("1.00")).to_dict(),
        "secret": new_secret(),
        "send": sent,
        "sent": sent,
        "out": io.StringIO(),
    }
    endpoint = {"url": "https://hooks.example/in", "secret": ctx["secret"], "backfill": True}
    kit.deliver_events([endpoint], send=sent)
    return ctx


def state(kit: RefundKit, sandbox: SandboxGateway) -> tuple[object, ...]:
    """What a refused call must leave alone: every table's rows and the gateway's refunds."""
    import sqlalchemy as sa

    with kit.store.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        counts = {
            t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables
        }
    return counts, sandbox.refund_count()


def refuses(call: Callable[[], object], pan: str, texts: list[tuple[str, str]]) -> None:
    """The call raises ``CardDataRefused`` (stable code), whose texts echo no card number."""
    with pytest.raises(CardDataRefused) as info:
        call()
    exc = info.value
    assert exc.code == "card_data_refused"
    texts.append(("exception", f"{exc}\n{exc!r}\n{exc.to_dict()}"))
    assert not leaks_of(texts[-1:], pan)


def leaks_of(texts: list[tuple[str, str]], *pans_: str) -> list[tuple[str, str]]:
    from ._cards import leaks

    return leaks(texts, pans_)


def sinks_of(kit: RefundKit, ctx: dict[str, Any], sandbox_db: Any) -> list[tuple[str, str]]:
    """Every sink but the log: tables, the sandbox's books, events, delivered webhook bodies."""
    import json

    from ._cards import sqlite_dump, table_dump

    kit.deliver_events(
        [{"url": "https://hooks.example/in", "secret": ctx["secret"]}], send=ctx["send"]
    )
    texts = table_dump(kit) + sqlite_dump(sandbox_db)
    texts += [(f"event {e.type}", json.dumps(e.to_dict())) for e in kit.events()]
    bodies: list[tuple[str, str]] = ctx["sent"].bodies
    return texts + bodies


@pytest.mark.sqlite_only  # one store is enough to name each field: the property test below
# tries every field on both stores
@pytest.mark.parametrize("name", sorted(API))
def test_r5_3_each_entry_point_refuses_a_card_number_written_with_dots(
    kit: RefundKit, sandbox: SandboxGateway, name: str
) -> None:
    """R-5.3: each field on its own (the adversarial pass used ``6011.1111.1111.1117``), and
    nothing is written."""
    ctx = everyday(kit)
    pan = luhn_complete("601100000000001")
    before = state(kit, sandbox)
    refuses(lambda: API[name](kit, ctx, f"{pan[:4]}.{pan[4:8]}.{pan[8:12]}.{pan[12:]}"), pan, [])
    assert state(kit, sandbox) == before


def test_r5_3_r5_4_property_every_text_field_of_the_facade_refuses_card_numbers(
    kit: RefundKit, sandbox: SandboxGateway, sandbox_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """R-5.3/R-5.4 property: generated card numbers, written every way, in every text field of
    every facade (and approvals) method; all refused, nothing written; then no sink (every
    table, the sandbox's books, events, delivered webhooks, logs, errors) holds one."""
    caplog.set_level(logging.DEBUG)
    ctx = everyday(kit)
    before = state(kit, sandbox)
    texts: list[tuple[str, str]] = []
    tried: list[str] = []

    @given(pan=pans(), data=st.data())
    @settings(PROPERTY, max_examples=25)
    def attack(pan: str, data: st.DataObject) -> None:
        tried.append(pan)
        for name, call in API.items():
            value = data.draw(written(pan), label=name)
            refuses(lambda: call(kit, ctx, value), pan, texts)  # noqa: B023
        assert state(kit, sandbox) == before

    attack()
    texts += [*sinks_of(kit, ctx, Path(sandbox_path)), ("log", caplog.text)]
    assert {w.split()[0] for w, _ in texts} >= {"exception", "table", "event", "webhook", "log"}
    assert leaks_of(texts, *tried) == []


# --- inbound webhooks ---------------------------------------------------------------------------


def _webhook(sandbox: SandboxGateway, now: int, **data: Any) -> tuple[dict[str, str], bytes]:
    """A sandbox ``refund.updated`` webhook, signed, about ``data``."""
    import json

    event = {"id": data.pop("event_id", "sbx_evt_1"), "type": "refund.updated", "created": now}
    event["data"] = {"status": "failed", "amount": 100, "currency": "USD"} | data
    body = json.dumps(event).encode()
    return {"sandbox-signature": sandbox.sign(body, now)}, body


WEBHOOK_FIELDS = ("id", "refund_id", "failure_code", "event_id")


@pytest.mark.parametrize("field", WEBHOOK_FIELDS)
def test_r5_3_a_signed_webhook_naming_a_card_number_is_refused_before_anything_is_applied(
    kit: RefundKit, sandbox: SandboxGateway, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    """R-5.3: the gateway refund id, our refund id, the failure code or the event id: a card
    number there refuses the webhook (400 over ASGI); nothing is stored or logged."""
    from refundkit.asgi import webhook_app

    caplog.set_level(logging.DEBUG)
    ctx = everyday(kit)
    pan = luhn_complete("378282246310" + "00")
    now = int(kit.clock().timestamp())
    fields = {"refund_id": ctx["refund"]} | {field: f"{pan[:4]}_{pan[4:10]}_{pan[10:]}"}
    headers, body = _webhook(sandbox, now, **fields)
    before = state(kit, sandbox)
    refuses(lambda: kit.handle_gateway_webhook("sandbox", headers, body), pan, [])
    with TestClient(webhook_app(kit)) as client:
        response = client.post("/webhooks/sandbox", headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "card_data_refused"
    assert state(kit, sandbox) == before
    assert leaks_of([("log", caplog.text), ("response", response.text)], pan) == []


@given(pan=pans(), data=st.data())
@PROPERTY
def test_r5_3_property_webhook_ids_holding_card_numbers_are_refused(
    kit: RefundKit, sandbox: SandboxGateway, pan: str, data: st.DataObject
) -> None:
    """R-5.3 property over the inbound webhook's text fields (same kit for every example:
    nothing is ever written)."""
    now = int(kit.clock().timestamp())
    for field in WEBHOOK_FIELDS:
        headers, body = _webhook(sandbox, now, **{field: data.draw(written(pan), label=field)})
        refuses(lambda: kit.handle_gateway_webhook("sandbox", headers, body), pan, [])  # noqa: B023
    assert row_counts(kit)["refunds"] == 0


# --- the CLI --------------------------------------------------------------------------------------


def _cli_plan(tmp: Any, ctx: dict[str, Any], field: str, v: str) -> str:
    """A plan file for ``refundkit execute`` with ``field`` set to the value tried."""
    import json

    path = tmp / "plan.json"
    path.write_text(json.dumps({**ctx["plan"], field: v}))
    return str(path)


PAY = ["payments", "add", "pay_new", "--customer", "cus_1", "--amount", "1.00", "--currency"]
PAY += ["USD", "--gateway", "sandbox", "--gateway-payment-id", "g_new"]
REDEEM = ["redeem", "cus_1", "--amount", "1.00", "--currency", "USD"]
#: Each command's text arguments and options; ``{}`` is where the value goes.
CLI: dict[str, list[str]] = {
    "quote PAYMENT_ID": ["quote", "{}"],
    "refund PAYMENT_ID": ["refund", "{}", "--amount", "1.00"],
    "refund --reason": ["refund", "pay_1", "--amount", "1.00", "--reason", "{}"],
    "refund --idempotency-key": ["refund", "pay_1", "--amount", "1.00", "--idempotency-key", "{}"],
    "refund --actor": ["refund", "pay_1", "--amount", "1.00", "--actor", "{}"],
    "refunds --payment": ["refunds", "--payment", "{}"],
    "refunds --status": ["refunds", "--status", "{}"],
    "payments add ID": ["payments", "add", "{}", *PAY[3:]],
    "payments add --customer": [*PAY[:4], "{}", *PAY[5:]],
    "payments add --currency": [*PAY[:8], "{}", *PAY[9:]],
    "payments add --gateway": [*PAY[:10], "{}", *PAY[11:]],
    "payments add --gateway-payment-id": [*PAY[:12], "{}"],
    "payments add --destination": [*PAY, "--destination", "{}"],
    "payments add --invoice-id": [*PAY, "--invoice-id", "{}"],
    "payments add --card-brand": [*PAY, "--card-brand", "{}", "--card-last4", "4242"],
    "payments add --card-last4": [*PAY, "--card-brand", "visa", "--card-last4", "{}"],
    "payments add --card-exp": [*PAY, "--card-brand", "visa", "--card-last4", "4242", "--card-exp",
                                "{}"],
    "payments list --customer": ["payments", "list", "--customer", "{}"],
    "payments show ID": ["payments", "show", "{}"],
    "balance CUSTOMER_ID": ["balance", "{}"],
    "redeem CUSTOMER_ID": ["redeem", "{}", *REDEEM[2:], "--reference", "r"],
    "redeem --reference": [*REDEEM, "--reference", "{}"],
    "redeem --order": [*REDEEM, "--reference", "r", "--order", "{}"],
    "credit SOURCE_ID": ["credit", "{}", "--amount", "1.00"],
    "credit --reference": ["credit", "pay_1", "--amount", "1.00", "--reference", "{}"],
    "invoice INVOICE_ID": ["invoice", "{}"],
    "plan CUSTOMER_ID": ["plan", "{}", "--amount", "1.00"],
    "plan --scope": ["plan", "cus_1", "--amount", "1.00", "--scope", "{}"],
    "plan --strategy": ["plan", "cus_1", "--amount", "1.00", "--strategy", "{}"],
    "plan --currency": ["plan", "cus_1", "--amount", "1.00", "--currency", "{}"],
    "execute PLAN_FILE id": ["execute", "plan:id"],
    "execute PLAN_FILE customer_id": ["execute", "plan:customer_id"],
    "execute --reason": ["execute", "plan:", "--reason", "{}"],
    "execute --actor": ["execute", "plan:", "--actor", "{}"],
    "refund-balance CUSTOMER_ID": ["refund-balance", "{}", "--amount", "1.00"],
    "refund-balance --reason": ["refund-balance", "cus_1", "--amount", "1.00", "--reason", "{}"],
    "refund-balance --actor": ["refund-balance", "cus_1", "--amount", "1.00", "--actor", "{}"],
    "reconcile --payment": ["reconcile", "--payment", "{}"],
    "reconcile --gateway": ["reconcile", "--gateway", "{}"],
    "reconcile --since": ["reconcile", "--since", "{}"],
    "recover --payment": ["recover", "--payment", "{}"],
    "recover --schedule": ["recover", "--schedule", "{}"],
    "resolve REFUND_ID": ["resolve", "{}", "--failed", "--note", "n", "--by", "ann"],
    "resolve --note": ["resolve", "ref:", "--failed", "--note", "{}", "--by", "ann"],
    "resolve --by": ["resolve", "ref:", "--failed", "--note", "n", "--by", "{}"],
    "resolve --gateway-refund-id": ["resolve", "ref:", "--succeeded", "--note", "n", "--by", "ann",
                                    "--gateway-refund-id", "{}"],
    "events --after": ["events", "--after", "{}"],
    "events --refund": ["events", "--refund", "{}"],
    "journal --refund": ["journal", "--refund", "{}"],
    "journal --since": ["journal", "--since", "{}"],
    "journal --format": ["journal", "--format", "{}"],
    "deliver --retry": ["--config", "cfg:", "deliver", "--retry", "{}"],
    "endpoints enable URL": ["endpoints", "enable", "https://hooks.example/{}"],
}  # fmt: skip
#: Options whose value is checked for its form first (a choice, an expiry, a date, a currency),
#: and a plan file (whatever is wrong with one is invalid_input, the reason in the message):
#: refused as a usage error or invalid input instead, and likewise never echoed.
FORMS = {"refunds --status", "payments add --destination", "redeem --order", "plan --strategy",
         "journal --format", "payments add --card-exp", "reconcile --since", "journal --since",
         "recover --schedule", "payments add --currency", "plan --currency",
         "execute PLAN_FILE id", "execute PLAN_FILE customer_id"}  # fmt: skip


def cli_args(name: str, value: str, tmp: Any, ctx: dict[str, Any]) -> list[str]:
    args = []
    for arg in CLI[name]:
        if arg.startswith("plan:"):
            field = arg[len("plan:") :]
            arg = _cli_plan(tmp, ctx, field, value) if field else _cli_plan(tmp, ctx, "x", "")
        elif arg == "ref:":
            arg = ctx["refund"]
        elif arg == "cfg:":
            arg = str(tmp / "refundkit.toml")
            secret = ctx["secret"]
            endpoint = f'url = "https://hooks.example/in"\nsecret = "{secret}"\n'
            Path(arg).write_text("[[webhooks.endpoints]]\n" + endpoint)
        args.append(arg.replace("{}", value))
    return args


@pytest.mark.sqlite_only  # the CLI refuses before it reads the store; the facade's property
# test runs on both stores
def test_r5_3_r5_4_property_every_cli_text_argument_refuses_card_numbers(
    kit: RefundKit, db_url: str, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """R-5.3/R-5.4 property: a generated card number in each command's text arguments and
    options: exit 2, one error line, typed (``card_data_refused``); nothing written; neither
    the output nor any table or log holds it."""
    from click.testing import CliRunner

    from refundkit.cli import cli

    from ._cards import table_dump

    caplog.set_level(logging.DEBUG)
    ctx = everyday(kit)
    before = table_dump(kit)
    texts: list[tuple[str, str]] = []
    tried: list[str] = []
    runner = CliRunner()

    @given(pan=pans(), data=st.data())
    @settings(PROPERTY, max_examples=4, phases=[Phase.generate])  # a failure names its field
    def attack(pan: str, data: st.DataObject) -> None:
        tried.append(pan)
        for name in CLI:
            value = data.draw(written(pan, ascii_only=True), label=name)
            args = ["--db", db_url, "--json", *cli_args(name, value, tmp_path, ctx)]
            result = runner.invoke(cli, args)
            output = result.output + (result.stderr if result.stderr_bytes else "")
            texts.append((f"cli {name}", output))
            assert result.exit_code == 2, (name, output)
            code = (
                "usage|invalid_input|invalid_money|card_data_refused"
                if name in FORMS
                else "card_data_refused"
            )
            assert any(f'"code": "{c}"' in output for c in code.split("|")), (name, output)
            assert not leaks_of(texts[-1:], pan), (name, output)

    attack()
    assert table_dump(kit) == before
    texts += [*table_dump(kit), ("log", caplog.text)]
    assert leaks_of(texts, *tried) == []


# --- the dashboard ------------------------------------------------------------------------------


@pytest.fixture
def access_log() -> Iterator[AccessLog]:
    with capture_access_log() as log:
        yield log


def _signed_in(client: TestClient, name: str) -> str:
    from ._dashboard import USERS, csrf_of

    token = csrf_of(client.get("/login").text)
    client.post("/login", data={"name": name, "password": USERS[name][1], "csrf": token})
    return csrf_of(client.get("/payments").text)


Page = Callable[[TestClient, dict[str, Any], str], Any]
#: The dashboard's query strings, paths and form fields; ``ctx``: csrf, approval, refund ids.
DASHBOARD: dict[str, Page] = {
    "search box": lambda c, ctx, v: c.get("/payments", params={"q": v}),
    "payment path": lambda c, ctx, v: c.get(f"/payments/{v}"),
    "customer path": lambda c, ctx, v: c.get(f"/customers/{v}"),
    "refund form reason": lambda c, ctx, v: c.post(
        "/payments/pay_inv_1/refund", data={"csrf": ctx["csrf"], "amount": "1.00", "reason": v}
    ),
    "refund form key": lambda c, ctx, v: c.post(
        "/payments/pay_inv_1/refund",
        data={"csrf": ctx["csrf"], "amount": "1.00", "reason": "r", "key": v},
    ),
    "refund form amount": lambda c, ctx, v: c.post(
        "/payments/pay_inv_1/refund", data={"csrf": ctx["csrf"], "amount": v, "reason": "r"}
    ),
    "approval note": lambda c, ctx, v: c.post(
        f"/approvals/{ctx['approval']}/reject", data={"csrf": ctx["csrf"], "note": v}
    ),
    "approval approve note": lambda c, ctx, v: c.post(
        f"/approvals/{ctx['approval']}/approve", data={"csrf": ctx["csrf"], "note": v}
    ),
    "resolve note": lambda c, ctx, v: c.post(
        f"/refunds/{ctx['refund']}/resolve",
        data={"csrf": ctx["csrf"], "outcome": "failed", "note": v},
    ),
    "balance preview currency": lambda c, ctx, v: c.post(
        "/customers/cus_ada/preview", data={"csrf": ctx["csrf"], "amount": "1.00", "currency": v}
    ),
    "balance refund plan": lambda c, ctx, v: c.post(
        "/customers/cus_ada/refund-balance",
        data={"csrf": ctx["csrf"], "plan": ctx["plan"].replace("PLAN_ID", v), "reason": "r"},
    ),
    "balance refund reason": lambda c, ctx, v: c.post(
        "/customers/cus_ada/refund-balance",
        data={"csrf": ctx["csrf"], "plan": ctx["plan"], "reason": v},
    ),
    "sign-in name": lambda c, ctx, v: c.post(
        "/login", data={"csrf": ctx["csrf"], "name": v, "password": "wrong"}
    ),
}


#: What the dashboard answers besides the refusal (400, or the form again with it): a path
#: with slashes in it is no page (404); no user has that name (400, then throttled: 429).
ANSWERS = {
    "payment path": (400, 404),
    "customer path": (400, 404),
    "sign-in name": (400, 429),
}


def dashboard_everyday(kit: RefundKit, client: TestClient) -> dict[str, Any]:
    """The seeded payments, a refund to resolve, a pending approval and a balance plan."""
    import json

    from refundkit._approvals import Approvals

    from ._dashboard import seed

    seed(kit)
    refund = kit.refund("pay_inv_1", usd("5.00"))
    approval = Approvals(kit).request("pay_inv_1", usd("30.00"), reason="r", requested_by="sam")
    plan = kit.plan_refund("cus_ada", usd("1.00"), scope="balance").to_dict()
    csrf = _signed_in(client, "ann")
    plan_json = json.dumps(plan).replace(plan["id"], "PLAN_ID")
    return {"csrf": csrf, "approval": approval.id, "refund": refund.id, "plan": plan_json}


def test_r5_3_r5_4_property_every_dashboard_form_and_query_refuses_card_numbers(
    kit: RefundKit, access_log: AccessLog, caplog: pytest.LogCaptureFixture
) -> None:
    """R-5.3/R-5.4 property: generated card numbers in the search box, the paths, the refund,
    approval, resolve and balance forms and the sign-in name: refused (400, or the form again
    with the refusal), nothing written; no page, table, log record or access log line (as
    uvicorn writes it) holds one."""
    from refundkit.dashboard import create_app

    from ._cards import table_dump
    from ._dashboard import settings as dashboard_settings

    caplog.set_level(logging.DEBUG)
    texts: list[tuple[str, str]] = []
    tried: list[str] = []
    with TestClient(create_app(kit, dashboard_settings()), follow_redirects=True) as client:
        ctx = dashboard_everyday(kit, client)
        before = table_dump(kit)

        @given(pan=pans(), data=st.data())
        @settings(PROPERTY, max_examples=8, phases=[Phase.generate])  # a failure names its field
        def attack(pan: str, data: st.DataObject) -> None:
            tried.append(pan)
            for name, page in DASHBOARD.items():
                value = data.draw(written(pan, ascii_only=name.endswith("path")), label=name)
                response = page(client, ctx, value)
                for r in [*response.history, response]:
                    access_log.request(r)
                texts.append((f"page {name}", response.text))
                assert response.status_code in ANSWERS.get(name, (200, 400)), name
                if name != "sign-in name" and response.status_code != 404:
                    assert "card number" in response.text, name  # the refusal, in its words
                assert not leaks_of(texts[-1:], pan), name

        attack()
        # A refused sign-in still counts as a failed attempt for the throttle (its rows are
        # scanned for card numbers below, with every other table); nothing else is written.
        assert _without_sign_ins(table_dump(kit)) == _without_sign_ins(before)
    texts += [*table_dump(kit), ("log", caplog.text)]
    texts += [("access log", line) for line in access_log.lines]
    assert len(access_log.lines) >= len(DASHBOARD) * 8
    assert leaks_of(texts, *tried) == []


#: ``refundkit serve`` without the demo's tour: the same ``run_server`` on an empty store.
SERVE = """
import sys
from refundkit import RefundKit
from refundkit.dashboard import create_app
from refundkit.dashboard._serve import demo_settings, run_server
kit = RefundKit.open("sqlite:///kit.db")
run_server(create_app(kit, demo_settings()), "127.0.0.1", int(sys.argv[1]), print)
"""


def test_r5_4_the_servers_access_log_redacts_a_card_number_in_the_url(tmp_path: Path) -> None:
    """R-5.4: the dashboard served as ``refundkit serve`` does (uvicorn, its own logging set-up,
    in a process of its own): a card number typed into the search box, or put in a path, is not
    in the access log lines it writes."""
    import os
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
    )  # fmt: skip
    pan = luhn_complete("601100000000001")
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url)
        with httpx.Client(base_url=url, trust_env=False) as client:
            client.get("/payments", params={"q": f"{pan[:4]} {pan[4:8]} {pan[8:12]} {pan[12:]}"})
            client.get(f"/payments/{pan[:4]}.{pan[4:8]}.{pan[8:12]}.{pan[12:]}")
            client.get("/payments", params={"q": pan})
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    access = [line for line in output.splitlines() if '"GET /payments' in line]
    assert len(access) == 3, output
    assert all(REDACTED in line for line in access), access
    assert leaks_of([("server output", output)], pan) == []


def _wait_for(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/login", trust_env=False)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_unicode_fold_table_stays_small_whatever_text_comes_by() -> None:
    """Text from strangers (a search box, a webhook) must not grow a cache without bound."""
    from refundkit._pans import _FOLD

    everything = "".join(chr(c) for c in range(0x80, 0x30000) if not 0xD800 <= c < 0xE000)
    has_pan(everything)
    has_pan(everything)
    assert 600 < len(_FOLD) < 2000  # the Unicode digits, spaces and dashes


def _without_sign_ins(dump: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [row for row in dump if row[0] != "table sign_in_attempts"]

"""R-5.4: canary card numbers go in everywhere a caller could put one; none comes out.

A run offers the canary cards (and CVVs), written with spaces, dashes, dots, slashes,
underscores or mixed, through the facade (ids, references, free text, card fields), the CLI,
a webhook and the dashboard's search box, then does ordinary refunds (pending, timeout,
recovery, reversal, reconciliation of a dashboard refund) on payments whose card is the
canary's first 6 + last 4, and delivers the events as signed webhooks. Then it scans every
sink for a Luhn-valid 13-19 digit run, whatever its prefix (``find_pans(any_prefix=True)``):
the log records, every exception's text and ``to_dict()``, every table of the store (all of
them, not a list), the sandbox gateway's own database, the event outbox, the delivered webhook
bodies, the CLI's output and the server's access log lines. (Cassettes are scanned by
``tests/test_cassettes.py``; every field of every entry point by ``test_card_numbers.py``.)
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from refundkit import Card, Money, RefundKit, RefundkitError
from refundkit._delivery import Outcome
from refundkit._pans import find_pans
from refundkit.cli import cli
from refundkit.dashboard import create_app
from refundkit.gateways.sandbox import SandboxGateway
from refundkit.webhooks import new_secret

from ._cards import capture_access_log, sqlite_dump, table_dump
from ._dashboard import settings
from .conftest import FakeClock, record, usd

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork in its TestClient; httpx works the same here.
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from starlette.testclient import TestClient

#: reliability.md R-5.4: Visa, Amex, Discover, Mastercard test numbers; CVVs.
CANARIES = ("4111111111111111", "378282246310005", "6011111111111117", "5555555555554444")
CVVS = ("737", "1234")
#: refundkit's own random ids (rf_…, evt_…, sbx_re_…) may hold digit runs by chance.
_IDS = re.compile(r"[A-Za-z]+[_-][A-Za-z0-9_-]*[a-f][A-Za-z0-9_-]*")


def printed(pan: str) -> list[str]:
    """The ways a card number gets typed: plain, in groups of 4 with spaces, dashes, dots,
    slashes or underscores, and mixed."""
    groups = [pan[i : i + 4] for i in range(0, len(pan), 4)]
    mixed = "".join(g + "-./_ "[i % 5] for i, g in enumerate(groups))[:-1]
    return [pan, *(sep.join(groups) for sep in (" ", "-", ".", "/", "_")), mixed]


def leaks(text: str) -> list[str]:
    return find_pans(_IDS.sub("", text), any_prefix=True)


def canary_card(pan: str) -> Card:
    return Card(brand="visa", last4=pan[-4:], exp_month=12, exp_year=2030, first6=pan[:6])


class Sinks:
    """Everything that came out of the run, as text."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def refused(self, call: Callable[[], object]) -> None:
        """The call must refuse (typed error); its texts join the scan."""
        with pytest.raises(RefundkitError) as info:
            call()
        exc = info.value
        self.add("exception", f"{exc}\n{exc!r}\n{json.dumps(exc.to_dict())}")


def card_inputs(kit: RefundKit, pan: str, n: int) -> list[Callable[[], object]]:
    """Every facade field a card number (or a CVV) could be pasted into by mistake."""

    def pay(**kw: Any) -> Callable[[], object]:
        return lambda: record(kit, f"pay_bad_{n}", **kw)

    return [
        pay(card={"number": pan}),
        pay(card={"brand": "visa", "last4": pan[-4:], "cvc": CVVS[n % 2]}),
        pay(card={"brand": "visa", "last4": pan[-4:], "card[number]": pan}),
        lambda: record(kit, f"pay_bad_{n}", card=Card(brand=pan, last4=pan[-4:])),
        pay(card={"brand": "visa", "last4": pan[-4:], "first6": pan[:8]}),
        lambda: kit.refund("pay_1", usd("1.00"), reason=f"card {pan}"),
        lambda: kit.refund("pay_1", usd("1.00"), actor=pan),
        lambda: kit.refund("pay_1", usd("1.00"), idempotency_key=pan.replace(" ", "-")),
        lambda: kit.quote(pan),
        lambda: kit.refund(pan),
        lambda: record(kit, pan),
        lambda: record(kit, f"pay_bad_{n}", customer_id=pan),
        lambda: record(kit, f"pay_bad_{n}", invoice_id=pan),
        lambda: kit.record_payment(
            id=f"pay_bad_{n}",
            customer_id="cus_1",
            amount=usd("1.00"),
            gateway="sandbox",
            gateway_payment_id=pan,
        ),
        lambda: kit.issue_credit("pay_1", usd("1.00"), reference=pan),
        lambda: kit.redeem_balance("cus_1", usd("1.00"), reference=pan),
        lambda: kit.plan_refund("cus_1", usd("1.00"), scope=pan),
        lambda: kit.execute({**kit.plan_refund("cus_1", usd("1.00")).to_dict(), "id": pan}),
        lambda: kit.resolve(
            kit.refunds("pay_1")[0].id, "succeeded", actor="a", note="n", gateway_refund_id=pan
        ),
        lambda: kit.resolve(kit.refunds("pay_1")[0].id, "failed", actor="a", note=f"card {pan}"),
    ]


def happy_paths(kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock) -> None:
    """Ordinary refunds on canary-carded payments: every status, event and journal kind."""
    for i, pan in enumerate(CANARIES, start=1):
        record(kit, f"pay_{i}", card=canary_card(pan))
    kit.refund("pay_1", usd("10.00"), reason="requested_by_customer", actor="support:alice")
    sandbox.script("pending_succeed", "timeout_after")
    kit.refund("pay_2", usd("5.00"))
    kit.refund("pay_3", usd("7.00"))
    for headers, body in sandbox.settle_pending():
        kit.handle_gateway_webhook("sandbox", headers, body)
    clock.advance(minutes=5)
    kit.recover(force=True)
    [done] = kit.refunds("pay_1")
    assert done.gateway_refund_id is not None
    kit.handle_gateway_webhook("sandbox", *sandbox.reverse(done.gateway_refund_id))
    sandbox.dashboard_refund("sbx_ch_pay_4", usd("3.00"))
    kit.reconcile()


def cli_and_dashboard(sinks: Sinks, kit: RefundKit, db_url: str) -> None:
    """Canaries typed into the CLI and the dashboard's search box; their output, and the
    access log line uvicorn writes for the search, join the scan."""
    runner = CliRunner()
    for args in (
        ["refund", "pay_1", "--amount", "1.00", "--reason", CANARIES[1]],
        ["quote", CANARIES[2]],
        ["credit", "pay_1", "--amount", "1.00", "--reference", printed(CANARIES[3])[3]],
        ["refunds", "--status", CANARIES[0]],
        ["events", "--json"],
        ["refunds", "--json"],
        ["journal", "--json"],
        ["reconcile", "--json"],
    ):
        out = runner.invoke(cli, ["--db", db_url, *args])
        sinks.add(f"cli {args[0]}", f"{out.output}")
    with capture_access_log() as access, TestClient(create_app(kit, settings())) as client:
        for typed in printed(CANARIES[0]):
            access.request(client.get("/payments", params={"q": typed}, follow_redirects=False))
    assert len(access.lines) == len(printed(CANARIES[0]))
    sinks.texts += [("access log", line) for line in access.lines]


def test_r5_4_canary_cards_never_reach_a_log_an_error_the_store_an_event_or_the_cli(
    kit: RefundKit,
    sandbox: SandboxGateway,
    clock: FakeClock,
    db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sinks = Sinks()
    happy_paths(kit, sandbox, clock)
    n = 0
    for pan in CANARIES:
        for typed in printed(pan):
            n += 1
            for call in card_inputs(kit, typed, n):
                sinks.refused(call)
    # A webhook carrying a card number is refused before anything is parsed or stored.
    body = json.dumps({"id": "e", "type": "refund.updated", "card": CANARIES[0]}).encode()
    sinks.refused(lambda: kit.handle_gateway_webhook("sandbox", {"sandbox-signature": "x"}, body))
    cli_and_dashboard(sinks, kit, db_url)
    delivered: list[tuple[str, str]] = []

    def send(url: str, headers: object, body: bytes) -> Outcome:
        delivered.append((f"webhook to {url}", body.decode()))
        return Outcome(204)

    endpoint = {"url": "https://hooks.example/in", "secret": new_secret(), "backfill": True}
    assert kit.deliver_events([endpoint], send=send).delivered

    sinks.add("log", caplog.text)
    for event in kit.events():
        sinks.add(f"event {event.type}", json.dumps(event.to_dict()))
    sinks.texts += table_dump(kit) + sqlite_dump(tmp_path / "kit.sandbox.db") + delivered

    # The scan saw real material: events of every kind, refused inputs, stored cards.
    kinds = {where.split()[0] for where, _ in sinks.texts}
    assert {"exception", "cli", "log", "event", "table", "sandbox", "webhook", "access"} <= kinds
    assert {e.type for e in kit.events()} >= {"charge.refunded", "refund.external"}
    found = [(where, pans) for where, text in sinks.texts if (pans := leaks(text))]
    assert found == []
    # The masked card is kept: first 6 and last 4 are allowed, and present.
    stored = {
        p.card.first6 + "…" + p.card.last4 for p in kit.payments() if p.card and p.card.first6
    }
    assert stored == {pan[:6] + "…" + pan[-4:] for pan in CANARIES}


def test_r5_4_the_scan_sees_a_planted_card_number(kit: RefundKit) -> None:
    """The scan can fail: a card number written straight into the store is found."""
    record(kit)
    with kit.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE payments SET customer_id = :v"), {"v": CANARIES[0]})
    with kit.store.connect() as conn:
        rows = [
            json.dumps([str(v) for v in r]) for r in conn.execute(sa.text("SELECT * FROM payments"))
        ]
    assert [leaks(r) for r in rows] == [[CANARIES[0]]]
    assert leaks("rf_4111111111111111abcdef") == []  # refundkit's own ids are not cards
    assert leaks(f"note {Money(1234, 'USD')} at 2026-11-22T10:00:00Z") == []

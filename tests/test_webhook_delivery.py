"""Outgoing webhooks: signed, at least once, in order per refund, retried over three days and
then dead-lettered (R-4.2, R-4.3, R-4.5, R-2.2 point 5 for the deliverer, R-7.4).

The first test is the issue's "Done means": a real HTTP server on loopback that accepts, then
fails, then recovers. The others drive the deliverer with a fake sender and a frozen clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from refundkit import ConfigurationError, RefundKit
from refundkit._config import Config
from refundkit._delivery import (
    HORIZON,
    RETRY_SCHEDULE,
    Deliverer,
    Endpoint,
    Outcome,
    Sender,
    endpoints_from_config,
    next_attempt,
    run_forever,
)
from refundkit._errors import InvalidWebhookSecret, WebhookEndpointNotFound
from refundkit.gateways.sandbox import SandboxGateway
from refundkit.webhooks import new_secret, verify

from .conftest import T0, FakeClock, open_kit, record, usd

SECRET = new_secret()
MIDDLE = 0.5  # rng value for which jitter is nil


# --- a real receiver on loopback ----------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """Answers with ``status`` (class-level, set by the test) and keeps what it got."""

    status: ClassVar[int] = 204
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        body = self.rfile.read(length)
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(type(self).status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, type[Receiver]]]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    handler = type("TestReceiver", (Receiver,), {"status": 204, "received": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hooks", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_loopback_deliver_verify_fail_retry_recover_then_dead_letter(
    kit: RefundKit, clock: FakeClock, server: tuple[str, type[Receiver]]
) -> None:
    """Done means: delivered and verified; retried with the same webhook-id while the server
    fails; delivered once it recovers; dead-lettered after the three-day horizon."""
    url, receiver = server
    endpoint = Endpoint.create(url, SECRET, backfill=True)  # its first pass is after the refund
    record(kit, "pay_1")
    first = kit.refund("pay_1", usd("10.00"))

    report = kit.deliver_events([endpoint], rng=lambda: MIDDLE)
    assert len(report.delivered) == 1
    [(headers, body)] = receiver.received
    payload = verify(headers, body, SECRET, now=clock())
    assert payload["type"] == "charge.refunded"
    assert payload["data"]["refund"]["id"] == first.id
    assert headers["webhook-id"] == payload["id"]

    # The server fails: the second event is retried with the same id and the same bytes.
    receiver.status = 500
    kit.refund("pay_1", usd("5.00"))
    assert kit.deliver_events([endpoint], rng=lambda: MIDDLE).retrying
    clock.advance(seconds=1)
    assert kit.deliver_events([endpoint], rng=lambda: MIDDLE).attempts == 0  # not due yet
    clock.advance(seconds=5)
    assert kit.deliver_events([endpoint], rng=lambda: MIDDLE).retrying
    attempts = receiver.received[1:]
    assert len(attempts) == 2
    assert len({h["webhook-id"] for h, _ in attempts}) == 1
    assert len({b for _, b in attempts}) == 1
    stamps = [int(h["webhook-timestamp"]) for h, _ in attempts]
    assert stamps[1] > stamps[0]
    assert attempts[0][0]["webhook-signature"] != attempts[1][0]["webhook-signature"]

    # It recovers: the next attempt (5 min later) is delivered and verifies.
    receiver.status = 200
    clock.advance(minutes=5)
    assert len(kit.deliver_events([endpoint], rng=lambda: MIDDLE).delivered) == 1
    last_headers, last_body = receiver.received[-1]
    assert last_headers["webhook-id"] == attempts[0][0]["webhook-id"]
    assert verify(last_headers, last_body, SECRET, now=clock())["type"] == "charge.refunded"

    # It fails for good: attempts until the horizon, then dead-lettered and visible.
    receiver.status = 503
    third = kit.refund("pay_1", usd("1.00"))
    start = clock()
    for _ in range(80):
        kit.deliver_events([endpoint], rng=lambda: MIDDLE)
        clock.advance(hours=1)
    [dead] = kit.webhook_deliveries("failed")
    assert dead.refund_id == third.id
    assert dead.last_status_code == 503
    assert dead.attempts == 1 + len(RETRY_SCHEDULE)  # the spec's schedule, last one clamped
    assert dead.last_attempt_at == start + HORIZON
    sent = len(receiver.received)
    clock.advance(days=1)
    assert kit.deliver_events([endpoint]).attempts == 0
    assert len(receiver.received) == sent

    # `deliver --retry`: once the receiver is fixed, the dead letter goes out again.
    receiver.status = 204
    assert kit.retry_event(dead.event_id) == 1
    assert kit.deliver_events([endpoint]).delivered == (dead.event_id,)
    assert receiver.received[-1][0]["webhook-id"] == dead.event_id
    assert kit.webhook_deliveries("failed") == []


# --- the schedule -------------------------------------------------------------------------------


def test_schedule_has_jitter_within_twenty_percent() -> None:
    """R-4.5: the spec's delays, each with jitter."""
    low = next_attempt(T0, T0, 1, lambda: 0.0)
    high = next_attempt(T0, T0, 1, lambda: 1.0)
    assert low == T0 + timedelta(seconds=4)
    assert high == T0 + timedelta(seconds=6)
    assert next_attempt(T0, T0, 3, lambda: MIDDLE) == T0 + timedelta(minutes=30)


def test_schedule_honours_retry_after_and_stops_at_the_horizon() -> None:
    assert next_attempt(T0, T0, 1, lambda: MIDDLE, retry_after=120) == T0 + timedelta(minutes=2)
    late = T0 + HORIZON - timedelta(hours=1)
    assert next_attempt(T0, late, 9, lambda: MIDDLE) == T0 + HORIZON  # pulled in, not skipped
    assert next_attempt(T0, T0 + HORIZON, 10, lambda: MIDDLE) is None


def test_schedule_spans_three_days() -> None:
    now, failures = T0, 0
    while (nxt := next_attempt(T0, now, failures + 1, lambda: MIDDLE)) is not None:
        now, failures = nxt, failures + 1
    assert now == T0 + HORIZON
    assert failures + 1 == 10  # first try and nine retries


# --- a fake receiver ----------------------------------------------------------------------------


class FakeSender:
    """Answers from a script of status codes (the last one repeats), and records each call."""

    def __init__(self, *codes: int, retry_after: float | None = None) -> None:
        self.codes = list(codes) or [200]
        self.retry_after = retry_after
        self.calls: list[tuple[str, dict[str, str], bytes]] = []

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        self.calls.append((url, dict(headers), body))
        code = self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]
        return Outcome(code, retry_after=self.retry_after)

    def ids(self) -> list[str]:
        return [h["webhook-id"] for _, h, _ in self.calls]


# Tests make events before the endpoint's first pass: it opts in to them (a new endpoint
# otherwise starts after the latest event).
ENDPOINT = Endpoint.create("https://billing.example.com/hooks", SECRET, backfill=True)


def deliver(kit: RefundKit, send: Sender, *endpoints: Endpoint) -> Any:
    return kit.deliver_events(endpoints or [ENDPOINT], send=send, rng=lambda: MIDDLE)


def test_three_failures_then_success_is_four_deliveries_with_one_id(
    kit: RefundKit, clock: FakeClock
) -> None:
    """R-4.5: a receiver failing 3 times gets 4 deliveries with one webhook-id and increasing
    timestamps; R-4.3: the body bytes are identical and each signature verifies."""
    record(kit)
    kit.refund("pay_1", usd("10.00"))
    send = FakeSender(500, 502, 429, 200)
    for _ in range(10):
        deliver(kit, send)
        clock.advance(hours=1)
    assert len(send.calls) == 4
    assert len(set(send.ids())) == 1
    stamps = [int(h["webhook-timestamp"]) for _, h, _ in send.calls]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 4
    assert len({body for _, _, body in send.calls}) == 1
    [delivery] = kit.webhook_deliveries()
    assert (delivery.status, delivery.attempts) == ("delivered", 4)


def test_410_gone_stops_at_once(kit: RefundKit, clock: FakeClock) -> None:
    """R-4.5: 410 Gone gets no further attempts."""
    record(kit)
    kit.refund("pay_1", usd("10.00"))
    send = FakeSender(410)
    report = deliver(kit, send)
    assert len(report.dead_lettered) == 1
    clock.advance(days=1)
    deliver(kit, send)
    assert len(send.calls) == 1
    assert kit.webhook_deliveries("failed")[0].last_status_code == 410


def test_retry_after_is_honoured(kit: RefundKit, clock: FakeClock) -> None:
    record(kit)
    kit.refund("pay_1", usd("10.00"))
    send = FakeSender(429, 200, retry_after=600)
    deliver(kit, send)
    clock.advance(minutes=9)
    deliver(kit, send)
    assert len(send.calls) == 1
    clock.advance(minutes=1)
    deliver(kit, send)
    assert len(send.calls) == 2


def test_a_refunds_events_go_out_in_order(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock
) -> None:
    """While refund.pending is failing, the refund's charge.refunded waits; another refund's
    event does not."""
    record(kit, "pay_1")
    record(kit, "pay_2")
    sandbox.script("pending_succeed")
    pending = kit.refund("pay_1", usd("10.00"))
    [(headers, body)] = sandbox.settle_pending()
    kit.handle_gateway_webhook("sandbox", headers, body)
    other = kit.refund("pay_2", usd("3.00"))
    send = FakeSender(500, 200)
    deliver(kit, send)
    types = [(b, h["webhook-id"]) for _, h, b in send.calls]
    assert len(types) == 2  # refund.pending (failed) and the other refund's event
    assert b"refund.pending" in types[0][0]
    assert other.id.encode() in types[1][0]
    clock.advance(seconds=6)
    deliver(kit, send)
    sent = [b for _, _, b in send.calls]
    assert [b"refund.pending" in b for b in sent[2:]] == [True, False]
    assert b"charge.refunded" in sent[3]
    assert pending.id.encode() in sent[3]


def test_a_crashed_deliverer_is_resumed_after_its_lease(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock
) -> None:
    """A deliverer that dies after claiming (or after sending, before marking: R-2.2 point 5)
    loses nothing: once the lease lapses the next one sends the same webhook-id, in order."""
    record(kit)
    sandbox.script("pending_succeed")
    kit.refund("pay_1", usd("10.00"))
    [(headers, body)] = sandbox.settle_pending()
    kit.handle_gateway_webhook("sandbox", headers, body)
    pending_event, refunded_event = kit.events()
    crashed = Deliverer(kit.store, [ENDPOINT], clock=clock)
    crashed.fan_out()
    [claimed] = crashed.claim()  # charge.refunded waits behind refund.pending
    assert claimed.event_id == pending_event.id
    # ...and it dies here. Another deliverer sends nothing meanwhile: the first event is
    # claimed, and the second may not overtake it.
    send = FakeSender(200)
    assert deliver(kit, send).attempts == 0
    clock.advance(seconds=61)
    deliver(kit, send)
    assert send.ids() == [pending_event.id, refunded_event.id]
    assert {d.status for d in kit.webhook_deliveries()} == {"delivered"}


def test_two_deliverers_never_claim_the_same_delivery(kit: RefundKit, clock: FakeClock) -> None:
    """The claim is a lease taken in a write transaction: whoever claims second gets nothing,
    whichever order they run in."""
    record(kit)
    for amount in ("1.00", "2.00", "3.00"):
        kit.refund("pay_1", usd(amount))
    a = Deliverer(kit.store, [ENDPOINT], clock=clock)
    b = Deliverer(kit.store, [ENDPOINT], clock=clock)
    a.fan_out()
    b.fan_out()
    got_a = a.claim(limit=2)
    got_b = b.claim()
    assert len(got_a) == 2
    assert len(got_b) == 1
    assert not {c.id for c in got_a} & {c.id for c in got_b}
    with kit.store.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar_one()
    assert count == 3  # fanned out once, however many deliverers ran


def test_concurrent_deliverers_send_each_event_once(kit: RefundKit, clock: FakeClock) -> None:
    """Four threads deliver at once against the same store: every event is sent exactly once.

    Checked against the naive claim (the lease condition removed): this test, the one above
    and the crash test fail."""
    record(kit, amount="500.00")
    for i in range(20):
        kit.refund("pay_1", usd(f"{i + 1}.00"))
    send = FakeSender(200)
    lock = threading.Lock()

    def locked(url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        with lock:
            return send(url, headers, body)

    errors: list[BaseException] = []

    def work() -> None:
        try:
            Deliverer(kit.store, [ENDPOINT], clock=clock, send=locked).run_once()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(send.ids()) == sorted(e.id for e in kit.events())


def test_endpoints_receive_only_the_event_types_they_want(kit: RefundKit) -> None:
    record(kit)
    kit.refund("pay_1", usd("10.00"))
    failures = Endpoint.create(
        "https://ops.example.com/hooks", SECRET, ["refund.failed"], backfill=True
    )
    send = FakeSender(200)
    deliver(kit, send, ENDPOINT, failures)
    assert [url for url, _, _ in send.calls] == [ENDPOINT.url]


def test_interrupting_a_pass_gives_the_claims_back(kit: RefundKit, clock: FakeClock) -> None:
    """Ctrl-C during a send: nothing is counted as attempted, nothing stays claimed."""
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    kit.refund("pay_1", usd("2.00"))

    def interrupted(url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kit.deliver_events([ENDPOINT], send=interrupted)
    send = FakeSender(200)
    deliver(kit, send)  # no lease to wait for
    assert len(send.calls) == 2
    assert [d.attempts for d in kit.webhook_deliveries()] == [1, 1]


def test_run_forever_stops_cleanly_on_ctrl_c() -> None:
    from refundkit._delivery import DeliveryReport

    passes: list[int] = []
    reports: list[DeliveryReport] = []

    def sleep(_seconds: float) -> None:
        if len(passes) == 3:
            raise KeyboardInterrupt

    def one() -> DeliveryReport:
        passes.append(1)
        return DeliveryReport(delivered=("evt_1",))

    assert run_forever(one, sleep=sleep, on_report=reports.append) == 3
    assert len(reports) == 3


def test_endpoints_from_the_configuration_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    config = Config(
        {
            "webhooks": {
                "endpoints": [
                    {"url": "https://a.example.com/h", "secret": "env:HOOK_SECRET"},
                    {
                        "url": "https://b.example.com/h",
                        "secret": [SECRET, new_secret()],
                        "events": ["refund.failed"],
                    },
                ]
            }
        }
    )
    a, b = endpoints_from_config(config.section("webhooks"))
    assert a.secrets == (SECRET,)
    assert a.events is None
    assert len(b.secrets) == 2
    assert b.events == frozenset({"refund.failed"})
    assert SECRET not in repr(a)


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"url": "ftp://x/h", "secret": SECRET}, ConfigurationError),
        ({"url": "https://x/h", "secret": ""}, InvalidWebhookSecret),
        ({"url": "https://x/h", "secret": SECRET, "events": ["charge.nope"]}, ConfigurationError),
        ({"url": "https://x/h"}, ConfigurationError),
        ({"url": "https://x/h", "secret": SECRET, "backfill": "yes"}, ConfigurationError),
    ],
)
def test_bad_endpoint_configuration_is_refused(
    entry: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        endpoints_from_config({"endpoints": [entry]})


def test_no_endpoints_no_work(kit: RefundKit) -> None:
    record(kit)
    kit.refund("pay_1", usd("10.00"))
    assert kit.deliver_events([]).attempts == 0
    assert cast(list[object], kit.webhook_deliveries()) == []


def test_delivery_never_blocks_a_refund(kit: RefundKit) -> None:
    """No transaction is open while a webhook is being sent: a refund commits meanwhile."""
    record(kit, "pay_1")
    record(kit, "pay_2")
    kit.refund("pay_1", usd("1.00"))
    made: list[str] = []

    def slow_receiver(url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        made.append(kit.refund("pay_2", usd("2.00")).status.value)  # while "on the wire"
        return Outcome(200)

    kit.deliver_events([ENDPOINT], send=slow_receiver)
    assert made[0] == "succeeded"


def test_a_lapsed_claim_is_not_sent_by_its_old_holder(kit: RefundKit, clock: FakeClock) -> None:
    """A slow deliverer whose lease lapsed while it sent earlier items of its batch does not
    send a delivery that another deliverer has claimed since: one sender per attempt."""
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    slow = Deliverer(kit.store, [ENDPOINT], clock=clock)
    slow.fan_out()
    [claimed] = slow.claim()
    clock.advance(seconds=61)
    fast = Deliverer(kit.store, [ENDPOINT], clock=clock)
    [taken] = fast.claim()
    send = FakeSender(200)
    assert slow._attempt(claimed, send) is None
    assert send.calls == []
    assert fast._attempt(taken, send) == "delivered"
    assert len(send.calls) == 1


# --- 410 Gone disables an endpoint ----------------------------------------------------------------


class Router:
    """A fake sender per endpoint URL, so one pass can talk to several receivers."""

    def __init__(self, **by_host: FakeSender) -> None:
        self.by_host = by_host

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        return self.by_host[urlsplit(url).hostname or ""](url, headers, body)


GONE = Endpoint.create("https://gone.example.com/hooks", SECRET, backfill=True)


def test_410_disables_the_endpoint_for_every_deliverer_until_it_is_enabled(
    kit: RefundKit,
    sandbox: SandboxGateway,
    clock: FakeClock,
    db_url: str,
    sandbox_path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One attempt gets the 410; the rest of the endpoint's queue (the same claimed batch
    included) is parked, not sent, for this kit and another one on the same store; the other
    endpoint is unaffected; enabling sends the parked events in order, the one that got the
    410 first with the same webhook-id."""
    record(kit, "pay_1")
    record(kit, "pay_2")
    sandbox.script("pending_succeed")
    kit.refund("pay_1", usd("10.00"))
    [(headers, body)] = sandbox.settle_pending()
    kit.handle_gateway_webhook("sandbox", headers, body)  # pay_1's refund: two events
    kit.refund("pay_2", usd("3.00"))
    gone, billing = FakeSender(410, 200), FakeSender(200)
    router = Router(**{"gone.example.com": gone, "billing.example.com": billing})
    with caplog.at_level("WARNING", logger="refundkit.webhooks"):
        report = kit.deliver_events([GONE, ENDPOINT], send=router, rng=lambda: MIDDLE)
        assert len(gone.calls) == 1
        assert len(billing.calls) == 3
        assert len(report.dead_lettered) == 1
        [state] = [e for e in kit.webhook_endpoints() if e.url == GONE.url]
        assert state.disabled_at == clock()
        assert state.disabled_reason == f"410 Gone in reply to {gone.ids()[0]}"
        assert (state.pending, state.failed) == (2, 1)
        mine = [dl for dl in kit.webhook_deliveries() if dl.endpoint == GONE.url]
        assert [(dl.status, dl.parked) for dl in mine] == [
            ("failed", False), ("pending", True), ("pending", True)
        ]  # fmt: skip
        assert mine[1].to_dict()["parked"] is True

        # Another kit (another deliverer process) sees it disabled; new events park too.
        other = open_kit(db_url, sandbox_path, clock=clock, retry_backoff=0)
        try:
            record(other, "pay_3")
            other.refund("pay_3", usd("1.00"))
            for _ in range(3):
                clock.advance(days=1)
                other.deliver_events([GONE, ENDPOINT], send=router, rng=lambda: MIDDLE)
            assert len(gone.calls) == 1
            assert len(billing.calls) == 4
            assert [e.pending for e in other.webhook_endpoints() if e.url == GONE.url] == [3]
            assert other.enable_webhook_endpoint(GONE.url) == 4
        finally:
            other.close()
    gone_warnings = [r for r in caplog.records if "410 Gone" in r.getMessage()]
    assert len(gone_warnings) == 1

    deliver(kit, router, GONE, ENDPOINT)
    ids = [e.id for e in kit.events()]
    first, *resent = gone.ids()
    assert resent[0] == first == ids[0]  # the event that got the 410 again, with its id
    assert sorted(resent) == sorted(ids)
    assert resent.index(ids[0]) < resent.index(ids[1])  # one refund's events stay in order
    assert {dl.status for dl in kit.webhook_deliveries()} == {"delivered"}
    assert kit.enable_webhook_endpoint(GONE.url) == 0  # not disabled: nothing to do


def test_enabling_an_unknown_endpoint_is_refused(kit: RefundKit) -> None:
    with pytest.raises(WebhookEndpointNotFound):
        kit.enable_webhook_endpoint("https://never.example.com/hooks")
    assert kit.webhook_endpoints() == []


def test_a_dead_letter_retried_while_disabled_waits_for_enable(
    kit: RefundKit, clock: FakeClock
) -> None:
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    send = FakeSender(410, 200)
    deliver(kit, send)
    [dead] = kit.webhook_deliveries("failed")
    assert kit.retry_event(dead.event_id) == 1
    clock.advance(minutes=1)
    deliver(kit, send)
    assert len(send.calls) == 1
    assert kit.webhook_deliveries()[0].parked
    kit.enable_webhook_endpoint(ENDPOINT.url)
    assert len(deliver(kit, send).delivered) == 1
    assert send.ids() == [dead.event_id, dead.event_id]


# --- a new endpoint starts from now -------------------------------------------------------------


def test_a_new_endpoint_starts_after_the_latest_event_unless_it_backfills(
    kit: RefundKit, clock: FakeClock
) -> None:
    """An endpoint added after N events gets only the later ones; its start is recorded when
    first seen (a later backfill flag does not move it); backfill = true gets them all."""
    record(kit, amount="500.00")
    for amount in ("1.00", "2.00", "3.00"):
        kit.refund("pay_1", usd(amount))
    send = FakeSender(200)
    deliver(kit, send)  # ENDPOINT (backfill) gets the three
    late = Endpoint.create("https://late.example.com/hooks", SECRET)
    assert deliver(kit, send, ENDPOINT, late).attempts == 0
    [state] = [e for e in kit.webhook_endpoints() if e.url == late.url]
    assert state.start_seq == 3
    assert state.first_seen_at == clock()

    fourth = kit.refund("pay_1", usd("4.00"))
    clock.advance(minutes=1)
    late_again = Endpoint.create(late.url, SECRET, backfill=True)  # too late to backfill
    full = Endpoint.create("https://full.example.com/hooks", SECRET, backfill=True)
    deliver(kit, send, ENDPOINT, late_again, full)
    got: dict[str, list[str]] = {}
    for url, headers, _ in send.calls[3:]:
        got.setdefault(url, []).append(headers["webhook-id"])
    ids = [e.id for e in kit.events()]
    assert got[late.url] == [ids[-1]]
    assert got[full.url] == ids
    assert got[ENDPOINT.url] == [ids[-1]]
    assert kit.events()[-1].data["refund"]["id"] == fourth.id


def test_backfill_from_the_configuration_file() -> None:
    [endpoint] = endpoints_from_config(
        {"endpoints": [{"url": "https://a.example.com/h", "secret": SECRET, "backfill": True}]}
    )
    assert endpoint.backfill is True
    [plain] = endpoints_from_config({"endpoints": [{"url": "https://a.example.com/h",
                                                    "secret": SECRET}]})  # fmt: skip
    assert plain.backfill is False


def test_upgrading_keeps_existing_endpoints_on_their_whole_outbox(
    kit: RefundKit, clock: FakeClock
) -> None:
    """Migration 0007: an endpoint that had deliveries before it starts at 0, so an event made
    before the upgrade but not yet fanned out still reaches it (a new endpoint would skip it)."""
    from alembic import command

    from .test_schema import alembic_config

    record(kit)
    kit.refund("pay_1", usd("1.00"))
    first = kit.events()[0]
    cfg = alembic_config()
    with kit.store.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        conn.execute(
            sa.text(
                "INSERT INTO webhook_deliveries (event_seq, event_id, refund_id, endpoint, "
                "status, attempts, started_at, next_attempt_at) VALUES (1, :id, :rf, :url, "
                "'delivered', 1, '2026-11-01T00:00:00.000000Z', '2026-11-01T00:00:00.000000Z')"
            ),
            {"id": first.id, "rf": first.data["refund"]["id"], "url": ENDPOINT.url},
        )
    kit.refund("pay_1", usd("2.00"))  # made before the upgrade, not yet fanned out
    with kit.store.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    plain = Endpoint.create(ENDPOINT.url, SECRET)  # no backfill: its start comes from 0007
    send = FakeSender(200)
    kit.deliver_events([plain], send=send)
    assert send.ids() == [kit.events()[1].id]
    [state] = kit.webhook_endpoints()
    assert (state.start_seq, state.first_seen_at) == (0, T0.replace(month=11, day=1, hour=0))

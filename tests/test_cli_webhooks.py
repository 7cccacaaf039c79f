"""The CLI of webhooks and accounting: ``deliver`` (once, ``--forever``, ``--retry``),
``events --failed``, ``endpoints list/enable`` and ``journal --since/--format/--check``."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from refundkit.webhooks import new_secret, verify

from .test_cli import PAYMENT, add_payment, assert_one_error_line, db, run, run_json
from .test_webhook_delivery import Receiver, server

__all__ = ["db", "server"]  # fixtures used here

SECRET = new_secret()


@pytest.fixture
def paid(db: str) -> str:
    add_payment(db)
    return db


@pytest.fixture
def config(tmp_path: Path, server: tuple[str, type[Receiver]]) -> str:
    url, _ = server
    path = tmp_path / "refundkit.toml"
    path.write_text(
        # backfill: the tests refund before the endpoint's first pass
        f'[[webhooks.endpoints]]\nurl = "{url}"\nsecret = "env:RK_HOOK_SECRET"\nbackfill = true\n',
        encoding="utf-8",
    )
    return str(path)


def hook(db: str, config: str, *args: str) -> Any:
    return run("--db", db, "--config", config, *args, env={"RK_HOOK_SECRET": SECRET})


def test_deliver_without_endpoints_is_a_user_error(paid: str) -> None:
    assert_one_error_line(run("--db", paid, "deliver"), "no_webhook_endpoints")


def test_deliver_sends_signed_events(
    paid: str, config: str, server: tuple[str, type[Receiver]]
) -> None:
    _, receiver = server
    refund = run_json("--db", paid, "refund", PAYMENT, "--amount", "5.00")
    result = hook(paid, config, "deliver")
    assert result.exit_code == 0, result.output
    assert "Delivered 1, retrying 0, dead-lettered 0." in result.stdout
    [(headers, body)] = receiver.received
    assert verify(headers, body, SECRET)["data"]["refund"]["id"] == refund["id"]
    again = hook(paid, config, "deliver", "--json")
    assert json.loads(again.stdout) == {"delivered": [], "retrying": [], "dead_lettered": []}


def test_failed_deliveries_are_listed_and_retried(
    paid: str, config: str, server: tuple[str, type[Receiver]]
) -> None:
    _, receiver = server
    receiver.status = 410  # gone: dead-lettered at once
    run_json("--db", paid, "refund", PAYMENT, "--amount", "5.00")
    assert "dead-lettered 1" in hook(paid, config, "deliver").stdout
    [failed] = run_json("--db", paid, "events", "--failed")["failed"]
    assert failed["last_status_code"] == 410
    table = run("--db", paid, "events", "--failed")
    assert failed["event_id"] in table.stdout
    assert "deliver --retry" in table.stdout

    assert "endpoints enable URL" in table.stdout

    # The 410 also disabled the endpoint: a retry goes back in the queue, parked, until the
    # endpoint is enabled again; then it goes out with its webhook-id.
    receiver.status = 200
    result = hook(paid, config, "deliver", "--retry", failed["event_id"])
    assert result.exit_code == 0, result.output
    assert "Delivered 0" in result.stdout
    assert f"Disabled: {failed['endpoint']} (410 Gone in reply to" in result.stdout
    assert "1 parked" in result.stdout
    assert len(receiver.received) == 1
    enabled = run("--db", paid, "endpoints", "enable", failed["endpoint"])
    assert enabled.exit_code == 0, enabled.output
    assert "1 deliveries back in the queue" in enabled.stdout
    result = hook(paid, config, "deliver")
    assert "Delivered 1" in result.stdout
    assert "Disabled" not in result.stdout
    assert receiver.received[-1][0]["webhook-id"] == failed["event_id"]
    assert run_json("--db", paid, "events", "--failed") == {"failed": []}
    nothing = hook(paid, config, "deliver", "--retry", failed["event_id"])
    assert_one_error_line(nothing, "nothing_to_retry")
    assert_one_error_line(hook(paid, config, "deliver", "--retry", "evt_nope"), "invalid_input")


def test_deliver_forever_stops_cleanly_on_ctrl_c(
    paid: str, config: str, server: tuple[str, type[Receiver]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, receiver = server
    run_json("--db", paid, "refund", PAYMENT, "--amount", "5.00")
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", nap)
    result = hook(paid, config, "deliver", "--forever", "--interval", "0.5")
    assert result.exit_code == 0, result.output
    assert "Stopped after 1 attempt(s)." in result.stdout
    assert naps == [0.5, 0.5]
    assert len(receiver.received) == 1


def test_a_410_disables_the_endpoint_until_it_is_enabled(
    paid: str, config: str, server: tuple[str, type[Receiver]]
) -> None:
    """410 Gone: one attempt, the endpoint shows as disabled, later events are parked (not
    sent); `endpoints enable` resumes them in order with the same webhook-id."""
    url, receiver = server
    receiver.status = 410
    run_json("--db", paid, "refund", PAYMENT, "--amount", "5.00")
    assert "dead-lettered 1" in hook(paid, config, "deliver").stdout
    run_json("--db", paid, "refund", PAYMENT, "--amount", "1.00")
    second = hook(paid, config, "deliver")
    assert "Delivered 0, retrying 0, dead-lettered 0." in second.stdout
    assert "1 parked" in second.stdout
    assert len(receiver.received) == 1

    [state] = run_json("--db", paid, "endpoints", "list")["endpoints"]
    assert state["url"] == url
    assert state["status"] == "disabled"
    assert state["disabled_reason"].startswith("410 Gone in reply to evt_")
    assert (state["pending"], state["failed"], state["start_seq"]) == (1, 1, 0)
    table = run("--db", paid, "endpoints", "list")
    assert table.exit_code == 0, table.output
    assert "disabled" in table.stdout
    assert "endpoints enable URL" in table.stdout

    receiver.status = 204
    enabled = run_json("--db", paid, "endpoints", "enable", url)
    assert enabled == {"url": url, "status": "enabled", "was_disabled": True, "resumed": 2}
    assert "Delivered 2" in hook(paid, config, "deliver").stdout
    ids = [h["webhook-id"] for h, _ in receiver.received]
    assert ids[1:] == [e["id"] for e in run_json("--db", paid, "events")["events"]]
    assert ids[0] == ids[1]  # the event that got the 410, again with its id
    again = run("--db", paid, "endpoints", "enable", url)
    assert "was not disabled" in again.stdout
    assert run_json("--db", paid, "endpoints", "list")["endpoints"][0]["status"] == "enabled"


def test_enabling_an_unknown_endpoint_is_a_user_error(paid: str) -> None:
    result = run("--db", paid, "endpoints", "enable", "https://nowhere.example.com/h")
    assert_one_error_line(result, "webhook_endpoint_not_found")
    assert run_json("--db", paid, "endpoints", "list") == {"endpoints": []}
    assert "No webhook endpoints seen yet" in run("--db", paid, "endpoints", "list").stdout


# --- journal export and check -------------------------------------------------------------------


def test_journal_export_csv_and_jsonl_with_stable_ids(paid: str) -> None:
    run_json("--db", paid, "refund", PAYMENT, "--amount", "5.00")
    run_json("--db", paid, "refund", PAYMENT, "--amount", "0.25")
    csv_out = run("--db", paid, "journal", "--format", "csv")
    assert csv_out.exit_code == 0, csv_out.output
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert len(rows) == 4
    assert rows[0]["amount"] == "500"
    assert rows[0]["amount_decimal"] == "5.00"
    jsonl = run("--db", paid, "journal", "--format", "jsonl").stdout.splitlines()
    lines = [json.loads(x) for x in jsonl]
    assert [x["line_id"] for x in lines] == [r["line_id"] for r in rows]
    assert len({x["line_id"] for x in lines}) == 4
    assert lines[0]["line_id"] == f"{lines[0]['journal_id']}/debit/refunds"
    # Stable: the same export again gives the same ids.
    again = [
        json.loads(x) for x in run("--db", paid, "journal", "--format", "jsonl").stdout.splitlines()
    ]
    assert again == lines


def test_journal_since(paid: str) -> None:
    run_json("--db", paid, "refund", PAYMENT, "--amount", "5.00")
    assert len(run("--db", paid, "journal", "--since", "2000-01-01", "--format", "jsonl")
               .stdout.splitlines()) == 2  # fmt: skip
    later = run("--db", paid, "journal", "--since", "2999-01-01T00:00:00Z", "--format", "jsonl")
    assert later.stdout == ""
    assert run_json("--db", paid, "journal", "--since", "2999-01-01") == {"lines": []}
    bad = run("--db", paid, "journal", "--since", "yesterday")
    assert_one_error_line(bad, "invalid_input")


def test_journal_check_passes_then_finds_a_refund_without_its_journal(paid: str) -> None:
    refund = run_json("--db", paid, "refund", PAYMENT, "--amount", "5.00")
    ok = run("--db", paid, "journal", "--check")
    assert ok.exit_code == 0, ok.output
    assert "USD: debits 5.00 USD, credits 5.00 USD: balanced" in ok.stdout
    engine = sa.create_engine(paid)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM journal_lines WHERE side = 'credit'"))
    engine.dispose()
    broken = run("--db", paid, "journal", "--check", "--json")
    assert broken.exit_code == 1
    report = json.loads(broken.stdout)
    assert report["ok"] is False
    assert report["totals"]["USD"] == {"debit": 500, "credit": 0, "balanced": False}
    assert report["unbalanced_journals"] == [f"jr_{refund['id']}"]
    engine = sa.create_engine(paid)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM journal_lines"))
    engine.dispose()
    missing = run_json_fail("--db", paid, "journal", "--check")
    assert missing["missing"] == [{"refund_id": refund["id"], "status": "succeeded",
                                   "kind": "refund"}]  # fmt: skip
    text = run("--db", paid, "journal", "--check")
    assert f"refund {refund['id']} is succeeded but has no refund journal" in text.stdout
    assert_one_error_line(text, "journal_check_failed", exit_code=1)


def run_json_fail(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 1, result.output
    return json.loads(result.stdout)

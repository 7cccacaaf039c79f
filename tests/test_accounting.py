"""Accounting export and the trial balance: stable line ids, ``since``, and a check that finds
unbalanced journals, refunds without their journal and journals that should not exist."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from refundkit import GatewayDeclined, InvalidInput, JournalLine, Money, RefundKit
from refundkit._accounting import line_id, parse_since, trial_balance, write_export
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import T0, FakeClock, record, usd


def test_journal_since_keeps_lines_posted_from_then(kit: RefundKit, clock: FakeClock) -> None:
    record(kit)
    first = kit.refund("pay_1", usd("1.00"))
    clock.advance(hours=1)
    second = kit.refund("pay_1", usd("2.00"))
    assert {x.refund_id for x in kit.journal(since=T0)} == {first.id, second.id}
    later = kit.journal(since=T0 + timedelta(minutes=30))
    assert {x.refund_id for x in later} == {second.id}
    assert kit.journal(second.id, since=T0) == kit.journal(second.id)
    with pytest.raises(InvalidInput):
        kit.journal(since=T0.replace(tzinfo=None))


def test_line_ids_are_unique_and_stable(kit: RefundKit) -> None:
    record(kit)
    for amount in ("1.00", "2.00"):
        kit.refund("pay_1", usd(amount))
    ids = [line_id(x) for x in kit.journal()]
    assert len(set(ids)) == 4
    assert ids == [line_id(x) for x in kit.journal()]


def test_jsonl_export_has_integer_amounts_and_exact_decimals(kit: RefundKit) -> None:
    record(kit, amount="500", currency="JPY")
    kit.refund("pay_1", Money(123, "JPY"))
    out = io.StringIO()
    assert write_export(kit.journal(), out, "jsonl") == 2
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(r["amount"], r["amount_decimal"], r["currency"]) for r in rows] == [
        (123, "123", "JPY"),
        (123, "123", "JPY"),
    ]
    with pytest.raises(InvalidInput):
        write_export([], io.StringIO(), "xlsx")


def test_trial_balance_of_a_healthy_journal_with_a_reversal(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    record(kit, "pay_eur", currency="EUR")
    refund = kit.refund("pay_1", usd("10.00"))
    kit.refund("pay_eur", Money(700, "EUR"))
    assert refund.gateway_refund_id is not None
    kit.handle_gateway_webhook("sandbox", *sandbox.reverse(refund.gateway_refund_id))
    sandbox.script("decline")
    with pytest.raises(GatewayDeclined):
        kit.refund("pay_1", usd("1.00"))  # failed: no journal expected
    assert [r.status.value for r in kit.refunds("pay_1")].count("failed") == 1
    report = kit.trial_balance()
    assert report.ok, report.to_dict()
    assert report.totals["USD"] == (usd("20.00"), usd("20.00"))
    assert report.totals["EUR"] == (Money(700, "EUR"), Money(700, "EUR"))


def line(journal: str, refund: str, side: str, cents: int, kind: str = "refund") -> JournalLine:
    account = "refunds" if side == "debit" else "gateway_clearing:sandbox"
    return JournalLine(journal, refund, kind, account, side, Money(cents, "USD"), T0)  # type: ignore[arg-type]


def test_trial_balance_finds_every_kind_of_problem() -> None:
    lines = [
        line("jr_a", "a", "debit", 100),
        line("jr_a", "a", "credit", 100),
        line("jr_b", "b", "debit", 100),
        line("jr_b", "b", "credit", 90),  # does not balance
        line("jr_c", "c", "debit", 5),
        line("jr_c", "c", "credit", 5),  # c failed: no journal should exist
    ]
    statuses = {"a": "reversed", "b": "succeeded", "c": "failed", "d": "succeeded"}
    report = trial_balance(lines, statuses)
    assert not report.ok
    assert report.totals["USD"] == (Money(205, "USD"), Money(195, "USD"))
    assert report.unbalanced_journals == ("jr_b",)
    assert [(m.refund_id, m.kind) for m in report.missing] == [("a", "reversal"), ("d", "refund")]
    assert report.unexpected == (("jr_c", "failed"),)
    assert report.to_dict()["totals"]["USD"]["balanced"] is False


def test_trial_balance_of_nothing_is_ok() -> None:
    assert trial_balance([], {}).ok


@pytest.mark.parametrize(
    ("text", "hour"),
    [("2026-11-22", 0), ("2026-11-22T10:00:00Z", 10), ("2026-11-22T12:00+02:00", 10)],
)
def test_parse_since(text: str, hour: int) -> None:
    assert parse_since(text) == T0.replace(hour=hour)


@pytest.mark.parametrize("text", ["yesterday", "", "22/11/2026"])
def test_parse_since_refuses_what_is_not_a_time(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_since(text)


def test_export_journal_from_the_facade(kit: RefundKit, clock: FakeClock) -> None:
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    clock.advance(hours=1)
    kit.refund("pay_1", usd("2.00"))
    out = io.StringIO()
    assert kit.export_journal(out, "csv", since=T0 + timedelta(minutes=1)) == 2
    header, *rows = out.getvalue().splitlines()
    assert header.startswith("line_id,journal_id,refund_id,")
    assert [r.split(",")[7] for r in rows] == ["200", "200"]

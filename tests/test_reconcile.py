"""Drift reconciliation: the gateway's books against the local record (issue 7, DESIGN)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from refundkit import Destination, Money, RefundKit, RefundStatus
from refundkit._errors import InvalidInput, PaymentNotFound, UnknownGateway
from refundkit._gateway import GatewayRefund
from refundkit._ledger import is_balanced
from refundkit._reconcile import compare
from refundkit.cli import cli
from refundkit.gateways.sandbox import SandboxGateway

from ._doc_examples import run_example
from .conftest import T0, FakeClock, record, row_counts, usd

S = RefundStatus


def test_a_dashboard_refund_is_imported_counted_journaled_and_announced(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    gid = sandbox.dashboard_refund("sbx_ch_pay_1", usd("20.00"))
    report = kit.reconcile()
    [found] = report.findings
    assert (found.code, found.action, found.gateway_refund_id) == ("imported", "imported", gid)
    [refund] = kit.refunds("pay_1")
    assert refund.id == found.refund_id
    assert (refund.status, refund.amount, refund.gateway_refund_id) == (
        S.SUCCEEDED,
        usd("20.00"),
        gid,
    )
    assert refund.reason == "external"
    assert refund.actor == "gateway:sandbox"
    # Counted against the cap: only 30.00 is left to refund.
    assert kit.quote("pay_1").max_amount == usd("30.00")
    assert kit.payment("pay_1").refunded == usd("20.00")
    lines = kit.journal(refund.id)
    assert len(lines) == 2
    assert is_balanced(lines)
    [event] = kit.events()
    assert event.type == "refund.external"
    assert event.data["refund"]["gateway_refund_id"] == gid
    assert event.data["payment"]["amount_refunded"] == 2000


def test_reconciling_twice_imports_nothing_twice(kit: RefundKit, sandbox: SandboxGateway) -> None:
    record(kit)
    sandbox.dashboard_refund("sbx_ch_pay_1", usd("20.00"))
    kit.reconcile()
    counts = row_counts(kit)
    again = kit.reconcile()
    assert again.clean
    assert again.payments_checked == 1
    assert row_counts(kit) == counts


def test_settlement_and_disputes_at_the_gateway_are_brought_home(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """The quote's "not settled yet" and "disputed" limits read flags the gateway changes
    later; reconcile stores what it now says and reports each change once."""
    record(kit, settled=False)
    record(kit, "pay_2")
    sandbox.set_settled("sbx_ch_pay_1")
    sandbox.set_disputed("sbx_ch_pay_2")
    found = {(f.payment_id, f.code, f.action) for f in kit.reconcile().findings}
    assert found == {("pay_1", "settled", "updated"), ("pay_2", "dispute_opened", "updated")}
    assert (kit.payment("pay_1").settled, kit.payment("pay_2").disputed) == (True, True)
    assert [lim.code for lim in kit.quote("pay_2").limits] == ["disputed"]
    assert kit.reconcile().clean
    sandbox.set_disputed("sbx_ch_pay_2", False)
    [closed] = kit.reconcile().findings
    assert (closed.payment_id, closed.code) == ("pay_2", "dispute_closed")
    assert kit.quote("pay_2").max_amount == usd("50.00")


def test_an_outside_refund_beyond_the_held_balance_goes_to_a_person(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    sandbox.script("timeout_before")  # our 40.00 is unknown: held, not at the gateway
    kit.refund("pay_1", usd("40.00"))
    sandbox.dashboard_refund("sbx_ch_pay_1", usd("30.00"))
    counts = row_counts(kit)
    [found] = kit.reconcile().findings
    assert (found.code, found.action) == ("over_cap", "manual_review")
    assert row_counts(kit) == counts


def test_a_local_refund_the_gateway_does_not_know_is_flagged(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.gateway_refund_id is not None
    sandbox.forget_refund(refund.gateway_refund_id)
    counts = row_counts(kit)
    [found] = kit.reconcile().findings
    assert (found.code, found.action, found.refund_id) == (
        "unknown_at_gateway",
        "flagged",
        refund.id,
    )
    assert row_counts(kit) == counts
    assert kit.get_refund(refund.id).status is S.SUCCEEDED


@pytest.mark.parametrize(
    ("amount", "code"), [("12.00", "amount_mismatch"), (None, "currency_mismatch")]
)
def test_an_amount_or_currency_mismatch_goes_to_manual_review(
    kit: RefundKit, sandbox: SandboxGateway, amount: str | None, code: str
) -> None:
    record(kit)
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.status is S.PENDING
    assert refund.gateway_refund_id
    changed = usd(amount) if amount else Money(1000, "EUR")
    sandbox.amend_refund(refund.gateway_refund_id, changed)
    [found] = kit.reconcile().findings
    assert (found.code, found.action) == (code, "manual_review")
    assert kit.get_refund(refund.id).status is S.MANUAL_REVIEW
    assert kit.reconcile().clean  # a person has it now; not reported again


def test_a_pending_refund_settled_at_the_gateway_is_resolved(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    sandbox.script("pending_succeed")
    refund = kit.refund("pay_1", usd("10.00"))
    sandbox.settle_pending()  # its webhook is lost
    [found] = kit.reconcile().findings
    assert (found.code, found.action) == ("status_changed", "resolved")
    assert kit.get_refund(refund.id).status is S.SUCCEEDED
    assert [e.type for e in kit.events()] == ["refund.pending", "charge.refunded"]


def test_a_pending_dashboard_refund_is_held_then_settled_by_the_next_pass(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit)
    gid = sandbox.dashboard_refund("sbx_ch_pay_1", usd("5.00"), status="pending")
    kit.reconcile()
    [refund] = kit.refunds("pay_1")
    assert refund.status is S.PENDING
    assert kit.quote("pay_1").max_amount == usd("45.00")
    sandbox.settle_pending(gid)
    [found] = kit.reconcile().findings
    assert found.code == "status_changed"
    assert kit.get_refund(refund.id).status is S.SUCCEEDED
    assert kit.payment("pay_1").refunded == usd("5.00")


def test_recovery_settles_an_imported_pending_refund_from_the_gateways_list(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An imported refund never carried our id, so looking it up by our id can only fail;
    recovery reads the gateway's refund list by its gateway refund id instead, and never
    sends it (it was never ours to send)."""
    record(kit)
    gid = sandbox.dashboard_refund("sbx_ch_pay_1", usd("5.00"), status="pending")
    kit.reconcile()
    [refund] = kit.refunds("pay_1")
    assert refund.imported
    sandbox.settle_pending(gid)  # its webhook is lost

    def no_lookup(request: object) -> None:
        raise AssertionError("an imported refund cannot be looked up by our refund id")

    monkeypatch.setattr(sandbox, "lookup_refund", no_lookup)
    monkeypatch.setattr(sandbox, "refund", no_lookup)
    [(_, due)] = kit.recovery_due()
    clock.advance(seconds=(due - clock.now).total_seconds() + 1)
    [settled] = kit.recover().resolved
    assert (settled.id, settled.status) == (refund.id, S.SUCCEEDED)
    assert kit.payment("pay_1").refunded == usd("5.00")
    assert kit.reconcile().clean


def test_a_customer_balance_top_up_refunded_outside_shrinks_the_balance(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit, destination=Destination.customer_balance())
    sandbox.dashboard_refund("sbx_ch_pay_1", usd("15.00"))
    kit.reconcile()
    assert kit.balance("cus_1").totals["USD"] == usd("35.00")


def test_selection_by_payment_gateway_and_date(
    kit: RefundKit, sandbox: SandboxGateway, clock: FakeClock
) -> None:
    record(kit, "pay_old", captured_at=T0 - timedelta(days=30))
    record(kit, "pay_new")
    for pid in ("pay_old", "pay_new"):
        sandbox.dashboard_refund(f"sbx_ch_{pid}", usd("1.00"))
    assert kit.reconcile(since=T0 - timedelta(days=1)).payments_checked == 1
    assert [r.payment_id for r in kit.refunds()] == ["pay_new"]
    assert kit.reconcile("pay_old").payments_checked == 1
    assert kit.reconcile(gateway="sandbox").payments_checked == 2
    with pytest.raises(PaymentNotFound):
        kit.reconcile("pay_nope")
    with pytest.raises(UnknownGateway):
        kit.reconcile(gateway="nope")
    with pytest.raises(InvalidInput):
        kit.reconcile(since=T0.replace(tzinfo=None))


def test_without_a_refund_list_the_refunded_total_is_compared(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(kit)
    kit.refund("pay_1", usd("10.00"))
    sandbox.dashboard_refund("sbx_ch_pay_1", usd("5.00"))
    monkeypatch.setattr(sandbox, "list_refunds", lambda _gpid: None)
    [found] = kit.reconcile().findings
    assert (found.code, found.amount) == ("imported", usd("5.00"))
    assert kit.payment("pay_1").refunded == usd("15.00")
    assert kit.reconcile().clean


def test_compare_pairs_by_gateway_id_then_refund_id_and_spots_duplicates(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """The pure core: a refund made twice at the gateway is reported, never imported."""
    record(kit)
    refund = kit.refund("pay_1", usd("10.00"))
    assert refund.gateway_refund_id
    twin = GatewayRefund("sbx_re_twin", usd("10.00"), "succeeded", refund_id=refund.id)
    listed = [GatewayRefund(refund.gateway_refund_id, usd("10.00"), "succeeded"), twin]
    result = compare([refund], listed)
    assert [p.local.id for p in result.pairs] == [refund.id]
    assert [p.remote for p in result.duplicates] == [twin]
    assert result.external == ()
    assert result.missing == ()


def test_cli_reconcile_table_and_json(
    db_url: str, kit: RefundKit, sandbox: SandboxGateway, sandbox_path: str, tmp_path: Path
) -> None:
    record(kit)
    gid = sandbox.dashboard_refund("sbx_ch_pay_1", usd("20.00"))
    # The CLI's sandbox must read the same state as the kit's (a PostgreSQL store has no file
    # for the sandbox to sit beside): the configuration file says where it is.
    config = tmp_path / "refundkit.toml"
    config.write_text(f'[gateways.sandbox]\npath = "{sandbox_path}"\n', encoding="utf-8")
    runner = CliRunner(env={"REFUNDKIT_CONFIG": str(config), "REFUNDKIT_DB": None})
    out = runner.invoke(cli, ["--db", db_url, "reconcile", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["counts"]["imported"] == 1
    assert doc["findings"][0]["gateway_refund_id"] == gid
    table = runner.invoke(cli, ["--db", db_url, "reconcile"])
    assert table.exit_code == 0
    assert "No drift" in table.output
    bad = runner.invoke(cli, ["--db", db_url, "reconcile", "--since", "yesterday"])
    assert bad.exit_code == 2
    assert bad.output.count("\n") == 1


def test_the_reconciliation_page_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "reconciliation.md").read_text()
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, re.DOTALL)
    [code] = [body for lang, body in blocks if lang == "python" and "dashboard_refund" in body]
    shown = next(body for lang, body in blocks if lang == "" and "imported 20.00 USD" in body)
    assert run_example(code, tmp_path) == shown

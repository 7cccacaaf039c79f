"""A person decides a refund in manual review (kit.resolve, refundkit resolve): the gateway is
asked first, the decision is booked once and kept, and bad decisions write nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from refundkit import (
    CardDataRefused,
    GatewayDisagrees,
    GatewayUnavailable,
    InvalidInput,
    RefundKit,
    RefundNotFound,
    RefundStatus,
    ResolutionRefused,
)
from refundkit._ledger import is_balanced
from refundkit.cli import cli
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, open_kit, record, row_counts, usd

S = RefundStatus


@pytest.fixture
def kit(db_url: str, sandbox_path: str, clock: FakeClock) -> Iterator[RefundKit]:
    """One recovery attempt, then manual review."""
    k = open_kit(db_url, sandbox_path, clock=clock, retry_schedule=[timedelta(minutes=5)])
    yield k
    k.close()


@pytest.fixture
def sandbox(kit: RefundKit) -> SandboxGateway:
    return cast(SandboxGateway, kit.gateway("sandbox"))


def down(*args: Any) -> None:
    raise GatewayUnavailable("sandbox: 503 (test)")


def in_review(
    kit: RefundKit,
    clock: FakeClock,
    amount: str,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> str:
    """A refund of ``amount`` on pay_1 that recovery gave up on: manual_review, still held."""
    record(kit)
    clock.advance(days=2)
    rid = kit.refund("pay_1", usd(amount)).id
    assert kit.get_refund(rid).status is S.UNKNOWN
    clock.advance(days=2)  # past the sandbox's key window: recovery only looks up
    if monkeypatch is not None:
        with monkeypatch.context() as m:
            m.setattr(kit.gateway("sandbox"), "lookup_refund", down)
            kit.recover(force=True)
    else:
        kit.recover(force=True)
    assert kit.get_refund(rid).status is S.MANUAL_REVIEW
    return rid


def test_a_refund_the_gateway_never_saw_is_resolved_as_failed(
    kit: RefundKit, clock: FakeClock
) -> None:
    rid = in_review(kit, clock, "1.95")  # .95: timed out before the sandbox applied it
    assert kit.quote("pay_1").max_amount == usd("48.05")  # held while in review
    before = row_counts(kit)
    with pytest.raises(GatewayDisagrees, match="unknown to it"):
        kit.resolve(rid, "succeeded", actor="ann", note="looks fine")
    assert row_counts(kit) == before
    done = kit.resolve(rid, "failed", actor="ann", note="not in the sandbox dashboard")
    assert (done.status, done.failure_code) == (S.FAILED, "resolved_by_person")
    assert kit.quote("pay_1").max_amount == usd("50.00")  # the hold is released
    event = kit.events()[-1]
    assert event.type == "refund.failed"
    assert event.data["resolution"]["by"] == "ann"
    assert event.data["resolution"]["note"] == "not in the sandbox dashboard"
    resolution = kit.resolution(rid)
    assert resolution is not None
    assert (resolution["status"], resolution["resolved_by"], resolution["gateway_checked"]) == (
        "failed",
        "ann",
        True,
    )
    with pytest.raises(ResolutionRefused, match="not in manual review"):
        kit.resolve(rid, "failed", actor="bob", note="again")


def test_a_refund_the_gateway_made_is_resolved_as_succeeded(
    kit: RefundKit, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway refunded (.94: timeout after applying) but could not be asked in time."""
    rid = in_review(kit, clock, "10.94", monkeypatch)
    before = row_counts(kit)
    with pytest.raises(GatewayDisagrees, match=r"says refund .* is succeeded"):
        kit.resolve(rid, "failed", actor="ann", note="I think it failed")
    assert row_counts(kit) == before
    assert kit.quote("pay_1").max_amount == usd("39.06")  # releasing it would over-refund
    done = kit.resolve(rid, "succeeded", actor="ann", note="seen in the sandbox dashboard")
    assert done.status is S.SUCCEEDED
    assert done.gateway_refund_id is not None  # from the gateway's answer
    assert kit.payment("pay_1").refunded == usd("10.94")
    lines = kit.journal(rid)
    assert len(lines) == 2
    assert is_balanced(lines)
    [event] = [e for e in kit.events() if e.type == "charge.refunded"]
    assert event.data["resolution"]["status"] == "succeeded"


def test_force_decides_without_the_gateway_and_says_so(
    kit: RefundKit, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = in_review(kit, clock, "1.95")
    monkeypatch.setattr(kit.gateway("sandbox"), "lookup_refund", down)
    before = row_counts(kit)
    with pytest.raises(GatewayUnavailable):
        kit.resolve(rid, "failed", actor="ann", note="gateway down")
    assert row_counts(kit) == before
    assert kit.resolve(rid, "failed", actor="ann", note="gateway down", force=True).status is (
        S.FAILED
    )
    resolution = kit.resolution(rid)
    assert resolution is not None
    assert resolution["gateway_checked"] is False


@pytest.mark.parametrize(
    ("status", "actor", "note", "error"),
    [
        ("maybe", "ann", "n", InvalidInput),
        ("succeeded", "", "n", InvalidInput),
        ("succeeded", "ann", "", InvalidInput),
        ("succeeded", "ann", "x" * 201, InvalidInput),
        ("failed", "ann", "card 4242 4242 4242 4242", CardDataRefused),
    ],
)
def test_bad_decisions_are_refused_and_write_nothing(
    kit: RefundKit,
    clock: FakeClock,
    status: str,
    actor: str,
    note: str,
    error: type[Exception],
) -> None:
    rid = in_review(kit, clock, "1.95")
    before = row_counts(kit)
    with pytest.raises(error):
        kit.resolve(rid, status, actor=actor, note=note)
    assert row_counts(kit) == before
    assert kit.get_refund(rid).status is S.MANUAL_REVIEW
    assert kit.resolution(rid) is None


def test_only_refunds_in_manual_review_are_decided(kit: RefundKit) -> None:
    record(kit)
    done = kit.refund("pay_1", usd("5.00"))
    with pytest.raises(ResolutionRefused, match="is succeeded, not in manual review"):
        kit.resolve(done.id, "failed", actor="ann", note="undo")
    with pytest.raises(RefundNotFound):
        kit.resolve("rf_missing", "failed", actor="ann", note="n")


def test_cli_resolve(
    db_url: str, kit: RefundKit, clock: FakeClock, sandbox_path: str, tmp_path: Path
) -> None:
    rid = in_review(kit, clock, "1.95")
    config = tmp_path / "refundkit.toml"
    config.write_text(f'[gateways.sandbox]\npath = "{sandbox_path}"\n', encoding="utf-8")
    runner = CliRunner(env={"REFUNDKIT_CONFIG": str(config), "REFUNDKIT_DB": None})
    base = ["--db", db_url]
    no_outcome = runner.invoke(cli, [*base, "resolve", rid, "--note", "n", "--by", "ann"])
    assert no_outcome.exit_code == 2
    assert "--succeeded or --failed" in no_outcome.output
    disagree = runner.invoke(
        cli, [*base, "resolve", rid, "--succeeded", "--note", "n", "--by", "ann"]
    )
    assert disagree.exit_code == 2
    assert disagree.output.count("\n") == 1
    assert "gateway_disagrees" in disagree.output
    out = runner.invoke(
        cli,
        [*base, "--json", "resolve", rid, "--failed", "--note", "not there", "--by", "ann"],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert (doc["status"], doc["resolution"]["resolved_by"]) == ("failed", "ann")

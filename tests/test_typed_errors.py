"""Issue 14, points 9 and 10: bad input anywhere is a typed ``RefundkitError`` with a stable
code, and nothing is written; a refused payment tells its gateway nothing.

Each case here raised an untyped error (or returned the wrong thing) before: ``RefundKit.open``
on a bad path, an unreachable server or a locked file; ``refunds(status="bogus")``;
``events(limit="x")`` and ``limit=-1``; ``execute("plan")``; ``webhooks.verify(None, ...)``;
a top-up refused for room after its charge was registered at the gateway.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

import refundkit._store._db as db
from refundkit import (
    Destination,
    GatewayPaymentNotFound,
    InvalidInput,
    InvalidMoney,
    InvalidPlan,
    InvalidStore,
    InvalidWebhookSecret,
    Money,
    PaymentExists,
    Plan,
    RefundKit,
    RefundkitError,
    RefundStatus,
    StoreUnavailable,
    WebhookHeaderMalformed,
    WebhookHeaderMissing,
    webhooks,
)
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import record, row_counts, usd

E = TypeVar("E", bound=RefundkitError)
BALANCE = Destination.CUSTOMER_BALANCE
MAX = 2**63 - 1


def one_line(exc: RefundkitError) -> None:
    text = str(exc)
    assert text
    assert text.splitlines() == [text], text


@pytest.fixture
def gateway_calls(sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every call the kit makes on its sandbox gateway that tells it something."""
    counts: Counter[str] = Counter()
    for name in ("register_payment", "refund"):
        original: Callable[..., Any] = getattr(sandbox, name)

        def spy(*a: Any, _name: str = name, _fn: Callable[..., Any] = original, **kw: Any) -> Any:
            counts[_name] += 1
            return _fn(*a, **kw)

        monkeypatch.setattr(sandbox, name, spy)
    return counts


def refused(kit: RefundKit, error: type[E], call: Callable[[], object]) -> E:
    """``call`` raises ``error``, one line, and no table gained or lost a row."""
    before = row_counts(kit)
    with pytest.raises(error) as info:
        call()
    one_line(info.value)
    assert row_counts(kit) == before, "a refused call wrote something"
    return info.value


# --- point 10: a refused payment tells its gateway nothing -------------------------------------


def test_a_top_up_refused_for_room_registers_no_charge_at_the_gateway(
    kit: RefundKit, sandbox: SandboxGateway, gateway_calls: Counter[str]
) -> None:
    """The balance-room check used to run after ``register_payment``: the refused top-up left
    a charge at the gateway. Now every refusal comes first."""
    kit.record_payment(
        id="pay_1", customer_id="cus_1", amount=Money(MAX, "USD"), gateway="sandbox",
        gateway_payment_id="sbx_1", destination=BALANCE,
    )  # fmt: skip
    gateway_calls.clear()
    refused(kit, InvalidMoney, lambda: kit.record_payment(
        id="pay_2", customer_id="cus_1", amount=Money(1, "USD"), gateway="sandbox",
        gateway_payment_id="sbx_2", destination=BALANCE,
    ))  # fmt: skip
    assert gateway_calls == Counter()
    with pytest.raises(GatewayPaymentNotFound):
        sandbox.fetch_payment("sbx_2")


def test_a_gateway_payment_recorded_under_another_id_is_refused_before_the_gateway(
    kit: RefundKit, gateway_calls: Counter[str]
) -> None:
    record(kit, "pay_1")
    gateway_calls.clear()
    err = refused(kit, PaymentExists, lambda: kit.record_payment(
        id="pay_other", customer_id="cus_1", amount=usd("50.00"), gateway="sandbox",
        gateway_payment_id="sbx_ch_pay_1",
    ))  # fmt: skip
    assert "another payment id" in str(err)
    assert gateway_calls == Counter()


# --- point 9: RefundKit.open ---------------------------------------------------------------------


def test_open_under_a_directory_that_does_not_exist_is_invalid_store(tmp_path: Path) -> None:
    where = tmp_path / "missing" / "x.db"
    with pytest.raises(InvalidStore) as info:
        RefundKit.open(f"sqlite:///{where}", autoload=False)
    assert info.value.code == "invalid_store"
    assert info.value.user_error
    one_line(info.value)
    assert "unable to open database file" in str(info.value)
    assert not where.parent.exists()


def test_open_on_a_file_that_is_not_a_database_is_invalid_store_and_leaves_it(
    tmp_path: Path,
) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"\x00\x01 not sqlite " * 300)
    before = junk.read_bytes()
    with pytest.raises(InvalidStore, match="not a database"):
        RefundKit.open(f"sqlite:///{junk}", autoload=False)
    assert junk.read_bytes() == before


@pytest.mark.parametrize("url", ["nonsense://x", "mysql://u@localhost/x"], ids=["scheme", "driver"])
def test_open_without_a_driver_for_the_url_is_invalid_store(url: str) -> None:
    with pytest.raises(InvalidStore, match="no database driver"):
        RefundKit.open(url, autoload=False)


def test_open_on_an_unreachable_server_is_store_unavailable() -> None:
    """Nothing listens on port 1: retrying later is the remedy, so not the caller's error."""
    with pytest.raises(StoreUnavailable) as info:
        RefundKit.open("postgresql+psycopg://refundkit:secret@127.0.0.1:1/x", autoload=False)
    assert info.value.code == "store_unavailable"
    assert not info.value.user_error
    one_line(info.value)
    assert "secret" not in str(info.value)  # the URL is shown without its password


def test_open_on_a_file_another_process_holds_locked_is_store_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "busy.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN EXCLUSIVE")  # another process in the middle of writing it
    try:
        with pytest.raises(StoreUnavailable, match="database is locked"):
            RefundKit.open(f"sqlite:///{path}", autoload=False)
    finally:
        other.execute("ROLLBACK")
        other.close()
    RefundKit.open(f"sqlite:///{path}", autoload=False).close()  # free again: it opens


def test_a_store_at_the_current_schema_opens_while_another_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening no longer waits for the write lock just to read the schema version."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 0.2)
    url = f"sqlite:///{tmp_path / 'kit.db'}"
    RefundKit.open(url, autoload=False).close()
    other = sqlite3.connect(tmp_path / "kit.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        RefundKit.open(url, autoload=False).close()
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.parametrize("url", [None, 5, b"sqlite://"], ids=repr)
def test_open_on_something_that_is_not_a_url(url: Any) -> None:
    with pytest.raises(InvalidStore):
        RefundKit.open(url, autoload=False)


# --- point 9: facade reads -----------------------------------------------------------------------


@pytest.mark.parametrize("status", ["bogus", "SUCCEEDED", "", 5, True], ids=repr)
def test_refunds_with_a_status_that_is_none_is_invalid_input(kit: RefundKit, status: Any) -> None:
    record(kit)
    err = refused(kit, InvalidInput, lambda: kit.refunds(status=status))
    assert "status must be one of reserved, submitted, succeeded" in str(err)


def test_refunds_by_status_still_filter(kit: RefundKit) -> None:
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    assert len(kit.refunds(status="succeeded")) == 1
    assert len(kit.refunds("pay_1", status=RefundStatus.SUCCEEDED)) == 1
    assert kit.refunds(status="failed") == []
    with pytest.raises(InvalidInput):
        kit.refunds(payment_id=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", ["x", "2", -1, 2**63, 10**30, True, 1.5], ids=repr)
def test_events_limit_that_is_not_a_count_is_invalid_input(kit: RefundKit, limit: Any) -> None:
    """``limit=-1`` used to return every event; ``"x"`` and a huge one raised untyped errors."""
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    kit.refund("pay_1", usd("1.00"))
    refused(kit, InvalidInput, lambda: kit.events(limit=limit))


def test_events_limit_and_after_within_range(kit: RefundKit) -> None:
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    kit.refund("pay_1", usd("1.00"))
    assert kit.events(limit=0) == []
    assert len(kit.events(limit=1)) == 1
    assert len(kit.events(limit=2**63 - 1)) == 2
    assert kit.events(after=2**63 - 1) == []
    for after in (-1, 2**63):
        with pytest.raises(InvalidInput):
            kit.events(after=after)
    with pytest.raises(InvalidInput):
        kit.events(refund_id=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("plan", ["plan", None, ["legs"], 5, b"{}"], ids=repr)
def test_execute_on_something_that_is_not_a_plan_is_invalid_plan(
    kit: RefundKit, gateway_calls: Counter[str], plan: Any
) -> None:
    record(kit)
    gateway_calls.clear()
    err = refused(kit, InvalidPlan, lambda: kit.execute(plan))
    assert err.code == "invalid_plan"
    assert isinstance(err, InvalidInput)
    assert gateway_calls == Counter()


def test_execute_on_a_mapping_that_is_not_a_plan_is_invalid_plan(kit: RefundKit) -> None:
    record(kit)
    plan = kit.plan_refund("cus_1", usd("10.00")).to_dict()
    for broken in ({}, plan | {"legs": "x"}, plan | {"currency": "XYZ"}, plan | {"basis": 5}):
        refused(kit, InvalidPlan, functools.partial(kit.execute, broken))


@pytest.mark.parametrize(
    "text", ["", "plan", "[]", '"x"', "5", "[" * 100_000 + "]" * 100_000, '{"legs": 5}'],
    ids=["empty", "word", "list", "string", "number", "deep", "partial"],
)  # fmt: skip
def test_plan_from_json_refuses_anything_but_a_plan_typed(text: str) -> None:
    with pytest.raises(InvalidPlan):
        Plan.from_json(text)


# --- point 9: webhooks.verify --------------------------------------------------------------------

SECRET = webhooks.new_secret()
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
BODY = b'{"type": "charge.refunded"}'
GOOD = webhooks.signed_headers(SECRET, "msg_1", TS, BODY)


@pytest.mark.parametrize(
    ("headers", "body", "secret", "error"),
    [
        (None, BODY, SECRET, WebhookHeaderMissing),
        ("webhook-id: msg_1", BODY, SECRET, WebhookHeaderMalformed),
        (5, BODY, SECRET, WebhookHeaderMalformed),
        ([("webhook-id", "msg_1", "x")], BODY, SECRET, WebhookHeaderMalformed),
        ({"webhook-id": 5, **{k: v for k, v in GOOD.items() if k != "webhook-id"}}, BODY, SECRET,
         WebhookHeaderMalformed),
        ({5: "x"}, BODY, SECRET, WebhookHeaderMalformed),
        (GOOD, None, SECRET, WebhookHeaderMalformed),
        (GOOD, BODY.decode(), SECRET, WebhookHeaderMalformed),
        (GOOD, BODY, None, InvalidWebhookSecret),
        (GOOD, BODY, 5, InvalidWebhookSecret),
        (GOOD, BODY, [], InvalidWebhookSecret),
        (GOOD, BODY, [None], InvalidWebhookSecret),
    ],
    ids=["no-headers", "str-headers", "int-headers", "triples", "int-value", "int-name",
         "no-body", "str-body", "no-secret", "int-secret", "no-secrets", "none-in-secrets"],
)  # fmt: skip
def test_verify_with_arguments_of_the_wrong_shape_raises_typed(
    headers: Any, body: Any, secret: Any, error: type[RefundkitError]
) -> None:
    with pytest.raises(error) as info:
        webhooks.verify(headers, body, secret, now=NOW)
    one_line(info.value)


def test_verify_reads_asgi_byte_headers_and_checks_now_and_tolerance() -> None:
    pairs = [(k.encode(), v.encode()) for k, v in GOOD.items()]
    assert webhooks.verify(pairs, BODY, SECRET, now=NOW) == {"type": "charge.refunded"}
    with pytest.raises(InvalidInput):
        webhooks.verify(GOOD, BODY, SECRET, now="2026-11-22")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        webhooks.verify(GOOD, BODY, SECRET, now=NOW, tolerance="300")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        lambda: webhooks.sign(SECRET, None, TS, BODY),  # type: ignore[arg-type]
        lambda: webhooks.sign(SECRET, "msg_1", "now", BODY),  # type: ignore[arg-type]
        lambda: webhooks.sign(SECRET, "msg_1", 10**12, BODY),
        lambda: webhooks.sign(SECRET, "msg_1", TS, "body"),  # type: ignore[arg-type]
        lambda: webhooks.signed_headers(None, "msg_1", TS, BODY),  # type: ignore[arg-type]
    ],
    ids=["no-id", "str-time", "huge-time", "str-body", "no-secret"],
)
def test_signing_with_arguments_of_the_wrong_shape_raises_typed(call: Callable[[], Any]) -> None:
    with pytest.raises(RefundkitError):
        call()

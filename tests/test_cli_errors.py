"""The CLI on bad input and unusable stores (issue 14, point 9): one ``error: <code>: ...``
line on stderr and a documented exit code (docs/cli.md), never a traceback. Each case here
ended in a traceback before (a huge ``--limit``, deeply nested JSON or TOML, a binary
configuration file) or in the wrong code (a store that cannot be created, a locked one)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import refundkit._store._db as db

from .test_cli import (
    CUSTOMER,
    PAYMENT,
    add_payment,
    assert_one_error_line,
    make_plan,
    make_store,
    refunds_of,
    run,
)

DEEP = 100_000


@pytest.fixture
def paid(tmp_path: Path) -> str:
    """A store with one 50.00 USD invoice payment on the sandbox."""
    url = make_store(f"sqlite:///{tmp_path / 'rk.db'}")
    add_payment(url, PAYMENT, "50.00", "--invoice-id", "inv_1")
    return url


def test_a_huge_limit_is_a_usage_error(paid: str) -> None:
    result = run("--db", paid, "events", "--limit", "9" * 30)
    line = assert_one_error_line(result, "usage")
    assert "--limit" in line
    assert run("--db", paid, "events", "--limit", str(2**63 - 1)).exit_code == 0


def test_a_deeply_nested_plan_file_is_invalid_input(paid: str, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * DEEP + "]" * DEEP, encoding="utf-8")
    line = assert_one_error_line(run("--db", paid, "execute", str(deep)), "invalid_input")
    assert "nested too deeply" in line
    stdin = run("--db", paid, "execute", "-", input='{"a":' * DEEP + "1" + "}" * DEEP)
    assert_one_error_line(stdin, "invalid_input")
    assert refunds_of(paid) == []


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * DEEP + "]" * DEEP,
        "a = " + "[" * 40 + "]" * 40,
        "a = " + "{b=" * 3000 + "1" + "}" * 3000,
    ],
    ids=["arrays", "40-deep", "inline-tables"],
)  # fmt: skip
def test_a_deeply_nested_config_file_is_a_configuration_error(
    paid: str, tmp_path: Path, text: str
) -> None:
    config = tmp_path / "refundkit.toml"
    config.write_text(text, encoding="utf-8")
    line = assert_one_error_line(
        run("--config", str(config), "--db", paid, "payments", "list"), "configuration_error"
    )
    assert "deep" in line


@pytest.mark.parametrize(
    "content", [b"\xff\xfe\x00binary", bytes(range(256)) * 8], ids=["bom", "all-bytes"]
)
def test_a_binary_config_file_is_a_configuration_error(
    paid: str, tmp_path: Path, content: bytes
) -> None:
    config = tmp_path / "refundkit.toml"
    config.write_bytes(content)
    line = assert_one_error_line(
        run("--config", str(config), "--db", paid, "payments", "list"), "configuration_error"
    )
    assert "not UTF-8" in line


def test_a_config_nested_as_deep_as_refundkits_own_still_reads(paid: str, tmp_path: Path) -> None:
    config = tmp_path / "refundkit.toml"
    config.write_text("[gateways.sandbox]\nextra = { a = { b = [[1]] } }\n", encoding="utf-8")
    assert run("--config", str(config), "--db", paid, "payments", "list").exit_code == 0


def test_a_store_that_cannot_be_created_is_invalid_store_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    add = run(
        "--db", url, "payments", "add", "pay_m", "--customer", CUSTOMER, "--amount", "1.00",
        "--currency", "USD", "--gateway", "sandbox", "--gateway-payment-id", "sbx_m",
    )  # fmt: skip
    line = assert_one_error_line(add, "invalid_store")
    assert "unable to open database file" in line


def test_a_file_that_is_not_a_store_is_invalid_store_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert_one_error_line(run("--db", f"sqlite:///{junk}", "refunds"), "invalid_store")


def test_an_unreachable_server_is_store_unavailable_exit_1() -> None:
    result = run("--db", "postgresql+psycopg://refundkit:pw@127.0.0.1:1/x", "refunds")
    line = assert_one_error_line(result, "store_unavailable", exit_code=1)
    assert ":pw@" not in line


def test_a_locked_store_is_store_unavailable_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "busy.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN EXCLUSIVE")
    try:
        result = run("--db", f"sqlite:///{path}", "refunds")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "database is locked" in assert_one_error_line(result, "store_unavailable", exit_code=1)


def test_a_plan_file_for_another_customers_payment_is_invalid_plan(
    paid: str, tmp_path: Path
) -> None:
    """A plan file edited to refund a payment outside its customer is refused as a whole."""
    out = tmp_path / "plan.json"
    plan = make_plan(paid, out, "1.00")
    plan["customer_id"] = "cus_someone_else"
    out.write_text(json.dumps(plan), encoding="utf-8")
    line = assert_one_error_line(run("--db", paid, "execute", str(out)), "invalid_plan")
    assert "not a payment of cus_someone_else" in line
    assert refunds_of(paid) == []

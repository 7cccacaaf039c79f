"""The ``refundkit`` command line: commands, JSON output, errors, exit codes, what startup loads."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from refundkit import __version__
from refundkit.cli import cli

PAYMENT = "pay_1"
CUSTOMER = "cus_1"


# --- helpers ------------------------------------------------------------------------------------


def run(*args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
    """Invoke the CLI in-process, with a wide console and no REFUNDKIT_DB from outside."""
    base: dict[str, str | None] = {"REFUNDKIT_DB": None, "REFUNDKIT_CONFIG": None, "COLUMNS": "200"}
    return CliRunner().invoke(
        cli, list(args), env=base | (env or {}), input=input, catch_exceptions=False
    )


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_error_line(result: Result, code: str, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, result.output
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {code}: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def flat(text: str) -> str:
    """Output with the console's line wrapping undone (long sentences wrap at the width)."""
    return " ".join(text.split())


def store_digest(url: str) -> dict[str, str]:
    """A digest of each file of a SQLite store (and its sandbox): proof nothing was written."""
    path = Path(url.removeprefix("sqlite:///"))
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(path.parent.glob(f"{path.stem}.*"))
    }


def make_store(url: str) -> str:
    """An empty store at ``url`` (reading commands refuse a store that does not exist)."""
    from refundkit import RefundKit

    RefundKit.open(url, autoload=False).close()
    return url


@pytest.fixture
def db(tmp_path: Path) -> str:
    return make_store(f"sqlite:///{tmp_path / 'rk.db'}")


def add_payment(
    db: str,
    payment_id: str = PAYMENT,
    amount: str = "50.00",
    *extra: str,
    charge: str | None = None,
) -> Result:
    result = run(
        "--db", db, "payments", "add", payment_id, "--customer", CUSTOMER, "--amount", amount,
        "--currency", "USD", "--gateway", "sandbox",
        "--gateway-payment-id", charge or f"sbx_{payment_id}", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def paid(db: str) -> str:
    """A store with one 50.00 USD invoice payment on the sandbox."""
    add_payment(db, PAYMENT, "50.00", "--invoice-id", "inv_1")
    return db


# --- startup ------------------------------------------------------------------------------------


def test_importing_the_cli_imports_nothing_heavy() -> None:
    code = (
        "import refundkit.cli, sys; "
        "heavy = [m for m in ('sqlalchemy', 'rich', 'refundkit._kit', 'alembic') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _help_command() -> list[str]:
    script = shutil.which("refundkit", path=str(Path(sys.executable).parent))
    if script:
        return [script, "--help"]
    return [sys.executable, "-c", "from refundkit.cli import main; main()", "--help"]


#: What `refundkit --help` must not load: a store, an SDK, a web stack. Startup stays fast by
#: construction; its time is not asserted here (timings belong in benchmarks/, not tests).
HEAVY_AT_HELP = (
    "sqlalchemy", "alembic", "refundkit._kit", "psycopg", "stripe", "braintree", "Adyen",
    "httpx", "starlette", "uvicorn", "jinja2", "requests",
)  # fmt: skip


def test_help_runs_and_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from refundkit.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"heavy = [m for m in {HEAVY_AT_HELP!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: refundkit" in proc.stdout
    script = subprocess.run(_help_command(), capture_output=True, text=True)
    assert script.returncode == 0, script.stderr
    assert "Usage: refundkit" in script.stdout


def test_help_lists_every_command_with_its_summary() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in (
        "demo", "gateways", "payments", "quote", "refund", "refunds", "recover", "events",
        "journal", "balance", "redeem", "credit", "invoice", "plan", "execute", "refund-balance",
    ):  # fmt: skip
        assert f"  {name} " in result.stdout, name
    assert "REFUNDKIT_DB" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["demo"], ["gateways"], ["payments", "add"], ["payments", "list"], ["payments", "show"],
        ["quote"], ["refund"], ["refunds"], ["recover"], ["events"], ["journal"], ["balance"],
        ["redeem"], ["credit"], ["invoice"], ["plan"], ["execute"], ["refund-balance"],
    ],
)  # fmt: skip
def test_every_command_has_help_with_json_option(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "--json" in result.stdout
    # The docstring's first line is a real sentence, not click's empty default.
    summary = result.stdout.split("\n\n")[1].strip()
    assert len(summary) > 20, result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"refundkit {__version__}"


def test_no_arguments_shows_help_not_a_traceback() -> None:
    result = run()
    assert "Usage: refundkit" in result.output
    assert "Traceback" not in result.output


# --- demo ---------------------------------------------------------------------------------------


def test_demo_runs_and_tells_the_story(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    result = run("demo", "--dir", str(where))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "full refund of pay_1001" in out
    assert "partial refund of the top-up pay_1002" in out
    assert out.count("succeeded") >= 3
    assert "refused: 60.00 USD of pay_1003" in out
    assert "insufficient_refundable_balance" in out
    assert "limit payment_cap" in out  # the limit's sentence follows
    assert "already refunded or in flight" in out
    assert "Only 35.00 USD of this top-up is still in the customer's balance" in out
    assert "pending → succeeded" in out  # settled by the sandbox webhook
    assert "charge.refunded" in out
    assert "visa •••• 4242" in out
    assert "Balanced: debits 165.92 USD = credits 165.92 USD." in out
    url = f"sqlite:///{where.resolve() / 'refundkit.db'}"
    for command in ("quote", "refund", "refunds", "events", "journal", "recover"):
        assert f"refundkit --db {url} {command}" in out, command
    assert (where / "refundkit.db").exists()


def test_demo_next_steps_work_on_the_demo_store(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    assert run("demo", "--dir", str(where)).exit_code == 0
    url = f"sqlite:///{where.resolve() / 'refundkit.db'}"
    quote = run_json("--db", url, "quote", "pay_1003")
    assert quote["max_amount"] == 8000 - 2592
    refunds = run_json("--db", url, "refunds")["refunds"]
    assert {r["status"] for r in refunds} == {"succeeded"}
    assert len(refunds) == 3


def test_demo_json_is_a_summary(tmp_path: Path) -> None:
    summary = run_json("demo", "--dir", str(tmp_path / "d"))
    assert summary["refunds"]["full"]["status"] == "succeeded"
    assert summary["refunds"]["full"]["amount"] == 12000
    assert summary["refunds"]["partial"]["status"] == "succeeded"
    assert summary["refunds"]["partial"]["amount"] == 2000
    assert summary["refunds"]["pending_then_webhook"]["status"] == "succeeded"
    assert summary["webhook"] == {
        "refund_id": summary["refunds"]["pending_then_webhook"]["id"],
        "from": "pending",
        "to": "succeeded",
    }
    assert summary["refused"]["error"]["code"] == "insufficient_refundable_balance"
    assert [lim["code"] for lim in summary["refused"]["error"]["limits"]] == ["payment_cap"]
    assert summary["journal"]["balanced"] is True
    types = [e["type"] for e in summary["events"]]
    assert types.count("charge.refunded") == 3
    assert any("recover" in c for c in summary["next"])


def test_demo_refuses_a_store_that_is_not_empty(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    assert run("demo", "--dir", str(where)).exit_code == 0
    again = run("demo", "--dir", str(where))
    line = assert_one_error_line(again, "demo_store_not_empty")
    assert str(where.resolve()) in line


def test_demo_without_dir_uses_a_new_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = run("demo")
    second = run("demo")
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    made = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("refundkit-demo-"))
    assert len(made) == 2
    assert all(name in first.stdout + second.stdout for name in made)


def test_demo_ignores_the_db_option(tmp_path: Path) -> None:
    other = tmp_path / "mine.db"
    result = run("--db", f"sqlite:///{other}", "demo", "--dir", str(tmp_path / "d"))
    assert result.exit_code == 0
    assert not other.exists()


# --- payments, quote, refund --------------------------------------------------------------------


def test_add_quote_refund_then_list(db: str) -> None:
    added = add_payment(db, PAYMENT, "50.00", "--invoice-id", "inv_1")
    assert "Recorded payment pay_1: 50.00 USD" in added.stdout

    quote = run("--db", db, "quote", PAYMENT)
    assert quote.exit_code == 0
    assert "Refundable: up to 50.00 USD." in quote.stdout
    assert "max amount" in quote.stdout

    refund = run("--db", db, "refund", PAYMENT, "--amount", "10.00", "--reason", "duplicate")
    assert refund.exit_code == 0, refund.output
    assert "Refunded 10.00 USD of pay_1." in refund.stdout

    refunds = run_json("--db", db, "refunds")["refunds"]
    assert len(refunds) == 1
    assert refunds[0]["payment_id"] == PAYMENT
    assert refunds[0]["amount"] == 1000
    assert refunds[0]["currency"] == "USD"
    assert refunds[0]["status"] == "succeeded"
    assert refunds[0]["reason"] == "duplicate"

    quote_after = run("--db", db, "quote", PAYMENT)
    assert "payment_cap" in quote_after.stdout
    assert "40.00 USD" in quote_after.stdout


def test_refund_without_amount_refunds_the_default(paid: str) -> None:
    refund = run_json("--db", paid, "refund", PAYMENT)
    assert refund["amount"] == 5000
    assert refund["status"] == "succeeded"
    quote = run_json("--db", paid, "quote", PAYMENT)
    assert quote["refundable"] is False
    assert quote["max_amount"] == 0


def test_refund_with_idempotency_key_is_done_once(paid: str) -> None:
    args = ("--db", paid, "refund", PAYMENT, "--amount", "5.00", "--idempotency-key", "t-1")
    first = run_json(*args)
    second = run_json(*args)
    assert first["id"] == second["id"]
    assert len(run_json("--db", paid, "refunds")["refunds"]) == 1
    conflict = run("--db", paid, "refund", PAYMENT, "--amount", "6.00", "--idempotency-key", "t-1")
    assert_one_error_line(conflict, "idempotency_conflict")


def test_refund_records_reason_and_actor(paid: str) -> None:
    refund = run_json(
        "--db", paid, "refund", PAYMENT, "--amount", "1.00", "--actor", "support:alice",
        "--reason", "requested_by_customer",
    )  # fmt: skip
    assert refund["actor"] == "support:alice"
    assert refund["reason"] == "requested_by_customer"


def test_refusing_more_than_the_max_is_one_line_and_exit_2(paid: str) -> None:
    assert run("--db", paid, "refund", PAYMENT, "--amount", "20.00").exit_code == 0
    result = run("--db", paid, "refund", PAYMENT, "--amount", "60.00")
    line = assert_one_error_line(result, "insufficient_refundable_balance")
    assert "payment_cap" in line  # the code of the limit that binds
    assert "60.00 USD is more than the 30.00 USD that may be refunded" in line
    assert "at most 30.00 USD remains" in line  # the limit's sentence
    assert result.stdout == ""
    assert len(run_json("--db", paid, "refunds")["refunds"]) == 1  # nothing was written


def test_refusal_with_json_is_also_json_on_stdout(paid: str) -> None:
    assert run("--db", paid, "refund", PAYMENT, "--amount", "20.00").exit_code == 0
    result = run("--db", paid, "refund", PAYMENT, "--amount", "60.00", "--json")
    assert_one_error_line(result, "insufficient_refundable_balance")
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "insufficient_refundable_balance"
    assert error["limits"][0]["code"] == "payment_cap"
    assert error["limits"][0]["amount"] == 3000


@pytest.mark.parametrize("amount", ["10.005", "abc", "1e3", "1,00", " 1.00", "1_0.00", "NaN"])
def test_a_bad_amount_exits_2(paid: str, amount: str) -> None:
    result = run("--db", paid, "refund", PAYMENT, "--amount", amount)
    assert_one_error_line(result, "invalid_money")
    assert run_json("--db", paid, "refunds")["refunds"] == []


def test_more_decimals_than_the_currency_has_are_refused_not_rounded(db: str) -> None:
    result = run(
        "--db", db, "payments", "add", "pay_jpy", "--customer", CUSTOMER, "--amount", "100.5",
        "--currency", "jpy", "--gateway", "sandbox", "--gateway-payment-id", "sbx_jpy",
    )  # fmt: skip
    line = assert_one_error_line(result, "invalid_money")
    assert "JPY" in line


def test_a_zero_amount_is_refused(paid: str) -> None:
    result = run("--db", paid, "refund", PAYMENT, "--amount", "0.00")
    assert_one_error_line(result, "refund_not_allowed")


@pytest.mark.parametrize(
    "command",
    [
        ["quote", "nope"],
        ["refund", "nope"],
        ["refund", "nope", "--amount", "1.00"],
        ["payments", "show", "nope"],
        ["refunds", "--payment", "nope"],
        ["recover", "--payment", "nope"],
    ],
)
def test_an_unknown_payment_exits_2(db: str, command: list[str]) -> None:
    result = run("--db", db, *command)
    line = assert_one_error_line(result, "payment_not_found")
    assert "'nope'" in line


def test_an_unknown_payment_with_json(db: str) -> None:
    result = run("--db", db, "quote", "nope", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {"code": "payment_not_found", "message": "no payment 'nope'"}
    }


def test_a_gateway_decline_exits_2_and_is_recorded_as_failed(paid: str) -> None:
    result = run("--db", paid, "refund", PAYMENT, "--amount", "1.91")  # sandbox: decline
    line = assert_one_error_line(result, "gateway_declined")
    assert "recorded as failed" in line
    failed = run_json("--db", paid, "refunds", "--status", "failed")["refunds"]
    assert len(failed) == 1
    assert failed[0]["failure_code"] == "refund_declined"
    assert run_json("--db", paid, "quote", PAYMENT)["max_amount"] == 5000  # nothing held


def test_a_gateway_failure_that_is_not_the_callers_exits_1(paid: str) -> None:
    result = run("--db", paid, "refund", PAYMENT, "--amount", "1.96")  # sandbox: rate limited
    assert_one_error_line(result, "gateway_rate_limited", exit_code=1)


def test_a_lost_answer_is_unknown_then_recovered(paid: str) -> None:
    refund = run("--db", paid, "refund", PAYMENT, "--amount", "1.94")  # timeout after applying
    assert refund.exit_code == 0, refund.output
    assert "not known yet" in refund.stdout
    unknown = run_json("--db", paid, "refunds", "--status", "unknown")["refunds"]
    assert len(unknown) == 1

    not_due = run("--db", paid, "recover")
    assert not_due.exit_code == 0
    assert "--force looks them up now" in not_due.stdout

    report = run_json("--db", paid, "recover", "--force")
    assert [r["id"] for r in report["resolved"]] == [unknown[0]["id"]]
    assert report["resolved"][0]["status"] == "succeeded"
    assert report["still_unknown"] == []
    assert report["manual_review"] == []
    assert report["in_flight"] == []


def test_recover_with_nothing_to_do(paid: str) -> None:
    result = run("--db", paid, "recover", "--payment", PAYMENT)
    assert result.exit_code == 0
    assert "Resolved: none." in result.stdout
    assert "Sent to manual review: none." in result.stdout


def test_recover_says_what_is_due_next_on_its_schedule(paid: str) -> None:
    """R-2.5 from the CLI: the schedule is shown, and when each in-flight refund is due."""
    refund = run("--db", paid, "refund", PAYMENT, "--amount", "1.94")  # timeout: unknown
    assert refund.exit_code == 0, refund.output
    [unknown] = run_json("--db", paid, "refunds", "--status", "unknown")["refunds"]
    text = run("--db", paid, "recover")
    assert f"Next due: {unknown['id']} at " in text.stdout
    assert "(schedule 15s,1m,3m,1h,1d*5)" in flat(text.stdout)
    report = run_json("--db", paid, "recover", "--schedule", "1m, 1h*2")
    assert report["schedule"] == "1m,1h*2"
    assert [d["refund_id"] for d in report["next_due"]] == [unknown["id"]]


@pytest.mark.parametrize("schedule", ["5x", "0s", "1m,,1h", "1d*0", "1s*101", "-1m"])
def test_recover_refuses_a_schedule_it_cannot_read(paid: str, schedule: str) -> None:
    result = run("--db", paid, "recover", f"--schedule={schedule}")
    assert_one_error_line(result, "invalid_input")
    assert run_json("--db", paid, "refunds")["refunds"] == []  # nothing was written


def test_a_pending_refund_shows_as_pending(paid: str) -> None:
    refund = run("--db", paid, "refund", PAYMENT, "--amount", "2.92")  # pending, then succeeds
    assert refund.exit_code == 0
    assert "pending" in refund.stdout
    assert "confirms the outcome later" in refund.stdout
    assert run_json("--db", paid, "quote", PAYMENT)["max_amount"] == 5000 - 292


# --- payments -----------------------------------------------------------------------------------


def test_payments_add_with_card_and_lowercase_currency(db: str) -> None:
    payment = run_json(
        "--db", db, "payments", "add", "pay_c", "--customer", CUSTOMER, "--amount", "12.34",
        "--currency", "eur", "--gateway", "sandbox", "--gateway-payment-id", "sbx_c",
        "--destination", "customer_balance", "--card-brand", "mastercard",
        "--card-last4", "4444", "--card-exp", "03/2029",
    )  # fmt: skip
    assert payment["amount"] == 1234
    assert payment["currency"] == "EUR"
    assert payment["destination"] == "customer_balance"
    assert payment["card"] == {"brand": "mastercard", "last4": "4444", "exp_month": 3,
                               "exp_year": 2029}  # fmt: skip
    shown = run("--db", db, "payments", "show", "pay_c")
    assert "mastercard •••• 4444 03/2029" in shown.stdout
    assert "12.34 EUR" in shown.stdout


def test_the_sandbox_gives_a_payment_without_card_a_test_visa(paid: str) -> None:
    payment = run_json("--db", paid, "payments", "show", PAYMENT)["payment"]
    assert payment["card"]["last4"] == "4242"


@pytest.mark.parametrize(
    ("card_args", "code"),
    [
        (["--card-brand", "visa", "--card-last4", "4242424242424242"], "card_data_refused"),
        (["--card-brand", "visa", "--card-last4", "4242", "--card-exp", "2030-12"],
         "invalid_input"),
        (["--card-brand", "visa", "--card-last4", "4242", "--card-exp", "13/2030"],
         "invalid_input"),
        (["--card-last4", "4242"], "invalid_input"),
    ],
)  # fmt: skip
def test_bad_card_details_exit_2(db: str, card_args: list[str], code: str) -> None:
    result = run(
        "--db", db, "payments", "add", "pay_x", "--customer", CUSTOMER, "--amount", "1.00",
        "--currency", "USD", "--gateway", "sandbox", "--gateway-payment-id", "sbx_x", *card_args,
    )  # fmt: skip
    assert_one_error_line(result, code)
    assert run_json("--db", db, "payments", "list")["payments"] == []


def test_payments_add_twice_is_harmless_but_not_with_other_details(paid: str) -> None:
    add_payment(paid, PAYMENT, "50.00", "--invoice-id", "inv_1")
    other = run(
        "--db", paid, "payments", "add", PAYMENT, "--customer", CUSTOMER, "--amount", "51.00",
        "--currency", "USD", "--gateway", "sandbox", "--gateway-payment-id", f"sbx_{PAYMENT}",
    )  # fmt: skip
    assert_one_error_line(other, "payment_exists")
    assert len(run_json("--db", paid, "payments", "list")["payments"]) == 1


def test_an_unknown_gateway_exits_2(db: str) -> None:
    result = run(
        "--db", db, "payments", "add", "pay_s", "--customer", CUSTOMER, "--amount", "1.00",
        "--currency", "USD", "--gateway", "nogateway", "--gateway-payment-id", "x",
    )  # fmt: skip
    line = assert_one_error_line(result, "unknown_gateway")
    assert "sandbox" in line


def test_payments_list_filters_by_customer(paid: str) -> None:
    result = run(
        "--db", paid, "payments", "add", "pay_2", "--customer", "cus_2", "--amount", "7.00",
        "--currency", "USD", "--gateway", "sandbox", "--gateway-payment-id", "sbx_2",
    )  # fmt: skip
    assert result.exit_code == 0
    every = run_json("--db", paid, "payments", "list")["payments"]
    assert [p["id"] for p in every] == [PAYMENT, "pay_2"]
    only = run_json("--db", paid, "payments", "list", "--customer", "cus_2")["payments"]
    assert [p["id"] for p in only] == ["pay_2"]
    table = run("--db", paid, "payments", "list")
    assert "pay_2" in table.stdout
    assert "7.00 USD" in table.stdout
    assert "invoice inv_1" in table.stdout


def test_payments_show_explains_the_quote_and_lists_refunds(paid: str) -> None:
    run_json("--db", paid, "refund", PAYMENT, "--amount", "10.00")
    shown = run("--db", paid, "payments", "show", PAYMENT)
    assert shown.exit_code == 0
    assert "Quote: Refundable: up to 40.00 USD." in shown.stdout
    assert "10.00 USD" in shown.stdout
    data = run_json("--db", paid, "payments", "show", PAYMENT)
    assert data["payment"]["amount_refunded"] == 1000
    assert data["quote"]["explanation"].startswith("Refundable: up to 40.00 USD.")
    assert len(data["refunds"]) == 1


# --- events and journal -------------------------------------------------------------------------


def test_events_and_journal_after_a_refund(paid: str) -> None:
    refund = run_json("--db", paid, "refund", PAYMENT, "--amount", "15.00")

    events = run_json("--db", paid, "events")["events"]
    assert [e["type"] for e in events] == ["charge.refunded"]
    data = events[0]["data"]
    assert data["refund"]["id"] == refund["id"]
    assert data["refund"]["amount"] == 1500
    assert data["card"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}
    human = run("--db", paid, "events")
    assert "charge.refunded" in human.stdout
    assert "15.00 USD" in human.stdout
    assert "visa •••• 4242" in human.stdout

    journal = run_json("--db", paid, "journal")
    assert journal["balanced"] is True
    assert journal["totals"] == {"USD": {"debit": 1500, "credit": 1500}}
    sides = {(line["account"], line["side"]) for line in journal["lines"]}
    assert sides == {("refunds", "debit"), ("gateway_clearing:sandbox", "credit")}
    table = run("--db", paid, "journal")
    assert "Balanced: debits 15.00 USD = credits 15.00 USD." in table.stdout
    assert "total" in table.stdout


def test_journal_of_a_customer_balance_refund_debits_the_balance(db: str) -> None:
    add_payment(db, "pay_top", "30.00", "--destination", "customer_balance")
    refund = run_json("--db", db, "refund", "pay_top", "--amount", "5.00")
    journal = run_json("--db", db, "journal", "--refund", refund["id"])
    accounts = {line["side"]: line["account"] for line in journal["lines"]}
    assert accounts == {"debit": f"customer_balance:{CUSTOMER}",
                        "credit": "gateway_clearing:sandbox"}  # fmt: skip


def test_journal_of_an_unknown_refund_exits_2(paid: str) -> None:
    assert_one_error_line(run("--db", paid, "journal", "--refund", "rf_nope"), "refund_not_found")


def test_an_empty_journal_and_event_list(db: str) -> None:
    assert "No journal entries yet." in run("--db", db, "journal").stdout
    assert "No events." in run("--db", db, "events").stdout
    assert run_json("--db", db, "journal") == {"lines": [], "totals": {}, "balanced": True}


def test_events_after_and_limit(paid: str) -> None:
    for amount in ("1.00", "2.00", "3.00"):
        run_json("--db", paid, "refund", PAYMENT, "--amount", amount)
    events = run_json("--db", paid, "events")["events"]
    assert len(events) == 3
    after = run_json("--db", paid, "events", "--after", events[0]["id"])["events"]
    assert [e["id"] for e in after] == [e["id"] for e in events[1:]]
    limited = run_json("--db", paid, "events", "--limit", "1")["events"]
    assert [e["id"] for e in limited] == [events[0]["id"]]
    by_seq = run_json("--db", paid, "events", "--after", "2")["events"]
    assert [e["id"] for e in by_seq] == [events[2]["id"]]
    assert_one_error_line(run("--db", paid, "events", "--after", "evt_nope"), "invalid_input")
    bad_limit = run("--db", paid, "events", "--limit", "0")
    assert_one_error_line(bad_limit, "usage")


# --- balance ------------------------------------------------------------------------------------


def test_balance_and_redeem(db: str) -> None:
    add_payment(db, "pay_top", "30.00", "--destination", "customer_balance")
    redeemed = run_json(
        "--db", db, "redeem", CUSTOMER, "--amount", "12.00", "--currency", "usd",
        "--reference", "inv_9",
    )  # fmt: skip
    assert redeemed["remaining"] == {"amount": 1800, "currency": "USD"}
    balance = run_json("--db", db, "balance", CUSTOMER)
    assert balance["totals"] == {"USD": 1800}
    assert "18.00 USD" in run("--db", db, "balance", CUSTOMER).stdout
    quote = run("--db", db, "quote", "pay_top")
    assert "customer_balance" in quote.stdout
    assert "was spent on inv_9" in quote.stdout
    too_much = run(
        "--db", db, "redeem", CUSTOMER, "--amount", "99.00", "--currency", "USD",
        "--reference", "inv_10",
    )  # fmt: skip
    assert_one_error_line(too_much, "insufficient_balance")


def test_redeem_newest_first_spends_the_newest_lot_first(db: str) -> None:
    add_payment(db, "pay_t1", "30.00", "--destination", "customer_balance")
    add_payment(db, "pay_t2", "20.00", "--destination", "customer_balance")
    redeemed = run_json(
        "--db", db, "redeem", CUSTOMER, "--amount", "10.00", "--currency", "USD",
        "--reference", "inv_9", "--order", "NEWEST_FIRST",
    )  # fmt: skip
    assert redeemed["order"] == "newest_first"
    assert redeemed["remaining"] == {"amount": 4000, "currency": "USD"}
    lots = run_json("--db", db, "balance", CUSTOMER)["lots"]
    assert {lot["funding_payment_id"]: lot["remaining"] for lot in lots} == {
        "pay_t1": 3000,
        "pay_t2": 1000,
    }
    default = run(
        "--db", db, "redeem", CUSTOMER, "--amount", "5.00", "--currency", "USD",
        "--reference", "inv_10",
    )  # fmt: skip
    assert default.exit_code == 0, default.output
    assert "(oldest_first); 35.00 USD left." in default.stdout
    lots = run_json("--db", db, "balance", CUSTOMER)["lots"]
    assert {lot["funding_payment_id"]: lot["remaining"] for lot in lots} == {
        "pay_t1": 2500,
        "pay_t2": 1000,
    }
    bad = run(
        "--db", db, "redeem", CUSTOMER, "--amount", "1.00", "--currency", "USD",
        "--reference", "inv_11", "--order", "largest_first",
    )  # fmt: skip
    assert_one_error_line(bad, "usage")


def test_balance_shows_each_lots_kind_and_funding_payment(db: str) -> None:
    add_payment(db, "pay_t", "30.00", "--destination", "customer_balance")
    add_payment(db, "pay_i", "80.00", "--invoice-id", "inv_1")
    run_json("--db", db, "credit", "pay_i", "--amount", "12.00")
    table = run("--db", db, "balance", CUSTOMER)
    assert table.exit_code == 0, table.output
    rows = [line for line in table.stdout.splitlines() if "lot_" in line]
    assert len(rows) == 2
    assert all(word in rows[0] for word in ("top_up", "pay_t", "30.00 USD")), rows[0]
    assert all(word in rows[1] for word in ("credit", "pay_i", "12.00 USD")), rows[1]
    assert "Total: 42.00 USD" in table.stdout
    lots = run_json("--db", db, "balance", CUSTOMER)["lots"]
    assert [(lot["kind"], lot["funding_payment_id"]) for lot in lots] == [
        ("top_up", "pay_t"),
        ("credit", "pay_i"),
    ]


# --- credit and invoices ------------------------------------------------------------------------


def test_credit_from_a_payment_makes_a_credit_lot(paid: str) -> None:
    result = run("--db", paid, "credit", PAYMENT, "--amount", "20.00", "--reference", "ticket-7")
    assert result.exit_code == 0, result.output
    assert "Credited 20.00 USD of pay_1 to cus_1's balance as 1 lot" in flat(result.stdout)
    [lot] = run_json("--db", paid, "balance", CUSTOMER)["lots"]
    assert lot["id"] in result.stdout
    assert (lot["kind"], lot["funding_payment_id"], lot["amount"], lot["remaining"]) == (
        "credit",
        PAYMENT,
        2000,
        2000,
    )
    # What became credit is no longer refundable to the card directly.
    assert run_json("--db", paid, "quote", PAYMENT)["max_amount"] == 3000


def test_credit_from_a_split_tender_invoice_takes_the_newest_payment_first(db: str) -> None:
    add_payment(db, "pay_a", "20.00", "--invoice-id", "inv_s")
    add_payment(db, "pay_b", "30.00", "--invoice-id", "inv_s")
    data = run_json(
        "--db", db, "credit", "inv_s", "--amount", "40.00", "--currency", "usd",
        "--reference", "ticket-8",
    )  # fmt: skip
    assert data["source_id"] == "inv_s"
    assert data["customer_id"] == CUSTOMER
    assert data["credited"] == {"amount": 4000, "currency": "USD"}
    assert data["reference"] == "ticket-8"
    assert [(lot["funding_payment_id"], lot["amount"], lot["kind"]) for lot in data["lots"]] == [
        ("pay_b", 3000, "credit"),
        ("pay_a", 1000, "credit"),
    ]
    invoice = run_json("--db", db, "invoice", "inv_s")
    assert (invoice["credited"], invoice["refundable"]) == (4000, 1000)


def test_credit_takes_the_currency_of_its_payment(db: str) -> None:
    run_json(
        "--db", db, "payments", "add", "pay_e", "--customer", CUSTOMER, "--amount", "12.34",
        "--currency", "eur", "--gateway", "sandbox", "--gateway-payment-id", "sbx_e",
    )  # fmt: skip
    data = run_json("--db", db, "credit", "pay_e", "--amount", "1.50")
    assert data["credited"] == {"amount": 150, "currency": "EUR"}
    assert data["lots"][0]["currency"] == "EUR"
    other = run("--db", db, "credit", "pay_e", "--amount", "1.00", "--currency", "usd")
    assert_one_error_line(other, "currency_mismatch")
    too_precise = run("--db", db, "credit", "pay_e", "--amount", "1.001")
    assert "EUR" in assert_one_error_line(too_precise, "invalid_money")
    assert len(run_json("--db", db, "balance", CUSTOMER)["lots"]) == 1


def test_credit_more_than_refundable_exits_2_and_credits_nothing(paid: str) -> None:
    run_json("--db", paid, "refund", PAYMENT, "--amount", "10.00")
    result = run("--db", paid, "credit", PAYMENT, "--amount", "40.01")
    line = assert_one_error_line(result, "insufficient_refundable_balance")
    assert "pay_1 has 40.00 USD" in line
    assert result.stdout == ""
    as_json = run("--db", paid, "credit", PAYMENT, "--amount", "40.01", "--json")
    assert_one_error_line(as_json, "insufficient_refundable_balance")
    assert json.loads(as_json.stdout)["error"]["code"] == "insufficient_refundable_balance"
    assert run_json("--db", paid, "balance", CUSTOMER)["lots"] == []
    assert run_json("--db", paid, "quote", PAYMENT)["max_amount"] == 4000


def test_credit_from_nothing_or_from_a_top_up_exits_2(db: str) -> None:
    add_payment(db, "pay_t", "30.00", "--destination", "customer_balance")
    missing = run("--db", db, "credit", "nope", "--amount", "1.00")
    assert "'nope'" in assert_one_error_line(missing, "payment_not_found")
    top_up = run("--db", db, "credit", "pay_t", "--amount", "1.00")
    assert "pay_t" in assert_one_error_line(top_up, "invalid_input")
    assert [lot["kind"] for lot in run_json("--db", db, "balance", CUSTOMER)["lots"]] == ["top_up"]


def test_invoice_shows_its_balances_and_each_payment(db: str) -> None:
    add_payment(db, "pay_a", "20.00", "--invoice-id", "inv_s")
    add_payment(db, "pay_b", "30.00", "--invoice-id", "inv_s")
    run_json("--db", db, "refund", "pay_a", "--amount", "5.00")
    run_json("--db", db, "credit", "pay_b", "--amount", "10.00")
    data = run_json("--db", db, "invoice", "inv_s")
    assert {k: data[k] for k in ("invoice_id", "currency", "total", "refundable", "refunded",
                                 "credited")} == {
        "invoice_id": "inv_s", "currency": "USD", "total": 5000, "refundable": 3500,
        "refunded": 500, "credited": 1000,
    }  # fmt: skip
    assert [(p["id"], p["refundable"]) for p in data["payments"]] == [
        ("pay_b", 2000),
        ("pay_a", 1500),
    ]
    human = run("--db", db, "invoice", "inv_s")
    assert human.exit_code == 0, human.output
    text = flat(human.stdout)
    for words in ("total 50.00 USD", "refundable 35.00 USD", "refunded 5.00 USD",
                  "credited 10.00 USD", "payments 2"):  # fmt: skip
        assert words in text, words
    [row_a] = [line for line in human.stdout.splitlines() if "pay_a" in line]
    assert all(w in row_a for w in ("20.00 USD", "5.00 USD", "15.00 USD", "visa •••• 4242"))
    assert "held by refunds in flight" not in text


def test_an_unknown_invoice_exits_2(db: str) -> None:
    line = assert_one_error_line(run("--db", db, "invoice", "inv_nope"), "not_found")
    assert "'inv_nope'" in line


# --- plans --------------------------------------------------------------------------------------


@pytest.fixture
def invoices(db: str) -> str:
    """pay_1 100.00 on inv_1 (30.00 of it credited, then spent on inv_9), pay_2 50.00 on inv_2."""
    add_payment(db, "pay_1", "100.00", "--invoice-id", "inv_1")
    add_payment(db, "pay_2", "50.00", "--invoice-id", "inv_2")
    run_json("--db", db, "credit", "inv_1", "--amount", "30.00")
    run_json(
        "--db", db, "redeem", CUSTOMER, "--amount", "30.00", "--currency", "USD",
        "--reference", "inv_9",
    )  # fmt: skip
    return db


def refunds_of(db: str) -> list[dict[str, Any]]:
    refunds: list[dict[str, Any]] = run_json("--db", db, "refunds")["refunds"]
    return refunds


def make_plan(db: str, path: Path, amount: str, *extra: str) -> dict[str, Any]:
    plan: dict[str, Any] = run_json(
        "--db", db, "plan", CUSTOMER, "--amount", amount, "--out", str(path), *extra
    )
    return plan


def test_plan_previews_the_legs_and_writes_nothing(invoices: str, tmp_path: Path) -> None:
    before = store_digest(invoices)
    out = tmp_path / "plan.json"
    result = run(
        "--db", invoices, "plan", CUSTOMER, "--amount", "90.00", "--strategy", "fewest_refunds",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert store_digest(invoices) == before  # a plan is a preview
    assert refunds_of(invoices) == []
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["id"] in result.stdout
    assert saved["strategy"] == "fewest_refunds"
    assert [(leg["payment_id"], leg["amount"]) for leg in saved["legs"]] == [
        ("pay_1", 7000),
        ("pay_2", 2000),
    ]
    assert (saved["unrefundable"], saved["reason"]) == (0, None)
    rows = [line for line in result.stdout.splitlines() if "sandbox" in line]
    assert len(rows) == 2
    assert all(w in rows[0] for w in ("pay_1", "inv_1", "70.00 USD", "visa •••• 4242"))
    assert all(w in rows[1] for w in ("pay_2", "inv_2", "20.00 USD", "visa •••• 4242"))
    text = flat(result.stdout)
    assert "Planned: 90.00 USD in 2 refunds." in text
    assert "Unrefundable" not in text
    assert f"nothing was refunded. Saved to {out}; `refundkit execute {out}` runs it." in text


def test_plan_json_is_the_plan_and_the_out_file_holds_the_same(
    invoices: str, tmp_path: Path
) -> None:
    out = tmp_path / "plan.json"
    data = make_plan(invoices, out, "150.00")
    assert json.loads(out.read_text(encoding="utf-8")) == data
    assert (data["customer_id"], data["strategy"], data["scope"]) == (CUSTOMER, "newest_first",
                                                                      None)  # fmt: skip
    assert (data["total"], data["planned"], data["unrefundable"]) == (15000, 12000, 3000)
    assert [leg["payment_id"] for leg in data["legs"]] == ["pay_2", "pay_1"]
    assert "issued as customer credit" in data["reason"]
    assert set(data["basis"]) == {"payment:pay_1", "payment:pay_2"}
    human = flat(run("--db", invoices, "plan", CUSTOMER, "--amount", "150.00").stdout)
    assert "Planned: 120.00 USD in 2 refunds." in human
    assert "Unrefundable: 30.00 USD. Only 120.00 USD of the 150.00 USD" in human
    assert "refund the other 30.00 USD outside refundkit" in human
    assert "Save it with --out FILE" in human


def test_plan_single_source_that_cannot_cover_explains_why_and_exits_0(invoices: str) -> None:
    result = run("--db", invoices, "plan", CUSTOMER, "--amount", "90.00", "--strategy",
                 "single_source")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # a preview is not an error
    text = flat(result.stdout)
    assert "No refund can be planned." in text
    assert "Unrefundable: 90.00 USD. No single payment can refund 90.00 USD" in text
    assert "pay_1 (inv_1) has 70.00 USD refundable" in text
    assert "pay_2 (inv_2) has 50.00 USD" in text
    data = run_json("--db", invoices, "plan", CUSTOMER, "--amount", "90.00", "--strategy",
                    "SINGLE_SOURCE")  # fmt: skip
    assert (data["strategy"], data["legs"], data["unrefundable"]) == ("single_source", [], 9000)
    assert "pay_1 (inv_1) has 70.00 USD refundable" in data["reason"]
    assert "pay_2 (inv_2) has 50.00 USD" in data["reason"]
    assert refunds_of(invoices) == []


def test_plan_then_execute_then_execute_again_changes_nothing(
    invoices: str, tmp_path: Path
) -> None:
    out = tmp_path / "plan.json"
    plan = make_plan(invoices, out, "90.00", "--strategy", "fewest_refunds")
    args = ("--db", invoices, "execute", str(out), "--reason", "requested_by_customer",
            "--actor", "support:alice")  # fmt: skip
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert first.stderr == ""
    refunds = refunds_of(invoices)
    assert [(r["payment_id"], r["amount"], r["status"]) for r in refunds] == [
        ("pay_1", 7000, "succeeded"),
        ("pay_2", 2000, "succeeded"),
    ]
    assert {(r["reason"], r["actor"]) for r in refunds} == {
        ("requested_by_customer", "support:alice")
    }
    rows = [line for line in first.stdout.splitlines() if "rf_" in line]
    assert len(rows) == 2
    for row, refund in zip(rows, refunds, strict=True):
        assert refund["id"] in row
        assert "succeeded" in row
    assert plan["id"] in first.stdout
    assert "Refunded: 90.00 USD in 2 refunds." in flat(first.stdout)
    events = run_json("--db", invoices, "events")["events"]

    again = run_json(*args)
    assert again["plan_id"] == plan["id"]
    assert [leg["status"] for leg in again["legs"]] == ["succeeded", "succeeded"]
    assert [leg["refund_id"] for leg in again["legs"]] == [r["id"] for r in refunds]
    assert refunds_of(invoices) == refunds  # no new rows
    assert run_json("--db", invoices, "events")["events"] == events


def test_executing_a_plan_again_with_another_reason_is_refused_and_exits_1(
    invoices: str, tmp_path: Path
) -> None:
    out = tmp_path / "plan.json"
    make_plan(invoices, out, "10.00")
    assert run("--db", invoices, "execute", str(out), "--reason", "duplicate").exit_code == 0
    refunds = refunds_of(invoices)
    other = run("--db", invoices, "execute", str(out), "--reason", "fraudulent")
    assert other.exit_code == 1
    [line] = error_lines(other)
    assert line.startswith("error: plan_incomplete: 1 of 1 leg of plan ")
    assert "refused (idempotency_conflict)" in line
    assert "idempotency_conflict" in other.stdout  # the table's "why" column
    assert refunds_of(invoices) == refunds


def test_execute_reads_the_plan_from_stdin(invoices: str) -> None:
    plan = run("--db", invoices, "plan", CUSTOMER, "--amount", "10.00", "--json")
    assert plan.exit_code == 0, plan.output
    result = run("--db", invoices, "execute", "-", "--json", input=plan.stdout)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["plan_id"] == json.loads(plan.stdout)["id"]
    [leg] = data["legs"]
    assert (leg["index"], leg["status"], leg["error"]) == (0, "succeeded", None)
    assert (leg["leg"]["payment_id"], leg["leg"]["amount"]) == ("pay_2", 1000)  # newest first
    assert [r["id"] for r in refunds_of(invoices)] == [leg["refund_id"]]


def test_a_stale_plan_file_exits_2_and_refunds_nothing(invoices: str, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    plan = make_plan(invoices, out, "60.00", "--strategy", "single_source")
    assert [leg["payment_id"] for leg in plan["legs"]] == ["pay_1"]
    run_json("--db", invoices, "refund", "pay_1", "--amount", "5.00")  # the payment changed
    refunds = refunds_of(invoices)
    result = run("--db", invoices, "execute", str(out))
    line = assert_one_error_line(result, "stale_plan")
    assert plan["id"] in line
    assert "pay_1" in line
    assert result.stdout == ""
    as_json = run("--db", invoices, "execute", str(out), "--json")
    assert_one_error_line(as_json, "stale_plan")
    assert json.loads(as_json.stdout)["error"]["code"] == "stale_plan"
    assert refunds_of(invoices) == refunds


def _without(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda plan: {k: v for k, v in plan.items() if k != key}


def _first_leg(**changes: Any) -> Callable[[dict[str, Any]], Any]:
    def change(plan: dict[str, Any]) -> Any:
        plan["legs"][0].update(changes)
        return plan

    return change


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda plan: "this is not json", "not JSON"),
        (lambda plan: [plan], "expected a JSON object"),
        (lambda plan: {}, "a plan needs"),
        (_without("legs"), "'legs'"),
        (_without("basis"), "'basis'"),
        (lambda plan: plan | {"total": plan["total"] + 1}, "total does not match"),
        (lambda plan: plan | {"strategy": "cheapest"}, "unknown strategy"),
        (lambda plan: plan | {"basis": ["payment:pay_2"]}, "basis"),
        (lambda plan: plan | {"legs": {"0": plan["legs"][0]}}, "legs must be a list"),
        (_first_leg(amount=-500), "more than"),
        (_first_leg(amount="10.00"), "amount"),
        (_first_leg(currency="XYZ"), "XYZ"),
        (_first_leg(card={"last4": "4242"}), "'brand'"),
        (_first_leg(card="visa"), "card"),
    ],
)
def test_a_malformed_plan_file_exits_2_with_invalid_input(
    invoices: str, tmp_path: Path, tamper: Callable[[dict[str, Any]], Any], why: str
) -> None:
    out = tmp_path / "plan.json"
    bad = tamper(make_plan(invoices, out, "10.00"))
    out.write_text(bad if isinstance(bad, str) else json.dumps(bad), encoding="utf-8")
    result = run("--db", invoices, "execute", str(out))
    line = assert_one_error_line(result, "invalid_input")
    assert str(out) in line
    assert why in line
    as_json = run("--db", invoices, "execute", str(out), "--json")
    assert_one_error_line(as_json, "invalid_input")
    assert json.loads(as_json.stdout)["error"]["code"] == "invalid_input"
    assert refunds_of(invoices) == []


def test_a_plan_file_that_cannot_be_read_exits_2(invoices: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    line = assert_one_error_line(run("--db", invoices, "execute", str(missing)), "invalid_input")
    assert f"cannot read the plan file {missing}" in line
    binary = tmp_path / "plan.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert_one_error_line(run("--db", invoices, "execute", str(binary)), "invalid_input")
    empty = run("--db", invoices, "execute", "-", input="")
    assert "stdin is not a plan" in assert_one_error_line(empty, "invalid_input")
    assert refunds_of(invoices) == []


def test_execute_with_a_declined_leg_exits_1_and_says_so_after_the_table(
    paid: str, tmp_path: Path
) -> None:
    out = tmp_path / "plan.json"
    make_plan(paid, out, "1.91")  # the sandbox declines it
    result = run("--db", paid, "execute", str(out))
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert line.startswith("error: plan_incomplete: 1 of 1 leg of plan ")
    assert "leg 0 pay_1 1.91 USD failed (gateway_declined)" in line
    [row] = [line for line in result.stdout.splitlines() if "rf_" in line]
    assert "failed" in row
    assert "gateway_declined" in row
    assert "Refunded" not in result.stdout
    [refund] = refunds_of(paid)
    assert refund["id"] in row
    assert refund["status"] == "failed"

    again = tmp_path / "again.json"
    make_plan(paid, again, "1.91")
    as_json = run("--db", paid, "execute", str(again), "--json")
    assert as_json.exit_code == 1
    assert len(error_lines(as_json)) == 1
    [leg] = json.loads(as_json.stdout)["legs"]
    assert leg["status"] == "failed"
    assert leg["error"]["code"] == "gateway_declined"


def test_execute_with_a_pending_leg_exits_0(paid: str, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    make_plan(paid, out, "2.92")  # the sandbox answers pending
    result = run("--db", paid, "execute", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    text = flat(result.stdout)
    assert "Pending: 2.92 USD in 1 refund; the gateway confirms later" in text
    assert [r["status"] for r in refunds_of(paid)] == ["pending"]


def test_an_empty_plan_executes_to_nothing(invoices: str, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    plan = make_plan(invoices, out, "90.00", "--strategy", "single_source")
    assert plan["legs"] == []
    result = run("--db", invoices, "execute", str(out))
    assert result.exit_code == 0, result.output
    assert f"Plan {plan['id']} has no legs: nothing to refund." in result.stdout
    assert refunds_of(invoices) == []


def test_plan_scoped_to_an_invoice_uses_its_currency(db: str) -> None:
    run_json(
        "--db", db, "payments", "add", "pay_e", "--customer", CUSTOMER, "--amount", "12.34",
        "--currency", "eur", "--gateway", "sandbox", "--gateway-payment-id", "sbx_e",
        "--invoice-id", "inv_e",
    )  # fmt: skip
    scoped = run_json("--db", db, "plan", CUSTOMER, "--amount", "10.00", "--scope", "inv_e")
    assert (scoped["currency"], scoped["scope"], scoped["total"]) == ("EUR", "inv_e", 1000)
    assert [(leg["payment_id"], leg["currency"]) for leg in scoped["legs"]] == [("pay_e", "EUR")]
    # Without a payment to give the currency, the amount is in USD: this customer has none.
    unscoped = run_json("--db", db, "plan", CUSTOMER, "--amount", "10.00")
    assert (unscoped["currency"], unscoped["legs"], unscoped["unrefundable"]) == ("USD", [], 1000)
    in_eur = run_json("--db", db, "plan", CUSTOMER, "--amount", "10.00", "--currency", "eur")
    assert [leg["payment_id"] for leg in in_eur["legs"]] == ["pay_e"]
    mismatch = run("--db", db, "plan", CUSTOMER, "--amount", "1.00", "--scope", "inv_e",
                   "--currency", "USD")  # fmt: skip
    assert "EUR" in assert_one_error_line(mismatch, "currency_mismatch")
    unknown = run("--db", db, "plan", CUSTOMER, "--amount", "1.00", "--scope", "inv_nope")
    assert_one_error_line(unknown, "not_found")
    not_theirs = run("--db", db, "plan", "cus_2", "--amount", "1.00", "--scope", "inv_e")
    assert "cus_2" in assert_one_error_line(not_theirs, "invalid_input")


def test_plan_scoped_to_the_balance_names_the_lots(db: str) -> None:
    add_payment(db, "pay_t", "40.00", "--destination", "customer_balance")
    add_payment(db, "pay_inv", "100.00", "--invoice-id", "inv_1")
    [credit] = run_json("--db", db, "credit", "pay_inv", "--amount", "25.00")["lots"]
    lots = {lot["funding_payment_id"]: lot["id"] for lot in
            run_json("--db", db, "balance", CUSTOMER)["lots"]}  # fmt: skip
    assert lots["pay_inv"] == credit["id"]
    result = run("--db", db, "plan", CUSTOMER, "--amount", "50.00", "--scope", "balance")
    assert result.exit_code == 0, result.output
    assert "from the customer balance, lot by lot, newest_first" in flat(result.stdout)
    rows = [line for line in result.stdout.splitlines() if "lot_" in line]
    assert len(rows) == 2
    assert all(w in rows[0] for w in ("pay_inv", credit["id"], "25.00 USD"))
    assert all(w in rows[1] for w in ("pay_t", lots["pay_t"], "25.00 USD"))
    assert refunds_of(db) == []


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--amount", "10.005"], "invalid_money"),
        (["--amount", "0.00"], "invalid_money"),
        (["--amount", "1.00", "--currency", "XYZ"], "invalid_money"),
        (["--amount", "1.00", "--strategy", "cheapest"], "usage"),
        (["--amount", "1.00", "--scope", "not an id"], "invalid_input"),
        ([], "usage"),
    ],
)
def test_plan_with_bad_arguments_exits_2(invoices: str, args: list[str], code: str) -> None:
    assert_one_error_line(run("--db", invoices, "plan", CUSTOMER, *args), code)


def test_plan_needs_an_existing_store_and_a_writable_out(invoices: str, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    assert_one_error_line(run("--db", missing, "plan", CUSTOMER, "--amount", "1.00"),
                          "store_not_found")  # fmt: skip
    assert not (tmp_path / "missing.db").exists()
    out = tmp_path / "no" / "such" / "dir" / "plan.json"
    result = run("--db", invoices, "plan", CUSTOMER, "--amount", "1.00", "--out", str(out))
    assert f"cannot write the plan to {out}" in assert_one_error_line(result, "invalid_input")
    assert result.stdout == ""


# --- refund-balance -----------------------------------------------------------------------------


@pytest.fixture
def lots(db: str) -> str:
    """A 40.00 top-up, then a 25.00 credit lot funded by a 100.00 invoice payment."""
    add_payment(db, "pay_t", "40.00", "--destination", "customer_balance")
    add_payment(db, "pay_inv", "100.00", "--invoice-id", "inv_1")
    run_json("--db", db, "credit", "pay_inv", "--amount", "25.00")
    return db


def test_refund_balance_sends_lots_back_to_the_cards_that_funded_them(lots: str) -> None:
    result = run(
        "--db", lots, "refund-balance", CUSTOMER, "--amount", "50.00", "--currency", "usd",
        "--reason", "requested_by_customer", "--actor", "support:bob",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    refunds = refunds_of(lots)
    assert [(r["payment_id"], r["amount"], r["status"]) for r in refunds] == [
        ("pay_inv", 2500, "succeeded"),  # the newest lot first
        ("pay_t", 2500, "succeeded"),
    ]
    assert {r["actor"] for r in refunds} == {"support:bob"}
    rows = [line for line in result.stdout.splitlines() if "rf_" in line]
    for row, refund in zip(rows, refunds, strict=True):
        assert refund["id"] in row
        assert "succeeded" in row
    assert "Refunded: 50.00 USD in 2 refunds." in flat(result.stdout)
    assert run_json("--db", lots, "balance", CUSTOMER)["totals"] == {"USD": 1500}


def test_refund_balance_json_and_a_balance_too_small(lots: str) -> None:
    data = run_json("--db", lots, "refund-balance", CUSTOMER, "--amount", "5.00", "--strategy",
                    "oldest_first")  # fmt: skip
    [leg] = data["legs"]
    assert leg["status"] == "succeeded"
    assert leg["leg"]["payment_id"] == "pay_t"  # the oldest lot: the top-up
    assert leg["leg"]["lot_id"] is not None
    assert [r["id"] for r in refunds_of(lots)] == [leg["refund_id"]]
    too_much = run("--db", lots, "refund-balance", CUSTOMER, "--amount", "60.01")
    line = assert_one_error_line(too_much, "insufficient_refundable_balance")
    assert "60.01 USD" in line
    assert len(refunds_of(lots)) == 1
    assert run_json("--db", lots, "balance", CUSTOMER)["totals"] == {"USD": 6000}


def test_refund_balance_with_a_declined_refund_exits_1(lots: str) -> None:
    result = run("--db", lots, "refund-balance", CUSTOMER, "--amount", "1.91")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert line.startswith("error: plan_incomplete: ")
    assert "pay_inv 1.91 USD failed (gateway_declined)" in line
    assert "failed" in result.stdout
    assert run_json("--db", lots, "balance", CUSTOMER)["totals"] == {"USD": 6500}  # restored


# --- options, environment, JSON -----------------------------------------------------------------


def test_refundkit_db_environment_variable_is_honoured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = run(
        "payments", "add", "pay_env", "--customer", CUSTOMER, "--amount", "5.00",
        "--currency", "USD", "--gateway", "sandbox", "--gateway-payment-id", "sbx_env",
        env={"REFUNDKIT_DB": url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.db").exists()
    listed = run("payments", "list", "--json", env={"REFUNDKIT_DB": url})
    assert [p["id"] for p in json.loads(listed.stdout)["payments"]] == ["pay_env"]
    # --db wins over the environment, at the group and at the command.
    other = make_store(f"sqlite:///{tmp_path / 'other.db'}")
    for args in (("--db", other, "payments", "list"), ("payments", "list", "--db", other)):
        overridden = run(*args, "--json", env={"REFUNDKIT_DB": url})
        assert json.loads(overridden.stdout)["payments"] == []


def test_the_default_store_is_refundkit_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # A reading command never creates a store: it says where it looked.
    assert_one_error_line(run("payments", "list"), "store_not_found")
    assert not (tmp_path / "refundkit.db").exists()
    added = run(
        "payments", "add", "pay_cwd", "--customer", CUSTOMER, "--amount", "5.00",
        "--currency", "USD", "--gateway", "sandbox", "--gateway-payment-id", "sbx_cwd",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert (tmp_path / "refundkit.db").exists()
    assert run("payments", "list").exit_code == 0


def test_json_flag_works_on_the_group_too(paid: str) -> None:
    result = run("--json", "--db", paid, "quote", PAYMENT)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["max_amount"] == 5000


def test_every_command_prints_one_json_document(paid: str, tmp_path: Path) -> None:
    refund = run_json("--db", paid, "refund", PAYMENT, "--amount", "3.00")
    commands: list[list[str]] = [
        ["gateways"],
        ["payments", "list"],
        ["payments", "show", PAYMENT],
        ["quote", PAYMENT],
        ["refund", PAYMENT, "--amount", "1.00"],
        ["refunds"],
        ["refunds", "--payment", PAYMENT, "--status", "succeeded"],
        ["recover"],
        ["events"],
        ["journal"],
        ["journal", "--refund", refund["id"]],
        ["balance", CUSTOMER],
        ["invoice", "inv_1"],
        ["plan", CUSTOMER, "--amount", "1.00"],
    ]
    for command in commands:
        result = run("--db", paid, *command, "--json")
        assert result.exit_code == 0, (command, result.output)
        assert isinstance(json.loads(result.stdout), dict), command
    add = run(
        "--db", paid, "payments", "add", "pay_j", "--customer", CUSTOMER, "--amount", "1.00",
        "--currency", "USD", "--gateway", "sandbox", "--gateway-payment-id", "sbx_j", "--json",
    )  # fmt: skip
    assert json.loads(add.stdout)["id"] == "pay_j"
    demo = run("demo", "--dir", str(tmp_path / "demo"), "--json")
    assert json.loads(demo.stdout)["journal"]["balanced"] is True


def test_gateways_lists_the_sandbox_with_its_capabilities() -> None:
    table = run("gateways")
    assert table.exit_code == 0
    assert "sandbox" in table.stdout
    assert "yes (24 h)" in table.stdout
    assert "refundkit (built-in)" in table.stdout
    data = run_json("gateways")["gateways"]
    sandbox = next(g for g in data if g["name"] == "sandbox")
    assert sandbox["capabilities"]["partial_refunds"] is True
    assert sandbox["capabilities"]["void_if_unsettled"] is True
    assert sandbox["distribution"]["name"] == "refundkit (built-in)"


def test_a_usage_error_is_one_line_and_exit_2(paid: str) -> None:
    missing = run("--db", paid, "quote")
    line = assert_one_error_line(missing, "usage")
    assert "PAYMENT_ID" in line
    assert "refundkit quote --help" in line
    unknown = run("--db", paid, "refund", PAYMENT, "--bogus", "--json")
    assert_one_error_line(unknown, "usage")
    assert json.loads(unknown.stdout)["error"]["code"] == "usage"
    bad_status = run("--db", paid, "refunds", "--status", "done")
    assert_one_error_line(bad_status, "usage")
    no_command = run("--db", paid, "nonsense")
    assert_one_error_line(no_command, "usage")


def test_a_store_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"
    assert_one_error_line(run("--db", url, "refunds"), "store_not_found")
    add = run(
        "--db", url, "payments", "add", "pay_m", "--customer", CUSTOMER, "--amount", "1.00",
        "--currency", "USD", "--gateway", "sandbox", "--gateway-payment-id", "sbx_m",
    )  # fmt: skip
    assert_one_error_line(add, "invalid_store")  # no directory to create it in: fix the URL
    assert_one_error_line(run("--db", "not a url", "refunds"), "configuration_error")


def test_the_console_script_reports_errors_in_one_line(tmp_path: Path) -> None:
    """The real entry point, in a subprocess: exit code and stderr as a shell sees them."""
    env = {k: v for k, v in os.environ.items() if k != "REFUNDKIT_DB"}
    url = make_store(f"sqlite:///{tmp_path / 'x.db'}")
    proc = subprocess.run(
        [sys.executable, "-c", "from refundkit.cli import main; main()",
         "--db", url, "quote", "nope"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: payment_not_found: no payment 'nope'"
    assert proc.stdout == ""


def test_human_output_never_shows_floats(paid: str) -> None:
    run_json("--db", paid, "refund", PAYMENT, "--amount", "0.10")
    for command in (["refunds"], ["journal"], ["events"], ["quote", PAYMENT]):
        out = run("--db", paid, *command).stdout
        assert "0.1 " not in out
        assert "49.9 " not in out
    assert "0.10 USD" in run("--db", paid, "refunds").stdout

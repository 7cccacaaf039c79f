"""The configuration file: where it is found, env: references, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from refundkit import ConfigurationError
from refundkit._config import load_config
from refundkit.cli import cli


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "refundkit.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_is_an_empty_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REFUNDKIT_CONFIG", raising=False)
    config = load_config()
    assert config.path is None
    assert config.section("gateways") == {}
    assert config.section("webhooks", "endpoints") == {}


def test_the_default_file_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, '[gateways.sandbox]\npath = ":memory:"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REFUNDKIT_CONFIG", raising=False)
    assert load_config().section("gateways", "sandbox") == {"path": ":memory:"}


def test_env_references_are_resolved_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        '[[webhooks.endpoints]]\nurl = "http://127.0.0.1:9/h"\nsecret = "env:RK_TEST_SECRET"\n',
    )
    monkeypatch.setenv("RK_TEST_SECRET", "whsec_c2VjcmV0")
    config = load_config(path)
    assert config.section("webhooks", "endpoints") == [
        {"url": "http://127.0.0.1:9/h", "secret": "whsec_c2VjcmV0"}
    ]
    monkeypatch.delenv("RK_TEST_SECRET")
    with pytest.raises(ConfigurationError, match="RK_TEST_SECRET, which is not set"):
        config.section("webhooks")


@pytest.mark.parametrize(
    ("text", "message"),
    [("[gateways\n", "is not valid TOML"), ("gateways = 3\n", r"\[gateways\] is not a table")],
)
def test_a_bad_file_is_a_configuration_error(tmp_path: Path, text: str, message: str) -> None:
    config_error = pytest.raises(ConfigurationError, match=message)
    with config_error:
        load_config(write(tmp_path, text)).section("gateways", "stripe")


def test_a_missing_explicit_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = CliRunner().invoke(
        cli,
        ["--config", str(missing), "--db", f"sqlite:///{tmp_path / 'k.db'}", "payments", "list"],
        env={"REFUNDKIT_DB": None, "REFUNDKIT_CONFIG": None},
    )
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line]
    assert len(lines) == 1
    assert "cannot read the configuration file" in lines[0]
    assert "configuration_error" in lines[0] or "nope.toml" in lines[0]


def test_gateway_sections_reach_the_gateways(tmp_path: Path) -> None:
    """The CLI hands [gateways.<name>] to that gateway as its config."""
    sandbox_db = tmp_path / "sandbox.db"
    config = write(tmp_path, f'[gateways.sandbox]\npath = "{sandbox_db}"\n')
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "--db",
            f"sqlite:///{tmp_path / 'k.db'}",
            "payments",
            "add",
            "pay_1",
            "--customer",
            "cus_1",
            "--gateway-payment-id",
            "ch_1",
            "--gateway",
            "sandbox",
            "--amount",
            "10.00",
            "--currency",
            "USD",
        ],
        env={"REFUNDKIT_DB": None, "REFUNDKIT_CONFIG": None},
    )
    assert result.exit_code == 0, result.output
    assert sandbox_db.is_file()

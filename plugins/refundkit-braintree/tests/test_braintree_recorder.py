"""record_braintree.py, offline: its credentials, what it leaves alone, and a dry run whose
"sandbox" answers with the fixtures' own recorded replies (no machine here reaches Braintree)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import record_braintree
import yaml  # type: ignore[import-untyped]
from _braintree_build_cassettes import CASSETTES, NOT_REPRODUCIBLE, ROOT, _bodies
from record_braintree import RECORDINGS, Exchange, credentials, main, rebuild, record_sources

FIXTURES = ROOT.parent / "shared" / "fixtures" / "braintree"
KEYS = {
    "REFUNDKIT_BRAINTREE_MERCHANT_ID": "rkmerchant",
    "REFUNDKIT_BRAINTREE_PUBLIC_KEY": "rkpublickey0000",
    "REFUNDKIT_BRAINTREE_PRIVATE_KEY": "rkprivatekey0000secret",
}
SANDBOX_STATUSES = {200, 201, 401, 404, 422}


def _cassettes() -> dict[str, Path]:
    return {str(p.relative_to(CASSETTES))[: -len(".yaml")]: p for p in CASSETTES.rglob("*.yaml")}


def test_credentials_come_from_the_environment_only() -> None:
    assert credentials(KEYS) == {
        "merchant_id": "rkmerchant",
        "public_key": "rkpublickey0000",
        "private_key": "rkprivatekey0000secret",
    }


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "REFUNDKIT_BRAINTREE_MERCHANT_ID"),
        ({**KEYS, "REFUNDKIT_BRAINTREE_PRIVATE_KEY": ""}, "PRIVATE_KEY"),
        ({**KEYS, "REFUNDKIT_BRAINTREE_ENVIRONMENT": "production"}, "only the sandbox"),
    ],
)
def test_missing_keys_or_production_exit_2(
    environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([], environ) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "rkprivatekey0000secret" not in err


def test_a_failure_never_prints_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def boom(keys: dict[str, str], out: Path) -> None:
        raise RuntimeError(f"sandbox said no to {keys['private_key']}")

    monkeypatch.setattr(record_braintree, "record_sources", boom)
    assert main(["--out", str(tmp_path)], KEYS) == 1
    err = capsys.readouterr().err
    assert "rkprivatekey0000secret" not in err
    assert "<key>" in err
    assert not list(tmp_path.iterdir())


def test_what_is_left_alone_is_what_a_sandbox_cannot_reproduce() -> None:
    """Every cassette with a 429 or a 5xx is left alone and says so; the others hold only
    answers a sandbox gives on demand."""
    cassettes = _cassettes()
    assert set(cassettes) >= NOT_REPRODUCIBLE
    for name, path in cassettes.items():
        text = path.read_text()
        statuses = {i["response"]["status"]["code"] for i in yaml.safe_load(text)["interactions"]}
        left_alone = "record_braintree.py leaves this file alone" in text.split("interactions:")[0]
        assert left_alone == (name in NOT_REPRODUCIBLE), name
        if not statuses <= SANDBOX_STATUSES:
            assert name in NOT_REPRODUCIBLE, (name, statuses)


def _fixture_sandbox(exchanges: list[Exchange], *, roles: list[str]) -> type:
    """A stand-in for the SDK's transport answering with the fixture's recorded replies, in
    order, for the recording ``roles`` names next (one fixture per gateway made)."""
    replies = _bodies(FIXTURES / roles.pop(0))

    class FixtureSandbox:
        def __init__(self, config: Any, environment: Any) -> None:
            self.config = config

        def http_do(self, verb: str, path: str, headers: Any, body: Any) -> list[Any]:
            status, reply = replies.pop(0)
            text = reply.decode("utf-8")
            exchanges.append((verb, path, body, status, text))
            return [status, text]

    return FixtureSandbox


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures/braintree is not here")
def test_a_dry_run_rebuilds_the_same_cassettes_and_leaves_the_rest(tmp_path: Path) -> None:
    """The five recordings made with the SDK's calls (answered by the fixtures), then the
    rebuild: every reproducible cassette comes out as committed (but its Source line, which
    names the new recording), and none that is not is written."""
    roles = list(RECORDINGS)
    sources, out = tmp_path / "sources", tmp_path / "out"
    sources.mkdir()
    made = record_sources(
        credentials(KEYS),
        sources,
        http=lambda exchanges: _fixture_sandbox(exchanges, roles=roles),
    )
    assert [p.name for p in made] == list(RECORDINGS)
    lines: list[str] = []
    written = rebuild(sources, out, lines.append, "2026-11-22")
    names = {str(p.relative_to(out))[: -len(".yaml")] for p in written}
    assert names == set(_cassettes()) - NOT_REPRODUCIBLE
    assert all(name in lines[0] for name in NOT_REPRODUCIBLE)
    for path in written:
        committed = (CASSETTES / path.relative_to(out)).read_text()
        rebuilt = path.read_text()
        assert rebuilt.split("interactions:", 1)[1] == committed.split("interactions:", 1)[1]
        assert "a sandbox recording made 2026-11-22 by record_braintree.py" in rebuilt

"""Discovery (issue 4, "Done means" point 2): ``refundkit gateways`` lists the plugin. The
built wheel, installed as a real distribution, is tested for all three plugins in
``tests/test_plugin_distributions.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import refundkit_stripe
from click.testing import CliRunner

from refundkit import PluginManager
from refundkit.cli import cli


def _run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_refundkit_gateways_lists_stripe_in_this_environment() -> None:
    # The README's `uv run --locked ...` installs the workspace member; autoload finds it.
    assert "stripe" in list(PluginManager().gateways)
    result = CliRunner().invoke(cli, ["gateways"])
    assert result.exit_code == 0, result.output
    assert "stripe" in result.output


def test_importing_the_plugin_does_not_import_the_sdk() -> None:
    code = "import sys, refundkit, refundkit_stripe; assert 'stripe' not in sys.modules"
    _run(sys.executable, "-c", code)
    assert refundkit_stripe.StripeGateway.name == "stripe"

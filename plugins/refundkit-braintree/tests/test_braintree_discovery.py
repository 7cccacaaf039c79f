"""The plugin is a real distribution: its entry point is found, the CLI lists the gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

from click.testing import CliRunner
from refundkit_braintree import BraintreeGateway

from refundkit import PluginManager
from refundkit.cli import cli


def test_the_distribution_declares_the_refundkit_entry_point() -> None:
    dist = metadata.distribution("refundkit-braintree")
    points = [ep for ep in dist.entry_points if ep.group == "refundkit"]
    assert [(ep.name, ep.value) for ep in points] == [("braintree", "refundkit_braintree")]
    assert any(
        ep.dist is not None and ep.dist.name == "refundkit-braintree"
        for ep in metadata.entry_points(group="refundkit", name="braintree")
    )


def test_the_plugin_manager_autoloads_the_gateway() -> None:
    pm = PluginManager(autoload=True)
    assert pm.gateways.get("braintree") is BraintreeGateway
    assert ("braintree", "refundkit-braintree") in [(n, d) for n, d, _ in pm.distinfo()]


def test_refundkit_gateways_lists_braintree() -> None:
    result = CliRunner().invoke(
        cli, ["gateways", "--json"], env={"REFUNDKIT_CONFIG": None}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["gateways"]}
    row = rows["braintree"]
    assert row["distribution"]["name"] == "refundkit-braintree"
    assert row["capabilities"]["void_if_unsettled"] is True
    assert row["capabilities"]["idempotency_keys"] is True


def test_importing_the_plugin_or_refundkit_does_not_import_the_sdk() -> None:
    code = (
        "import sys, refundkit, refundkit_braintree\n"
        "from refundkit import PluginManager\n"
        "PluginManager(autoload=True)\n"
        "assert 'braintree' not in sys.modules, 'braintree SDK imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

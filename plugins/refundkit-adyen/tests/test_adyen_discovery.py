"""The plugin is found through its distribution's entry point, and loading it is cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

from click.testing import CliRunner
from refundkit_adyen import AdyenGateway

from refundkit import PluginManager
from refundkit.cli import cli


def test_the_distribution_declares_the_entry_point() -> None:
    dist = metadata.distribution("refundkit-adyen")
    (entry,) = [ep for ep in dist.entry_points if ep.group == "refundkit"]
    assert (entry.name, entry.value) == ("adyen", "refundkit_adyen")
    assert entry.load().AdyenGateway is AdyenGateway


def test_autoload_registers_the_gateway() -> None:
    pm = PluginManager(autoload=True)
    assert pm.gateways.get("adyen") is AdyenGateway
    assert ("adyen", "refundkit-adyen") in [(n, d) for n, d, _ in pm.distinfo()]
    assert PluginManager(autoload=False, disabled=()).gateways.__contains__("adyen") is False


def test_refundkit_gateways_lists_adyen() -> None:
    env = {"REFUNDKIT_DB": None, "REFUNDKIT_CONFIG": None, "COLUMNS": "200"}
    table = CliRunner().invoke(cli, ["gateways"], env=env, catch_exceptions=False)
    assert table.exit_code == 0
    assert "adyen" in table.stdout
    assert "refundkit-adyen" in table.stdout
    listed = CliRunner().invoke(cli, ["gateways", "--json"], env=env, catch_exceptions=False)
    adyen = next(g for g in json.loads(listed.stdout)["gateways"] if g["name"] == "adyen")
    assert adyen["distribution"]["name"] == "refundkit-adyen"
    assert adyen["capabilities"]["lookup"] is False
    assert adyen["capabilities"]["idempotency_window_hours"] == 168
    assert adyen["capabilities"]["currency_exponents"] == {"CLP": 2, "ISK": 2, "IDR": 0, "CVE": 0}


def test_loading_the_plugin_does_not_import_the_sdk() -> None:
    code = (
        "import sys, refundkit, refundkit_adyen\n"
        "from refundkit import PluginManager\n"
        "PluginManager(autoload=True).gateways.get('adyen')({'api_key': 'k'})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('Adyen', 'requests')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""The plugin system: hooks, registry, switches, event listeners; and the import surface."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import refundkit
from refundkit import (
    Gateway,
    GatewayPayment,
    GatewayRefundRequest,
    GatewayRefundResult,
    PluginError,
    PluginManager,
    RefundKit,
    UnknownGateway,
    hookimpl,
)
from refundkit._plugins import DISABLED_ENV, NO_AUTOLOAD_ENV

from .conftest import FakeClock, record, usd


class OtherSandbox(Gateway):
    name = "sandbox"

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        raise NotImplementedError

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        raise NotImplementedError

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        raise NotImplementedError


class DuplicatePlugin:
    @hookimpl
    def refundkit_register_gateways(self, register: Any) -> None:
        register(OtherSandbox)


class MisspelledPlugin:
    @hookimpl
    def refundkit_register_gateway(self, register: Any) -> None:  # missing "s"
        raise AssertionError("never called")


def test_sandbox_is_a_builtin_registered_through_the_same_hook() -> None:
    pm = PluginManager(autoload=False)
    assert list(pm.gateways) == ["sandbox"]
    assert "sandbox" in pm.plugin_names()


def test_registry_rejects_a_second_gateway_with_the_same_name() -> None:
    with pytest.raises(PluginError, match="two gateways are named 'sandbox'"):
        PluginManager(autoload=False, plugins=[DuplicatePlugin()])


def test_misspelled_hook_fails_loudly() -> None:
    with pytest.raises(PluginError, match="refundkit_register_gateway"):
        PluginManager(autoload=False, plugins=[MisspelledPlugin()])


def test_blocking_a_plugin_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLED_ENV, "sandbox")
    pm = PluginManager(autoload=False)
    assert "sandbox" not in pm.gateways
    with pytest.raises(UnknownGateway, match="no gateway named 'sandbox'"):
        pm.gateways.get("sandbox")


def test_autoload_can_be_switched_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []

    def fake_load(self: object, group: str, name: str | None = None) -> int:
        loaded.append(group)
        return 0

    monkeypatch.setattr("pluggy.PluginManager.load_setuptools_entrypoints", fake_load)
    PluginManager()
    assert loaded == ["refundkit"]
    monkeypatch.setenv(NO_AUTOLOAD_ENV, "1")
    PluginManager()
    assert loaded == ["refundkit"]  # not loaded a second time


def test_each_kit_owns_its_plugin_manager(tmp_path: Path) -> None:
    a = RefundKit.open(f"sqlite:///{tmp_path / 'a.db'}", autoload=False)
    b = RefundKit.open(f"sqlite:///{tmp_path / 'b.db'}", autoload=False, plugins=[Listener()])
    assert a.plugins is not b.plugins
    assert not a.plugins.has_event_listeners()
    assert b.plugins.has_event_listeners()
    a.close()
    b.close()


class Listener:
    def __init__(self, fail_first: bool = False) -> None:
        self.seen: list[dict[str, Any]] = []
        self.fail_first = fail_first

    @hookimpl
    def refundkit_on_event(self, event: dict[str, Any]) -> None:
        if self.fail_first:
            self.fail_first = False
            raise RuntimeError("listener down")
        self.seen.append(event)


def test_listeners_receive_events_after_commit(tmp_path: Path, clock: FakeClock) -> None:
    listener = Listener()
    kit = RefundKit.open(
        f"sqlite:///{tmp_path / 'k.db'}", autoload=False, clock=clock, plugins=[listener]
    )
    record(kit)
    refund = kit.refund("pay_1", usd("5.00"))
    assert [e["type"] for e in listener.seen] == ["charge.refunded"]
    assert listener.seen[0] == kit.events()[0].to_dict()
    assert listener.seen[0]["data"]["refund"]["id"] == refund.id
    kit.close()


def test_a_failing_listener_gets_the_event_again(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    listener = Listener(fail_first=True)
    kit = RefundKit.open(
        f"sqlite:///{tmp_path / 'k.db'}", autoload=False, clock=clock, plugins=[listener]
    )
    record(kit)
    refund = kit.refund("pay_1", usd("5.00"))
    assert refund.status.value == "succeeded"  # the refund is not undone
    assert listener.seen == []
    assert "offered again" in caplog.text
    assert kit.dispatch_events() == 1
    assert [e["type"] for e in listener.seen] == ["charge.refunded"]
    assert kit.dispatch_events() == 0  # delivered once it succeeded
    kit.close()


def test_host_engine_can_be_passed_instead_of_a_url(tmp_path: Path) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'host.db'}")
    kit = RefundKit.open(engine, autoload=False)
    record(kit)
    assert kit.refund("pay_1", usd("1.00")).amount == usd("1.00")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM refunds")).scalar_one() == 1
    kit.close()


def test_import_refundkit_loads_no_gateway_sdk_nor_the_store() -> None:
    code = (
        "import refundkit, sys; "
        "assert not {'stripe', 'braintree', 'Adyen'} & set(sys.modules); "
        "assert 'sqlalchemy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_lists_exactly_the_public_names() -> None:
    """Modelled on httpx's test_exported_members: nothing public is left out of __all__."""
    helpers = {"TYPE_CHECKING", "Any", "annotations"}
    public = (
        {
            name
            for name, value in vars(refundkit).items()
            if not name.startswith("_")
            and not isinstance(value, ModuleType)
            and name not in helpers
        }
        | refundkit._LAZY
        | {"__version__"}
    )
    assert set(refundkit.__all__) == public
    for name in refundkit.__all__:
        assert getattr(refundkit, name) is not None

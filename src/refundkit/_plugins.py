"""The kit's own plugin manager (never a module global), which fills its gateway registry."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import pluggy

from . import hookspecs
from ._errors import PluginError
from ._registry import GatewayRegistry
from .hookspecs import PolicyRule

log = logging.getLogger("refundkit.plugins")

ENTRY_POINT_GROUP = "refundkit"
#: Comma-separated plugin names to block (entry-point names, e.g. "stripe,adyen").
DISABLED_ENV = "REFUNDKIT_DISABLED_PLUGINS"
#: Set to 1 to load no plugin from entry points (only built-ins and explicit ones).
NO_AUTOLOAD_ENV = "REFUNDKIT_DISABLE_PLUGIN_AUTOLOAD"

_BUILTIN_PLUGINS = ("refundkit.gateways.sandbox",)


def _env_names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


class PluginManager:
    """A typed facade over ``pluggy.PluginManager``: one forwarding method per hook."""

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        plugins: Iterable[object] = (),
        disabled: Sequence[str] | None = None,
    ) -> None:
        pm = pluggy.PluginManager("refundkit")
        pm.add_hookspecs(hookspecs)
        for name in _env_names(os.environ.get(DISABLED_ENV)) + list(disabled or ()):
            pm.set_blocked(name)
        if autoload is None:
            autoload = not os.environ.get(NO_AUTOLOAD_ENV)
        if autoload:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        for modname in _BUILTIN_PLUGINS:
            if not pm.is_blocked(modname.rsplit(".", 1)[-1]):
                pm.register(importlib.import_module(modname), name=modname.rsplit(".", 1)[-1])
        for plugin in plugins:
            pm.register(plugin)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc
        self._pm = pm
        self.gateways = GatewayRegistry()
        # Historic: a plugin registered later still announces its gateways to this registry.
        pm.hook.refundkit_register_gateways.call_historic(kwargs={"register": self.gateways})

    @property
    def pluggy(self) -> pluggy.PluginManager:
        return self._pm

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register one more plugin; its gateways join the registry at once (historic hook)."""
        try:
            self._pm.register(plugin, name=name)
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {plugin!r} is not valid: {exc}") from exc

    def policy_rules(self) -> list[PolicyRule]:
        rules: list[PolicyRule] = []
        for batch in self._pm.hook.refundkit_policy_rules():
            rules.extend(batch)
        return rules

    def has_event_listeners(self) -> bool:
        return bool(self._pm.hook.refundkit_on_event.get_hookimpls())

    def on_event(self, event: dict[str, Any]) -> None:
        self._pm.hook.refundkit_on_event(event=event)

    def plugin_names(self) -> list[str]:
        return sorted(name for name, plugin in self._pm.list_name_plugin() if plugin is not None)

    def distinfo(self) -> list[tuple[str, str, str]]:
        """(plugin name, distribution, version) for plugins loaded from entry points."""
        return [
            (self._pm.get_name(plugin) or "?", dist.project_name, dist.version)
            for plugin, dist in self._pm.list_plugin_distinfo()
        ]

"""The gateway registry: gateway classes by name, filled through the register hook.

It belongs with the plugin types in ``_gateway``: the plugin manager (``_plugins``) only makes
one per kit and hands it to ``refundkit_register_gateways``.
"""

from __future__ import annotations

from collections.abc import Iterator

from ._errors import PluginError, UnknownGateway
from ._gateway import Gateway


class GatewayRegistry:
    """Gateway classes by name. Call it (or ``add``) with a ``Gateway`` subclass."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Gateway]] = {}

    def __call__(self, gateway_class: type[Gateway]) -> None:
        self.add(gateway_class)

    def add(self, gateway_class: type[Gateway]) -> None:
        if not (isinstance(gateway_class, type) and issubclass(gateway_class, Gateway)):
            raise PluginError(f"{gateway_class!r} is not a refundkit.Gateway subclass")
        name = getattr(gateway_class, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{gateway_class.__name__} has no gateway name")
        existing = self._classes.get(name)
        if existing is not None and existing is not gateway_class:
            raise PluginError(
                f"two gateways are named {name!r}: {existing.__module__}.{existing.__qualname__}"
                f" and {gateway_class.__module__}.{gateway_class.__qualname__}"
            )
        self._classes[name] = gateway_class

    def get(self, name: str) -> type[Gateway]:
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            raise UnknownGateway(
                f"no gateway named {name!r} is installed (installed: {known})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._classes))

    def __len__(self) -> int:
        return len(self._classes)

"""The configuration file: one TOML document for the CLI, the deliverer and the dashboard.

Sections (each optional)::

    [gateways.stripe]            # passed to the gateway as its config mapping
    api_key = "env:REFUNDKIT_STRIPE_API_KEY"

    [[webhooks.endpoints]]       # outgoing signed webhooks (docs/webhooks.md)
    url = "https://billing.example.com/hooks/refunds"
    secret = "env:REFUNDKIT_WEBHOOK_SECRET"
    events = ["charge.refunded", "refund.failed"]

    [dashboard]                  # the admin dashboard (docs/dashboard.md)
    [[dashboard.users]]

A string value ``"env:NAME"`` is read from the environment variable ``NAME`` when the section is
asked for, so secrets need not sit in the file. Where the file is: ``--config``, else
``REFUNDKIT_CONFIG``, else ``./refundkit.toml`` if it exists; otherwise the configuration is
empty.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ._errors import ConfigurationError

CONFIG_ENV: Final = "REFUNDKIT_CONFIG"
DEFAULT_CONFIG: Final = "refundkit.toml"
_ENV_PREFIX: Final = "env:"
#: How deeply a configuration file may nest tables and arrays (refundkit's own go 3 deep).
MAX_DEPTH: Final = 32


@attrs.frozen
class Config:
    """A parsed configuration file (or the empty one)."""

    data: Mapping[str, Any] = attrs.field(factory=dict)
    path: Path | None = None

    def section(self, *keys: str) -> Any:
        """The value at ``keys`` (e.g. ``("gateways", "stripe")``), ``env:`` references
        resolved; an empty mapping when it is absent."""
        value: Any = self.data
        for i, key in enumerate(keys):
            if not isinstance(value, Mapping):
                where = ".".join(keys[:i])
                raise ConfigurationError(f"{self._where()}: [{where}] is not a table")
            value = value.get(key, {})
        return _resolve(value, ".".join(keys), self._where())

    def _where(self) -> str:
        return str(self.path) if self.path else "the configuration"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the configuration file; a missing explicit file or bad TOML is a ConfigurationError."""
    explicit = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if explicit is None:
        default = Path(DEFAULT_CONFIG)
        if not default.is_file():
            return Config()
        explicit = default
    file = Path(explicit)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the configuration file {file}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{file} is not a TOML file: it is not UTF-8 text") from None
    return Config(_parse(text, file), file)


def _parse(text: str, file: Path) -> dict[str, Any]:
    """The TOML document, nested at most ``MAX_DEPTH`` tables or arrays deep."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file} is not valid TOML: {exc}") from None
    except RecursionError:
        data = None
    if data is None or _depth(data) > MAX_DEPTH:
        raise ConfigurationError(
            f"{file} nests tables or arrays more than {MAX_DEPTH} deep (refundkit reads none)"
        )
    return data


def _depth(value: Any) -> int:
    """How deeply tables and arrays nest in ``value`` (without recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, Mapping) else item
        if isinstance(item, Mapping | list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                break
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _resolve(value: Any, where: str, source: str) -> Any:
    if isinstance(value, str) and value.startswith(_ENV_PREFIX):
        name = value[len(_ENV_PREFIX) :]
        if name not in os.environ:
            raise ConfigurationError(
                f"{source}: {where} refers to the environment variable {name}, which is not set"
            )
        return os.environ[name]
    if isinstance(value, Mapping):
        return {k: _resolve(v, f"{where}.{k}", source) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    return value

"""Gateway plugins use refundkit only through its public names.

A plugin is its own distribution: a private module it imports (``refundkit._errors``...) may be
renamed or split in any refundkit release and break it. Its tests may reach further in.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = sorted(ROOT.glob("plugins/*/src/**/*.py"))


def _private(module: str) -> bool:
    """True for ``refundkit._x`` and anything below a private part (``refundkit.a._b``)."""
    top, *rest = module.split(".")
    return top == "refundkit" and any(part.startswith("_") for part in rest)


def private_imports(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for each import of a private refundkit module in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [alias.name for alias in node.names]
            if _private(node.module):
                yield node.lineno, f"from {node.module} import {', '.join(names)}"
            elif node.module.split(".")[0] == "refundkit":
                # ``from refundkit import _errors`` imports the module itself; dunders
                # (``__version__``) are public.
                for name in names:
                    if name.startswith("_") and not name.startswith("__"):
                        yield node.lineno, f"from {node.module} import {name}"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import refundkit._pans", ["import refundkit._pans"]),
        ("import refundkit._pans as p", ["import refundkit._pans"]),
        (
            "from refundkit._errors import RefundkitError",
            ["from refundkit._errors import RefundkitError"],
        ),
        ("from refundkit import _gateway", ["from refundkit import _gateway"]),
        (
            "from refundkit.gateways.sandbox._books import enable_wal",
            ["from refundkit.gateways.sandbox._books import enable_wal"],
        ),
        (
            "if TYPE_CHECKING:\n    from refundkit._plugins import GatewayRegistry",
            ["from refundkit._plugins import GatewayRegistry"],
        ),
        ("import refundkit\nfrom refundkit import Money, __version__, find_pans", []),
        ("from refundkit.gateways.sandbox import SandboxGateway", []),
        ("from ._errors import x\nimport refundkit_stripe._gateway", []),
    ],
)
def test_the_scan_sees_every_form_of_private_import(source: str, found: list[str]) -> None:
    assert [what for _, what in private_imports(source)] == found


def test_plugins_import_no_private_refundkit_module() -> None:
    assert PLUGIN_SOURCES, "no plugin sources found under plugins/*/src"
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in PLUGIN_SOURCES
        for line, what in private_imports(path.read_text(encoding="utf-8"))
    ]
    assert not offences, "plugins must import only public refundkit names:\n" + "\n".join(offences)

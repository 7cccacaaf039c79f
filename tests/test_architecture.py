"""The shape the code keeps (issue 13, docs/architecture.md): no runtime import cycle, small
modules and functions, and an error tree drawn in ``_errors``' docstring that matches the
classes. The layers themselves are checked by ``lint-imports`` (pyproject.toml) in CI."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp

import refundkit._errors as errors

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("refundkit", "refundkit_stripe", "refundkit_braintree", "refundkit_adyen")
#: Migrations restate the schema of their day; testing/ is the plugin authors' kit.
UNLIMITED = ("/migrations/", "/testing/")


def _sources() -> Iterator[Path]:
    for root in [ROOT / "src", *sorted((ROOT / "plugins").glob("*/src"))]:
        yield from sorted(root.rglob("*.py"))


def _imported_by(graph: grimp.ImportGraph, module: str) -> Iterator[str]:
    return iter(sorted(graph.find_modules_directly_imported_by(module)))


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, _imported_by(graph, start))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, _imported_by(graph, child)))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_runtime_import_cycle() -> None:
    """Imports inside functions count (they run); imports only for type checking do not."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    assert _cycles(graph) == []
    graph.add_import(importer="c", imported="a")
    assert _cycles(graph) == [["a", "b", "c"]]


def test_modules_and_functions_stay_small() -> None:
    """No module over 700 lines and no function over 60, outside migrations and testing/."""
    too_big = []
    for path in _sources():
        name = str(path.relative_to(ROOT))
        if any(part in f"/{name}" for part in UNLIMITED):
            continue
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 700:
            too_big.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_big.append(f"{name}:{node.lineno} {node.name}() is {length} lines")
    assert too_big == []


_TREE_LINE = re.compile(r"^    (?P<indent>[│├└─ ]*)(?P<name>\w+)  \((?P<code>\w+)\)")


def _drawn_tree() -> dict[str, tuple[str | None, str]]:
    """Each class the docstring draws: (its parent in the drawing, its code)."""
    drawn: dict[str, tuple[str | None, str]] = {}
    parents: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        m = _TREE_LINE.match(line)
        if m is None:
            continue
        depth = len(m["indent"]) // 4
        del parents[depth:]
        drawn[m["name"]] = (parents[-1] if parents else None, m["code"])
        parents.append(m["name"])
    return drawn


def test_the_error_tree_in_the_docstring_is_the_class_tree() -> None:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.RefundkitError)
    }
    actual = {
        name: (
            None if cls is errors.RefundkitError else cls.__bases__[0].__name__,
            cls.code,
        )
        for name, cls in classes.items()
    }
    assert _drawn_tree() == actual


def test_every_module_of_refundkit_sits_in_a_layer() -> None:
    """A new module must be placed in the layers contract, or nothing checks its imports."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(
        c for c in config["tool"]["importlinter"]["contracts"] if c["containers"] == ["refundkit"]
    )
    placed = {name.strip() for layer in contract["layers"] for name in re.split("[|:]", layer)}
    package = ROOT / "src" / "refundkit"
    modules = {
        p.stem if p.is_file() else p.name
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert modules == placed


def test_the_architecture_page_names_every_module_and_only_real_ones() -> None:
    """docs/architecture.md matches the code: each top-level module of refundkit and each
    service of ``_engine`` is named there, and every module path it names exists."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Za-z_][\w/]*(?:\.py|/))`", page))
    package = ROOT / "src" / "refundkit"
    missing_on_disk = sorted(
        n
        for n in named
        if not any(
            (base / n.rstrip("/")).exists()
            for base in (ROOT, package, package / "_engine", package / "_store",
                         package / "cli", package / "gateways" / "sandbox")
        )
    )  # fmt: skip
    assert missing_on_disk == []
    wanted = {
        p.name + ("/" if p.is_dir() else "")
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    } | {p.name for p in (package / "_engine").glob("*.py") if p.stem != "__init__"}
    assert sorted(wanted - named) == []

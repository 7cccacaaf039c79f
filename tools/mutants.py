"""The mutants of a module: each operator of tools/mutate.py as a change to its syntax tree.

``mutants(target)`` walks the module's tree in a fixed order and lists every change the
operators make (docs/testing.md has the table), each with a stable id (``module.py::scope:
before -> after``), the line it is on, and the whole mutated module as ``ast.unparse`` writes
it. Two changes that give the same code are listed once. Nothing here runs anything.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "refundkit"


@dataclass(frozen=True)
class Target:
    """A module of the pure core and the tests that are its own."""

    module: str
    tests: tuple[str, ...]
    #: Mutate only these module-level names (None: the whole module).
    only: frozenset[str] | None = None

    def test_files(self) -> list[str]:
        """The tests that exist (a module may be mutated before all its test files are)."""
        found = [t for t in self.tests if (ROOT / t).is_file()]
        if not found:
            raise SystemExit(f"{self.module}: none of its tests exist: {' '.join(self.tests)}")
        return found


_COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_ARITH_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Pow: ast.Mult,
}
_BOOL_SWAP: dict[type[ast.boolop], type[ast.boolop]] = {ast.And: ast.Or, ast.Or: ast.And}
#: Statements that "→ pass" does not apply to: an ``if`` has its own mutants, a nested def or
#: class is not behaviour by itself, an ``assert`` only narrows types for mypy here.
_NOT_REMOVED = (ast.If, ast.Pass, ast.FunctionDef, ast.ClassDef, ast.Assert, ast.Import,
                ast.ImportFrom, ast.Global, ast.Nonlocal)  # fmt: skip

#: What a module-level table is made of: literals, and calls such as ``frozenset({...})``.
_TABLE_NODES = (ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Call, ast.Name, ast.Attribute,
                ast.Constant)  # fmt: skip

Path_ = tuple[tuple[str, int | None], ...]


@dataclass(frozen=True)
class Site:
    """Where a mutant applies (a path of fields from the module node) and what it does."""

    path: Path_
    action: str  # see _apply
    arg: object = None


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # 1-based, in the module's deterministic order
    line: int
    scope: str  # "Money.min", "<module>"
    operator: str
    before: str
    after: str
    ident: str
    source: str = field(repr=False)  # the whole mutated module


def _child(node: ast.AST, step: tuple[str, int | None]) -> ast.AST:
    name, index = step
    value = getattr(node, name)
    return value if index is None else value[index]  # type: ignore[no-any-return]


def _node_at(tree: ast.AST, path: Path_) -> ast.AST:
    node = tree
    for step in path:
        node = _child(node, step)
    return node


def _children(node: ast.AST) -> Iterator[tuple[tuple[str, int | None], ast.AST]]:
    """Child nodes in field order; annotations, decorators and f-strings are left out."""
    if isinstance(node, ast.JoinedStr):
        return  # a message: its text is not behaviour worth a mutant
    for name, value in ast.iter_fields(node):
        if name in ("annotation", "returns", "decorator_list", "type_comment"):
            continue
        if isinstance(value, ast.AST):
            yield (name, None), value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield (name, i), item


@dataclass
class _Walk:
    """The walk over one module: each node with its path, scope and whether it is in a body."""

    target: Target
    sites: list[tuple[Site, str, str]] = field(default_factory=list)  # site, scope, operator

    def module(self, tree: ast.Module) -> None:
        for i, stmt in enumerate(tree.body):
            if self.target.only is not None and not (_assigned(stmt) & self.target.only):
                continue
            self.visit(stmt, (("body", i),), "<module>", in_function=False)

    def visit(self, node: ast.AST, path: Path_, scope: str, *, in_function: bool) -> None:
        if _is_docstring(node):
            return
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            scope = node.name if scope == "<module>" else f"{scope}.{node.name}"
            in_function = isinstance(node, ast.FunctionDef)
        elif in_function and isinstance(node, ast.stmt) and not isinstance(node, _NOT_REMOVED):
            self.add(Site(path, "pass"), scope, "statement")
        if not in_function and scope == "<module>" and isinstance(node, ast.Assign | ast.AnnAssign):
            scope = ", ".join(sorted(_assigned(node))) or scope
            self.tables(node, path, scope)
        self.expression(node, path, scope)
        for step, child in _children(node):
            self.visit(child, (*path, step), scope, in_function=in_function)

    def add(self, site: Site, scope: str, operator: str) -> None:
        self.sites.append((site, scope, operator))

    def expression(self, node: ast.AST, path: Path_, scope: str) -> None:
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAP:
                    self.add(Site(path, "compare", i), scope, "comparison")
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _ARITH_SWAP:
            if not _is_text(node):
                self.add(Site(path, "arith"), scope, "arithmetic")
        elif isinstance(node, ast.BoolOp):
            self.add(Site(path, "boolop"), scope, "boolean")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            if not isinstance(node.operand, ast.Constant):
                self.add(Site(path, "unary"), scope, "boolean" if isinstance(node.op, ast.Not)
                         else "arithmetic")  # fmt: skip
        elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            self.add(Site(path, "constant"), scope, "constant")
        elif isinstance(node, ast.If | ast.IfExp):
            self.conditions(node, path, scope)

    def conditions(self, node: ast.If | ast.IfExp, path: Path_, scope: str) -> None:
        self.add(Site(path, "test", True), scope, "if")
        if isinstance(node, ast.IfExp) or node.orelse:
            self.add(Site(path, "test", False), scope, "if")
        if isinstance(node, ast.If):
            self.add(Site(path, "body"), scope, "if")
            if node.orelse:
                self.add(Site(path, "orelse"), scope, "if")

    def tables(self, node: ast.Assign | ast.AnnAssign, path: Path_, scope: str) -> None:
        """Each entry of a module-level tuple, list, set or dict (a rule list, a status table)."""
        if node.value is None:
            return
        stack: list[tuple[ast.AST, Path_, str]] = [(node.value, (*path, ("value", None)), scope)]
        while stack:
            current, at, name = stack.pop(0)
            if not isinstance(current, _TABLE_NODES):
                continue  # a type alias or an expression is not a table
            if isinstance(current, ast.Tuple | ast.List | ast.Set):
                for i in range(len(current.elts)):
                    self.add(Site(at, "drop", i), name, "table entry")
            elif isinstance(current, ast.Dict):
                for i in range(len(current.keys)):
                    self.add(Site(at, "drop_key", i), name, "table entry")
            for step, child in _children(current):
                label = name
                if isinstance(current, ast.Dict) and step[0] == "values" and step[1] is not None:
                    key = current.keys[step[1]]
                    label = f"{name}[{ast.unparse(key)}]" if key is not None else name
                stack.append((child, (*at, step), label))


def _assigned(stmt: ast.stmt) -> set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_text(node: ast.BinOp | ast.AugAssign) -> bool:
    """String concatenation: ``-`` there is a TypeError, not a plausible slip."""
    sides = [node.left, node.right] if isinstance(node, ast.BinOp) else [node.value]
    return any(
        isinstance(side, ast.JoinedStr)
        or (isinstance(side, ast.Constant) and isinstance(side.value, str))
        for side in sides
    )


def _apply(tree: ast.Module, site: Site) -> None:
    """Change ``tree`` in place as ``site`` says."""
    node = _node_at(tree, site.path)
    if site.action == "pass":
        parent = _node_at(tree, site.path[:-1])
        name, index = site.path[-1]
        getattr(parent, name)[index] = ast.Pass()
    elif site.action == "compare":
        assert isinstance(node, ast.Compare)
        assert isinstance(site.arg, int)
        node.ops[site.arg] = _COMPARE_SWAP[type(node.ops[site.arg])]()
    elif site.action == "arith":
        assert isinstance(node, ast.BinOp | ast.AugAssign)
        node.op = _ARITH_SWAP[type(node.op)]()
    elif site.action == "boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = _BOOL_SWAP[type(node.op)]()
    else:
        _apply_more(tree, node, site)


def _apply_more(tree: ast.Module, node: ast.AST, site: Site) -> None:
    if site.action == "unary":
        assert isinstance(node, ast.UnaryOp)
        parent = _node_at(tree, site.path[:-1])
        name, index = site.path[-1]
        if index is None:
            setattr(parent, name, node.operand)
        else:
            getattr(parent, name)[index] = node.operand
    elif site.action == "constant":
        assert isinstance(node, ast.Constant)
        value = node.value
        if isinstance(value, bool):
            node.value = not value
        else:
            assert isinstance(value, int)
            node.value = 1 if value == 0 else 0 if value == 1 else value + 1
    elif site.action == "test":
        assert isinstance(node, ast.If | ast.IfExp)
        node.test = ast.Constant(bool(site.arg))
    elif site.action in ("body", "orelse"):
        assert isinstance(node, ast.If)
        setattr(node, site.action, [ast.Pass()])
    elif site.action == "drop":
        assert isinstance(node, ast.Tuple | ast.List | ast.Set)
        assert isinstance(site.arg, int)
        del node.elts[site.arg]
    elif site.action == "drop_key":
        assert isinstance(node, ast.Dict)
        assert isinstance(site.arg, int)
        del node.keys[site.arg], node.values[site.arg]
    else:
        raise ValueError(f"unknown action {site.action!r}")


def _shown(node: ast.AST, site: Site) -> str:
    """One line that shows the mutated node (an ``if`` by its header only)."""
    if isinstance(node, ast.If):
        text = f"if {ast.unparse(node.test)}:"
        if site.action == "body":
            text += " <body>"
        elif site.action == "orelse":
            text += " ... else: <else>"
        return text
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= 90 else text[:87] + "..."


def _describe(original: ast.Module, mutated: ast.Module, site: Site) -> tuple[str, str]:
    before_node = _node_at(original, site.path)
    after_node = _node_at(mutated, site.path)
    if site.action == "constant" and site.path:
        parent = _node_at(original, site.path[:-1])
        if isinstance(parent, ast.expr):  # show the constant in its expression: "-1 -> -0"
            return _shown(parent, site), _shown(_node_at(mutated, site.path[:-1]), site)
    if site.action == "drop":
        assert isinstance(before_node, ast.Tuple | ast.List | ast.Set)
        assert isinstance(site.arg, int)
        return _shown(before_node.elts[site.arg], site), "(entry removed)"
    if site.action == "drop_key":
        assert isinstance(before_node, ast.Dict)
        assert isinstance(site.arg, int)
        key, value = before_node.keys[site.arg], before_node.values[site.arg]
        entry = f"{ast.unparse(key) if key else '**'}: {ast.unparse(value)}"
        return _shown(ast.Name(entry), site), "(entry removed)"
    before = _shown(before_node, site)
    if site.action == "pass":
        return before, "pass"
    if site.action == "body":
        return before, before.replace("<body>", "pass")
    if site.action == "orelse":
        return before, before.replace("<else>", "pass")
    if site.action == "unary":
        assert isinstance(before_node, ast.UnaryOp)
        return before, _shown(before_node.operand, site)
    return before, _shown(after_node, site)


def _statements(text: str) -> tuple[ast.Module, list[str]]:
    """The module's tree and each top-level statement as ``ast.unparse`` writes it."""
    tree = ast.parse(text)
    return tree, [ast.unparse(stmt) for stmt in tree.body]


def _join(parts: Sequence[str]) -> str:
    return "\n\n".join(parts) + "\n"


def _mutated(original: ast.Module, site: Site) -> tuple[ast.Module, ast.Module, Site]:
    """The top-level statement ``site`` is in, alone, before and after the change (copying
    one statement, not the module, keeps listing hundreds of mutants quick)."""
    name, index = site.path[0]
    assert name == "body"
    assert index is not None
    local = Site((("body", 0), *site.path[1:]), site.action, site.arg)
    before = ast.Module(body=[original.body[index]], type_ignores=[])
    after = ast.Module(body=[copy.deepcopy(original.body[index])], type_ignores=[])
    _apply(after, local)
    return before, ast.fix_missing_locations(after), local


def mutants(target: Target, source: str | None = None) -> list[Mutant]:
    """Every mutant of ``target``'s module, in a fixed order; no two give the same code."""
    text = (
        (PACKAGE / f"{target.module}.py").read_text(encoding="utf-8") if source is None else source
    )
    original, parts = _statements(text)
    walk = _Walk(target)
    walk.module(original)
    seen: set[tuple[int, str]] = set()
    found: list[Mutant] = []
    idents: dict[str, int] = {}
    for site, scope, operator in walk.sites:
        before_tree, tree, local = _mutated(original, site)
        index = site.path[0][1]
        assert index is not None
        part = ast.unparse(tree)
        if part == parts[index] or (index, part) in seen:
            continue  # no change, or the same change as an earlier mutant
        seen.add((index, part))
        before, after = _describe(before_tree, tree, local)
        ident = f"{target.module}.py::{scope}: {before} -> {after}"
        idents[ident] = idents.get(ident, 0) + 1
        if idents[ident] > 1:
            ident += f" #{idents[ident]}"
        line = getattr(_node_at(original, site.path), "lineno", 0)
        code = _join([*parts[:index], part, *parts[index + 1 :]])
        found.append(
            Mutant(target.module, len(found) + 1, line, scope, operator, before, after, ident, code)
        )
    return found


def original_source(target: Target) -> str:
    """The module as the mutants are written (through ``ast.unparse``), unchanged."""
    return _join(_statements((PACKAGE / f"{target.module}.py").read_text(encoding="utf-8"))[1])

"""Mutation testing of refundkit's pure core: do its tests fail when its code is wrong?

    nice -n 19 python3 -m uv run --locked python tools/mutate.py            # every module
    nice -n 19 python3 -m uv run --locked python tools/mutate.py -m _policy # one module
    python3 -m uv run --locked python tools/mutate.py --list -m _ledger     # the mutants only
    python3 -m uv run --locked python tools/mutate.py --show _ledger:3      # one mutant's diff

Each mutant is one small change to one module (``MUTATORS`` below: a comparison, an
arithmetic or boolean operator, a constant, a statement, an ``if``, an entry of a module-level
table). The module's own tests (``TARGETS``) run against it; the mutant is *killed* when they
fail (or time out) and *survives* when they pass. Survivors that cannot change behaviour are
listed in ``EQUIVALENT`` with the reason, and reported apart. docs/testing.md says more.

How: ``src/refundkit`` is copied to a temporary directory per worker, the mutated module is
written into the copy (``ast.unparse`` of the changed tree), and pytest runs the module's tests
in a process forked from this one with the copy first on ``sys.path``. The third-party imports
are done once, before forking, and refundkit itself never is, so each run costs only the tests.
The same source always gives the same mutants, in the same order, with the same ids.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import difflib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
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


TARGETS: tuple[Target, ...] = (
    Target("_money", ("tests/test_money.py",)),
    Target("_policy", ("tests/test_policy_rules.py", "tests/test_policy.py")),
    Target("_planner", ("tests/test_planner.py",)),
    Target("_ledger", ("tests/test_ledger.py", "tests/test_accounting.py")),
    Target(
        "_model",
        ("tests/test_transitions.py", "tests/test_model.py"),
        only=frozenset({"TRANSITIONS", "IN_FLIGHT_STATUSES"}),
    ),
)

#: Mutants that cannot change behaviour, by id (``--list`` prints ids), with the reason.
#: docs/testing.md lists the same ones; tests/test_mutation_tool.py keeps the two in step.
EQUIVALENT: dict[str, str] = {}

# --- the mutants -------------------------------------------------------------------------------

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


# --- running -----------------------------------------------------------------------------------

#: Imported once, before any fork, so a mutant's run does not pay for them; never refundkit.
_PRELOAD = ("pytest", "hypothesis", "sqlalchemy", "attrs", "pluggy", "alembic", "click", "rich",
            "httpx", "standardwebhooks", "starlette", "jinja2", "argon2", "iso4217")  # fmt: skip


def preload() -> None:
    for name in _PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    if any(name == "refundkit" or name.startswith("refundkit.") for name in sys.modules):
        raise RuntimeError("refundkit was imported before forking: the mutants would not load")


@dataclass
class Slot:
    """A worker's copy of the package; at most one mutant is written into it at a time."""

    directory: Path
    pid: int = 0
    started: float = 0.0
    mutant: Mutant | None = None
    module: str = ""

    def write(self, module: str, source: str) -> None:
        self.restore()
        (self.directory / "refundkit" / f"{module}.py").write_text(source, encoding="utf-8")
        self.module = module

    def restore(self) -> None:
        if self.module:
            shutil.copyfile(
                PACKAGE / f"{self.module}.py", self.directory / "refundkit" / f"{self.module}.py"
            )
            self.module = ""


def _run_child(slot: Slot, tests: Sequence[str], quiet: bool) -> None:
    """In the forked child: pytest on ``tests`` with the slot's copy of refundkit first."""
    os.setpgid(0, 0)
    if quiet:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    sys.dont_write_bytecode = True  # a stale .pyc of another mutant of the same size must not load
    os.chdir(ROOT)
    os.environ.pop("REFUNDKIT_TEST_POSTGRES_URL", None)  # SQLite only: no shared database
    sys.path.insert(0, str(slot.directory))
    import refundkit

    if not str(refundkit.__file__).startswith(str(slot.directory)):
        print(f"refundkit was imported from {refundkit.__file__}, not the mutant's copy")
        os._exit(71)
    import pytest
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "mutation", database=None, derandomize=True, deadline=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    settings.load_profile("mutation")
    code = pytest.main([*tests, "-x", "-q", "-p", "no:cacheprovider", "--assert=plain"])
    os._exit(int(code))


def start(slot: Slot, tests: Sequence[str], *, quiet: bool = True) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            _run_child(slot, tests, quiet)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(70)
    slot.pid, slot.started = pid, time.monotonic()


def outcome(status: int) -> str:
    """pytest's exit code: 0 passed (survived), 1 failed, 2 interrupted (e.g. the mutant does
    not import), 3 internal error, 4 usage error (a conftest that does not import), 5 no tests;
    70 and 71 are the harness's own (it failed; refundkit was not the mutant's copy)."""
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "survived"
    if code in (5, 70, 71):  # no tests; the harness failed; refundkit was not the copy
        return "error"
    return "killed"


def kill(slot: Slot) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(slot.pid, signal.SIGKILL)
    os.waitpid(slot.pid, 0)


@dataclass
class Result:
    mutant: Mutant
    status: str  # killed, timeout, survived, equivalent, error

    @property
    def caught(self) -> bool:
        return self.status in ("killed", "timeout")


_MARK = {"killed": ".", "timeout": "T", "survived": "S", "equivalent": "e", "error": "!"}


def _finish(slot: Slot, status: str, results: list[Result]) -> None:
    assert slot.mutant is not None
    if status == "survived" and slot.mutant.ident in EQUIVALENT:
        status = "equivalent"
    results.append(Result(slot.mutant, status))
    print(_MARK[status], end="", flush=True)
    slot.pid, slot.mutant = 0, None


def _poll(slot: Slot, timeout: float, results: list[Result]) -> None:
    pid, status = os.waitpid(slot.pid, os.WNOHANG)
    if pid:
        _finish(slot, outcome(status), results)
    elif time.monotonic() - slot.started > timeout:
        kill(slot)
        _finish(slot, "timeout", results)


def run_mutants(target: Target, todo: Sequence[Mutant], slots: Sequence[Slot],
                timeout: float) -> list[Result]:  # fmt: skip
    """Run ``target``'s tests against each mutant, ``len(slots)`` at a time."""
    queue = list(todo)
    results: list[Result] = []
    while queue or any(slot.pid for slot in slots):
        for slot in slots:
            if not slot.pid and queue:
                slot.mutant = queue.pop(0)
                slot.write(target.module, slot.mutant.source)
                start(slot, target.test_files())
        time.sleep(0.05)
        for slot in slots:
            if slot.pid:
                _poll(slot, timeout, results)
    for slot in slots:
        slot.restore()
    print()
    return sorted(results, key=lambda r: r.mutant.index)


def baseline(target: Target, slot: Slot, verbose: bool) -> float:
    """Run the unmutated module (as the mutants are written) once: the tests must pass."""
    slot.write(target.module, original_source(target))
    start(slot, target.test_files(), quiet=not verbose)
    _, status = os.waitpid(slot.pid, 0)
    elapsed = time.monotonic() - slot.started
    slot.pid = 0
    slot.restore()
    if outcome(status) != "survived":
        raise SystemExit(
            f"{target.module}: its tests fail without any mutant "
            f"({' '.join(target.test_files())}); "
            "run them with --verbose to see why"
        )
    return elapsed


# --- the report --------------------------------------------------------------------------------


def _where(m: Mutant) -> str:
    return f"src/refundkit/{m.module}.py:{m.line}"


def score(results: Sequence[Result]) -> tuple[float, float]:
    """Killed share of all mutants, and of those not known to be equivalent (in %)."""
    caught = sum(r.caught for r in results)
    equivalent = sum(r.status == "equivalent" for r in results)
    total = len(results)
    return (
        100.0 * caught / total if total else 100.0,
        100.0 * caught / (total - equivalent) if total > equivalent else 100.0,
    )


def summary_table(by_module: dict[str, list[Result]]) -> list[str]:
    lines = [
        f"{'module':<10}{'mutants':>8}{'killed':>8}{'timeout':>8}{'equiv.':>8}{'survived':>9}"
        f"{'error':>6}{'score':>8}{'w/o equiv.':>12}"
    ]
    for module, results in by_module.items():
        count = {s: sum(r.status == s for r in results) for s in _MARK}
        raw, adjusted = score(results)
        lines.append(
            f"{module:<10}{len(results):>8}{count['killed']:>8}{count['timeout']:>8}"
            f"{count['equivalent']:>8}{count['survived']:>9}{count['error']:>6}"
            f"{raw:>7.1f}%{adjusted:>11.1f}%"
        )
    return lines


def report(by_module: dict[str, list[Result]]) -> list[str]:
    lines = ["", *summary_table(by_module)]
    results = [r for rs in by_module.values() for r in rs]
    for title, status in (("Survived", "survived"), ("Equivalent (survived, known)", "equivalent"),
                          ("Harness errors", "error")):  # fmt: skip
        chosen = [r.mutant for r in results if r.status == status]
        if chosen:
            lines += ["", f"{title}: {len(chosen)}"]
            for m in chosen:
                lines.append(f"  {_where(m)}  [{m.module}:{m.index} {m.operator}] in {m.scope}")
                lines.append(f"      {m.before}")
                lines.append(f"   -> {m.after}")
                if status == "equivalent":
                    lines.append(f"      why: {EQUIVALENT[m.ident]}")
    listed_but_killed = [r.mutant for r in results if r.caught and r.mutant.ident in EQUIVALENT]
    for m in listed_but_killed:
        lines.append(f"NOTE: {m.ident!r} is listed as equivalent but the tests kill it")
    return lines


# --- command line ------------------------------------------------------------------------------


def _targets(names: Sequence[str] | None) -> list[Target]:
    return [t for t in TARGETS if not names or t.module in names]


def _sample(found: list[Mutant], size: int | None, seed: int) -> list[Mutant]:
    if size is None or size >= len(found):
        return found
    return sorted(random.Random(seed).sample(found, size), key=lambda m: m.index)


def show(spec: str) -> str:
    """``MODULE:INDEX``: the mutant's unified diff against the module (both via ast.unparse)."""
    module, _, index = spec.partition(":")
    [target] = _targets([module])
    mutant = mutants(target)[int(index) - 1]
    diff = difflib.unified_diff(
        original_source(target).splitlines(), mutant.source.splitlines(),
        f"{module}.py", f"{module}.py ({mutant.operator}: {mutant.ident})", lineterm="", n=2,
    )  # fmt: skip
    return "\n".join(diff)


def listing(targets: Sequence[Target]) -> list[str]:
    lines = []
    for target in targets:
        for m in mutants(target):
            mark = "  (equivalent)" if m.ident in EQUIVALENT else ""
            lines.append(f"{m.module}:{m.index}\t{_where(m)}\t{m.operator}\t{m.ident}{mark}")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("-m", "--module", action="append", choices=[t.module for t in TARGETS],
                   help="only this module (repeatable); default: every module")  # fmt: skip
    p.add_argument("-j", "--jobs", type=int, default=2, help="tests run at once (default 2)")
    p.add_argument("--sample", type=int, help="run only this many mutants per module")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    p.add_argument("--fail-under", type=float, default=95.0,
                   help="exit 1 when a module's score is below this %% (default 95)")  # fmt: skip
    p.add_argument("--list", action="store_true", help="print the mutants and their ids only")
    p.add_argument("--show", metavar="MODULE:INDEX", help="print one mutant's diff")
    p.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    preload()
    by_module: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="refundkit-mutants-") as tmp:
        slots = []
        for k in range(max(1, args.jobs)):
            directory = Path(tmp) / f"slot{k}"
            shutil.copytree(PACKAGE, directory / "refundkit",
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
            slots.append(Slot(directory))
        for target in _targets(args.module):
            todo = _sample(mutants(target), args.sample, args.seed)
            took = baseline(target, slots[0], args.verbose)
            print(f"{target.module}: {len(todo)} mutants, tests take {took:.1f}s: ", end="")
            by_module[target.module] = run_mutants(target, todo, slots, max(60.0, 10 * took))
    print("\n".join(report(by_module)))
    failing = [m for m, rs in by_module.items() if score(rs)[0] < args.fail_under]
    errors = any(r.status == "error" for rs in by_module.values() for r in rs)
    return 1 if failing or errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        print(show(args.show))
        return 0
    if args.list:
        print("\n".join(listing(_targets(args.module))))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

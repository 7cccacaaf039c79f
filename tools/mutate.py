"""Mutation testing of refundkit's pure core: do its tests fail when its code is wrong?

    nice -n 19 python3 -m uv run --locked python -m tools.mutate             # every module
    nice -n 19 python3 -m uv run --locked python -m tools.mutate -m _policy  # one module
    python3 -m uv run --locked python -m tools.mutate --list -m _ledger      # the mutants only
    python3 -m uv run --locked python -m tools.mutate --show _ledger:3       # one mutant's diff

Each mutant is one small change to one module (tools/mutants.py: a comparison, an
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
import contextlib
import difflib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.mutants import PACKAGE, ROOT, Mutant, Target, mutants, original_source

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
EQUIVALENT: dict[str, str] = {
    "_money.py::Money.min: self <= other -> self < other": (
        "on a tie it returns the other of two equal values; Money is a frozen value, never "
        "compared by identity"
    ),
    "_policy.py::quote: max_amount.amount < 0 -> max_amount.amount <= 0": (
        "a maximum of exactly zero is replaced by Money.zero of the same currency: an equal value"
    ),
    "_policy.py::quote: max_amount.amount < 0 -> max_amount.amount < 1": (
        "amounts are integers: < 1 is <= 0, and a zero maximum becomes an equal zero"
    ),
    "_planner.py::_first_cover: return None -> pass": (
        "the function's last statement: falling off its end returns None too"
    ),
    "_planner.py::_greedy: if source.limits: -> if True:": (
        "_Reasons.add of a source without limits loops over nothing"
    ),
    "_planner.py::_greedy: source.available if available == remaining else Money(remaining, "
    "total.currency) -> source.available if False else Money(remaining, total.currency)": (
        "when available == remaining the two are equal Money values (same amount; _checked "
        "refused any other currency)"
    ),
    "_planner.py::_single_source: if source.limits: -> if True:": (
        "_Reasons.add of a source without limits loops over nothing"
    ),
    "_ledger.py::is_balanced: line.side == 'debit' -> line.side != 'debit'": (
        "flips the sign of every line, so every total is negated; a total is zero exactly "
        "when its negation is"
    ),
    "_ledger.py::is_balanced: totals.get(key, 0) + sign * line.amount.amount -> "
    "totals.get(key, 0) - sign * line.amount.amount": (
        "sums the negated lines, so every total is negated; a total is zero exactly when its "
        "negation is"
    ),
}

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
    """The mutation score: the killed share of the mutants not known to be equivalent; and the
    killed share of all of them (in %)."""
    caught = sum(r.caught for r in results)
    equivalent = sum(r.status == "equivalent" for r in results)
    total = len(results)
    return (
        100.0 * caught / (total - equivalent) if total > equivalent else 100.0,
        100.0 * caught / total if total else 100.0,
    )


def summary_table(by_module: dict[str, list[Result]]) -> list[str]:
    lines = [
        f"{'module':<10}{'mutants':>8}{'killed':>8}{'timeout':>8}{'equiv.':>8}{'survived':>9}"
        f"{'error':>6}{'score':>8}{'of all':>8}"
    ]
    for module, results in by_module.items():
        count = {s: sum(r.status == s for r in results) for s in _MARK}
        mutation_score, of_all = score(results)
        lines.append(
            f"{module:<10}{len(results):>8}{count['killed']:>8}{count['timeout']:>8}"
            f"{count['equivalent']:>8}{count['survived']:>9}{count['error']:>6}"
            f"{mutation_score:>7.1f}%{of_all:>7.1f}%"
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
    p.add_argument(
        "--only",
        type=int,
        action="append",
        metavar="INDEX",
        help="run only this mutant of the module (repeatable; as --list numbers it)",
    )
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
            found = mutants(target)
            if args.only:
                found = [m for m in found if m.index in args.only]
            todo = _sample(found, args.sample, args.seed)
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

"""``tools/mutate.py``, the mutation run over the pure core (issue 24, docs/testing.md): the
same code always gives the same mutants, each operator makes the change it names, and the
mutants known to be equivalent are the ones docs/testing.md lists. The run itself takes minutes
and is not part of the suite; these checks take a second."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tools import mutants, mutate

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def mutants_of(module: str) -> list[mutants.Mutant]:
    [target] = [t for t in mutate.TARGETS if t.module == module]
    return mutants.mutants(target)


SOURCE = '''
"""A module."""

TABLE = {"a": (1, 2)}


def f(a, b, flag=False):
    """A docstring is not mutated, nor is a message."""
    if a < b and not flag:
        return a + b
    total = -a
    assert total
    return f"{a - b}"
'''


def described(source: str) -> list[tuple[str, str, str]]:
    target = mutants.Target("example", ("tests/test_example.py",))
    return [(m.operator, m.before, m.after) for m in mutants.mutants(target, source)]


def test_each_operator_makes_the_change_it_names() -> None:
    assert described(SOURCE) == [
        ("table entry", "'a': (1, 2)", "(entry removed)"),
        ("table entry", "1", "(entry removed)"),
        ("table entry", "2", "(entry removed)"),
        ("constant", "(1, 2)", "(0, 2)"),
        ("constant", "(1, 2)", "(1, 3)"),
        ("constant", "False", "True"),
        ("if", "if a < b and (not flag):", "if True:"),
        ("if", "if a < b and (not flag): <body>", "if a < b and (not flag): pass"),
        ("boolean", "a < b and (not flag)", "a < b or not flag"),
        ("comparison", "a < b", "a <= b"),
        ("boolean", "not flag", "flag"),
        # "return a + b" -> pass is the body removed above: the same code, listed once
        ("arithmetic", "a + b", "a - b"),
        ("statement", "total = -a", "pass"),
        ("arithmetic", "-a", "a"),
        ("statement", "return f'{a - b}'", "pass"),
    ]


def test_an_if_with_an_else_is_also_forced_false_and_loses_its_else() -> None:
    source = "def f(x):\n    if x:\n        return 1\n    else:\n        return 2\n"
    ifs = [(b, a) for op, b, a in described(source) if op == "if"]
    assert ifs == [
        ("if x:", "if True:"),
        ("if x:", "if False:"),
        ("if x: <body>", "if x: pass"),
        ("if x: ... else: <else>", "if x: ... else: pass"),
    ]


def test_comparisons_and_arithmetic_swap_both_ways() -> None:
    source = "def f(a, b):\n    return (a <= b, a > b, a >= b, a == b, a != b, a - b, a * b)\n"
    swaps = {(b, a) for op, b, a in described(source) if op in ("comparison", "arithmetic")}
    assert swaps == {("a <= b", "a < b"), ("a > b", "a >= b"), ("a >= b", "a > b"),
                     ("a == b", "a != b"), ("a != b", "a == b"), ("a - b", "a + b"),
                     ("a * b", "a // b")}  # fmt: skip


def test_a_target_limited_to_names_mutates_only_those() -> None:
    found = mutants_of("_model")
    assert found
    assert {m.scope.split("[")[0] for m in found} == {"TRANSITIONS", "IN_FLIGHT_STATUSES"}
    assert {m.operator for m in found} == {"table entry"}


def test_the_same_code_gives_the_same_mutants_whatever_the_hash_seed() -> None:
    """Deterministic: ids, order and code do not depend on the process (``--list`` twice)."""
    runs = []
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "tools.mutate", "--list", "-m", "_ledger", "-m", "_model"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs.append(done.stdout)
    assert runs[0] == runs[1]
    assert runs[0].count("\n") == len(mutants_of("_ledger")) + len(mutants_of("_model"))


@pytest.mark.parametrize("target", mutate.TARGETS, ids=lambda t: t.module)
def test_every_module_has_its_own_tests_and_distinct_mutant_ids(target: mutants.Target) -> None:
    assert all((ROOT / t).is_file() for t in target.tests), target.tests
    found = mutants_of(target.module)
    assert len({m.ident for m in found}) == len(found)
    assert len({m.source for m in found}) == len(found)
    assert [m.index for m in found] == list(range(1, len(found) + 1))


def test_every_equivalent_mutant_exists_and_docs_testing_lists_it_with_its_reason() -> None:
    idents = {m.ident for t in mutate.TARGETS for m in mutants_of(t.module)}
    assert not set(mutate.EQUIVALENT) - idents, "listed as equivalent, but no such mutant"
    page = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    for ident, reason in mutate.EQUIVALENT.items():
        assert f"`{ident}`" in page, ident
        assert reason in page, reason

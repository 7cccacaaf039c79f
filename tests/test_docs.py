"""Keep the documentation honest: what the code has, the docs must say, and the examples run.

Each test reads a page under ``docs/`` (or a README) and checks it against the code it describes:
the CLI's commands and options, the plugin hooks, the policy's limit codes, the sandbox's magic
amounts, the links between pages, and the examples (run, or loaded and checked).
"""

from __future__ import annotations

import ast
import doctest
import inspect
import re
import sys
import tomllib
import types
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import click
import pytest

import refundkit
from refundkit import hookspecs
from refundkit.cli import cli
from refundkit.gateways import sandbox
from refundkit.testing import ConformanceHarness, GatewayConformance, Scenario

from ._doc_examples import run_example

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
READMES = ("README.md", "cassettes/README.md", "plugins/README.md")
MARKDOWN = sorted([*DOCS.glob("*.md"), *(ROOT / name for name in READMES)])

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


# --- helpers -------------------------------------------------------------------------------------


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def code_blocks(text: str, lang: str) -> list[str]:
    """The contents of the fenced code blocks of ``lang`` (```python, ```toml, ...)."""
    return [body for found, body in _FENCE.findall(text) if found == lang]


def without_code(text: str) -> str:
    """The text with fenced code blocks blanked out (links and headings there do not count)."""
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    result: set[str] = set()
    for _, heading in _HEADING.findall(without_code(text)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def broken_links(path: Path) -> list[str]:
    """Relative links in ``path`` whose file (or heading anchor) does not exist."""
    text = path.read_text(encoding="utf-8")
    problems: list[str] = []
    for target in _LINK.findall(without_code(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{path.name}: {target} (no file {linked})")
        elif (
            anchor
            and linked.suffix == ".md"
            and anchor not in anchors(linked.read_text(encoding="utf-8"))
        ):
            problems.append(f"{path.name}: {target} (no heading #{anchor})")
    return problems


def sections(text: str) -> dict[str, str]:
    """Each heading's text -> the body up to the next heading of any level."""
    parts = _HEADING.split(text)
    # split() gives [before, level, heading, body, level, heading, body, ...]
    return {parts[i + 1]: parts[i + 2] for i in range(1, len(parts) - 2, 3)}


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    """(``"payments add"``, command) for every command and group below ``group``."""
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield " ".join(path), command
        if isinstance(command, click.Group):
            yield from walk(command, path)


# --- (a) the command line ------------------------------------------------------------------------


def test_walk_finds_the_nested_commands() -> None:
    # Control for the next test: the walk reaches subcommands, so a missing one cannot hide.
    assert isinstance(cli, click.Group)
    found = dict(walk(cli))
    assert {"demo", "quote", "refund", "payments", "payments add", "payments show"} <= set(found)
    assert isinstance(found["payments"], click.Group)


def test_every_cli_command_is_documented() -> None:
    text = page("cli.md")
    missing = [path for path, _ in walk(cli) if f"refundkit {path}" not in text]
    assert not missing, f"docs/cli.md does not mention: {missing}"


def test_every_cli_option_is_documented_in_its_command_section() -> None:
    by_heading = sections(page("cli.md"))
    problems: list[str] = []
    for path, command in walk(cli):
        if isinstance(command, click.Group):
            continue
        body = by_heading.get(f"`refundkit {path}`")
        if body is None:
            problems.append(f"no section '### `refundkit {path}`'")
            continue
        for param in command.params:
            if isinstance(param, click.Option):
                names = [n for n in param.opts if n.startswith("--") and n != "--help"]
                problems += [f"{path}: {n}" for n in names if n not in body]
    assert not problems, "docs/cli.md misses: " + "; ".join(problems)


def test_global_options_and_environment_are_documented() -> None:
    text = page("cli.md")
    for param in cli.params:
        if isinstance(param, click.Option):
            assert all(opt in text for opt in param.opts if opt.startswith("--")), param.opts
    assert "REFUNDKIT_DB" in text
    assert "store_not_found" in text
    assert "error: <code>: <message>" in text


# --- (b) the plugin hooks ------------------------------------------------------------------------


def hooks() -> dict[str, list[str]]:
    """Hook name -> its argument names, from ``refundkit.hookspecs``."""
    return {
        name: list(inspect.signature(value).parameters)
        for name, value in vars(hookspecs).items()
        if name.startswith("refundkit_") and inspect.isfunction(value)
    }


def test_hooks_are_documented() -> None:
    found = hooks()
    assert {"refundkit_register_gateways", "refundkit_on_event"} <= set(found)
    text = page("plugins.md")
    missing = [
        f"{name}({', '.join(args)})"
        for name, args in found.items()
        if f"`{name}({', '.join(args)})`" not in text
    ]
    assert not missing, f"docs/plugins.md does not show these hooks with their arguments: {missing}"


# --- (c) policy limit codes ----------------------------------------------------------------------


def limit_codes() -> set[str]:
    """Every code a ``Limit(...)`` in refundkit's policy module is made with."""
    tree = ast.parse((ROOT / "src" / "refundkit" / "_policy.py").read_text(encoding="utf-8"))
    codes: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Limit"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            codes.add(node.args[0].value)
    return codes


def test_limit_codes_are_found_in_the_policy_module() -> None:
    from refundkit._policy import BUILTIN_RULES

    codes = limit_codes()
    # Every built-in rule is named after the code it uses; the request check adds one more.
    assert {rule.__name__ for rule in BUILTIN_RULES} | {"amount_positive"} <= codes


def test_every_limit_code_is_in_the_policy_table() -> None:
    text = page("policy.md")
    missing = sorted(code for code in limit_codes() if f"| `{code}` |" not in text)
    assert not missing, f"docs/policy.md has no table row for: {missing}"


# --- (d) the sandbox -----------------------------------------------------------------------------


def test_every_magic_amount_is_in_the_sandbox_table() -> None:
    assert len(sandbox.MAGIC_CENTS) >= 7
    rows = [line for line in page("sandbox.md").splitlines() if line.startswith("| ")]
    problems: list[str] = []
    for cents, outcome in sandbox.MAGIC_CENTS.items():
        row = next((r for r in rows if r.startswith(f"| {cents} |")), None)
        if row is None:
            problems.append(f"no row for {cents}")
        elif f"`{outcome}`" not in row:
            problems.append(f"the row for {cents} does not name `{outcome}`: {row}")
    assert not problems, "; ".join(problems)


def test_sandbox_constants_are_documented() -> None:
    text = page("sandbox.md")
    missing = [f"`{name}`" for name in sandbox.OUTCOMES if f"`{name}`" not in text]
    card = sandbox.DEFAULT_CARD
    facts = {
        "default card": f"last 4 `{card.last4}`, expiring {card.exp_month}/{card.exp_year}",
        "webhook tolerance": f"{sandbox.WEBHOOK_TOLERANCE_SECONDS} seconds",
        "idempotency window": f"{sandbox.IDEMPOTENCY_WINDOW.total_seconds() / 3600:g} hours",
        "signature header": f"`{sandbox.SIGNATURE_HEADER}`",
        "webhook secret": f'`"{sandbox.DEFAULT_WEBHOOK_SECRET}"`',
        "capability window": f"idempotency_window_hours="
        f"{sandbox.SandboxGateway.capabilities.idempotency_window_hours}",
    }
    missing += [f"{what}: {fact!r}" for what, fact in facts.items() if fact not in text]
    assert not missing, f"docs/sandbox.md does not say: {missing}"


def test_the_sandbox_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    worked = page("sandbox.md").split("## Worked example", 1)[1]
    code = code_blocks(worked, "python")[0]
    shown = code_blocks(worked, "text")[0]
    assert run_example(code, tmp_path) == shown
    assert (tmp_path / "refundkit.sandbox.db").exists()  # next to the store, as documented


# --- (e) links -----------------------------------------------------------------------------------


def test_the_link_checker_finds_broken_links(tmp_path: Path) -> None:
    # Control for the next test.
    (tmp_path / "b.md").write_text("# Real heading\n", encoding="utf-8")
    doc = tmp_path / "a.md"
    doc.write_text(
        "[ok](b.md) [ok](b.md#real-heading) [web](https://example.org/x.md)\n"
        "[gone](missing.md) [bad anchor](b.md#nope) [self](#nowhere)\n"
        "```\n[in code](ignored.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(doc)
    assert len(problems) == 3, problems
    assert any("missing.md" in p for p in problems)
    assert any("#nope" in p for p in problems)
    assert any("#nowhere" in p for p in problems)


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(path: Path) -> None:
    assert not broken_links(path)


def test_the_index_lists_every_page() -> None:
    index = page("index.md")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
    assert pages, "no docs pages found"
    missing = [name for name in pages if f"]({name})" not in index]
    assert not missing, f"docs/index.md does not link: {missing}"


# --- the example plugin in docs/plugins.md -------------------------------------------------------


@pytest.fixture
def stripe_example(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The ``refundkit_stripe`` module of docs/plugins.md, loaded without its SDK."""
    blocks = code_blocks(page("plugins.md"), "python")
    source = next(b for b in blocks if b.startswith('"""refundkit gateway plugin for Stripe'))
    had_stripe = "stripe" in sys.modules
    module = types.ModuleType("refundkit_stripe")
    exec(compile(source, "docs/plugins.md (refundkit_stripe)", "exec"), module.__dict__)
    if not had_stripe:
        assert "stripe" not in sys.modules, "the example imports its SDK when it is loaded"
    monkeypatch.setitem(sys.modules, "refundkit_stripe", module)
    return module


def test_the_example_plugin_names_agree(stripe_example: types.ModuleType) -> None:
    project = tomllib.loads(code_blocks(page("plugins.md"), "toml")[0])["project"]
    (entry_name, module_name), *rest = project["entry-points"]["refundkit"].items()
    assert not rest
    gateway = stripe_example.StripeGateway
    assert project["name"] == f"refundkit-{entry_name}"
    assert module_name == project["name"].replace("-", "_") == stripe_example.__name__
    assert gateway.name == entry_name
    pm = refundkit.PluginManager(autoload=False, plugins=[stripe_example])
    assert pm.gateways.get(entry_name) is gateway


class _NoScenarios(ConformanceHarness):
    """Enough of a harness for the checks that make no gateway call."""

    def __init__(self, gateway: refundkit.Gateway) -> None:
        self._gateway = gateway

    @property
    def gateway(self) -> refundkit.Gateway:
        return self._gateway

    def scenario(self, name: str) -> AbstractContextManager[Scenario]:
        raise NotImplementedError("these checks arrange no scenario")


def test_the_example_plugin_passes_the_offline_conformance_checks(
    stripe_example: types.ModuleType,
) -> None:
    gateway = stripe_example.StripeGateway({"api_key": "sk_test_docs_secret"})
    suite = GatewayConformance()
    with _NoScenarios(gateway) as harness:
        suite.test_capabilities_are_consistent(harness)
        suite.test_amount_round_trip(harness)
        suite.test_repr_hides_configuration(harness)


def test_the_plugin_page_examples_run(stripe_example: types.ModuleType) -> None:
    text = page("plugins.md")
    examples = [b for b in code_blocks(text, "python") if b.lstrip().startswith(">>>")]
    assert examples, "no interactive examples found in docs/plugins.md"
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for number, example in enumerate(examples):
        test = parser.get_doctest(example, {}, f"plugins.md example {number}", "plugins.md", 0)
        runner.run(test, out=lambda _text: None)
    assert runner.failures == 0, f"{runner.failures} interactive example(s) failed"
    assert runner.tries >= 5

"""Keep docs/balances.md honest: its worked example runs and prints what the page shows, and
the page names every planner strategy and the balance limits."""

from __future__ import annotations

import re
from pathlib import Path

from refundkit._planner import STRATEGIES

from ._doc_examples import run_example

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "balances.md"

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# Ids refundkit makes up at random; the page shows them as ``lot_…``.
_RANDOM_ID = re.compile(r"\b(lot|pln|rf)_[0-9a-f]{24}\b")
_OPEN = 'kit = RefundKit.open(f"sqlite:///{tempfile.mkdtemp()}/refundkit.db")'


def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def worked_example() -> tuple[str, str]:
    """The ``python`` block of the "Worked example" section and the ``text`` block after it."""
    section = page().split("\n## Worked example\n", 1)[1].split("\n## ", 1)[0]
    blocks = _FENCE.findall(section)
    assert [lang for lang, _ in blocks] == ["python", "text"], "expected one script, one output"
    return blocks[0][1], blocks[1][1]


def test_the_worked_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    code, shown = worked_example()
    assert _OPEN in code, "the example opens its store in a temporary directory"
    # tempfile.mkdtemp() in the example makes its directory in TMPDIR.
    stdout = run_example(code, tmp_path, TMPDIR=str(tmp_path))
    assert _RANDOM_ID.sub(r"\1_…", stdout) == shown
    # The store and the sandbox's file went to the temporary directory, nowhere else.
    assert len(list(tmp_path.glob("*/refundkit.db"))) == 1
    assert len(list(tmp_path.glob("*/refundkit.sandbox.db"))) == 1


def test_the_output_shown_hides_only_random_ids() -> None:
    # Control for the comparison above: the normalisation cannot swallow real output.
    _, shown = worked_example()
    assert "lot_…" in shown
    assert _RANDOM_ID.sub(r"\1_…", "pay_3 (balance lot lot_0123456789abcdef01234567)") == (
        "pay_3 (balance lot lot_…)"
    )
    assert _RANDOM_ID.sub(r"\1_…", "pay_3 inv_7 lot_1") == "pay_3 inv_7 lot_1"


def test_every_planner_strategy_is_documented() -> None:
    text = page()
    assert len(STRATEGIES) >= 4
    missing = [s for s in STRATEGIES if f"| `{s}` |" not in text]
    assert not missing, f"docs/balances.md has no strategy row for: {missing}"


def test_the_balance_limits_are_named() -> None:
    text = page()
    missing = [
        code
        for code in ("customer_balance", "credit_issued", "credit_balance")
        if f"`{code}`" not in text
    ]
    assert not missing, f"docs/balances.md does not name: {missing}"

"""Running a docs page's example script the way a reader would: a fresh process, no plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_example(code: str, cwd: Path, **extra_env: str) -> str:
    """Run ``code`` in ``cwd`` with no REFUNDKIT_* settings but autoload off (the same as
    ``autoload=False``); fail with its stderr unless it exits 0; return its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFUNDKIT_")}
    env["REFUNDKIT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.update(extra_env)
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout

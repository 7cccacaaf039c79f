"""``refundkit demo``: the tour on the offline sandbox gateway, in a fresh store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .._app import Run, cli, kit_command, make_console, open_kit

if TYPE_CHECKING:
    from rich.console import Console


@kit_command(cli, "demo", store=False)
@click.option(
    "--dir",
    "directory",
    metavar="PATH",
    type=click.Path(file_okay=False, dir_okay=True, writable=True),
    help="Where to create the demo store (default: a new temporary directory).",
)
def demo_command(run: Run, directory: str | None) -> None:
    """Walk through refunds on the offline sandbox gateway, in a fresh store.

    Creates a new local SQLite store (never the --db one), records three payments of one
    customer (an invoice payment, a customer-balance top-up, one more), then shows quotes in
    plain words, a full refund, a partial refund, a refused refund, a pending refund settled by
    a signed sandbox webhook, the events and the journal, and what to try next with
    `--db <the demo store>`. Refuses a --dir that already holds a demo store with payments.
    """
    import tempfile
    from pathlib import Path

    from ... import _demo

    if directory is None:
        path = Path(tempfile.mkdtemp(prefix="refundkit-demo-"))
    else:
        path = Path(directory).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
    db_path = path / "refundkit.db"
    url = f"sqlite:///{db_path}"
    sandbox_file = path / "refundkit.sandbox.db"
    if sandbox_file.exists() and sandbox_file.stat().st_size > 0:
        raise run.fail(
            "demo_store_not_empty",
            f"{path} already holds a sandbox from an earlier demo; "
            "pick an empty --dir (or leave --dir out for a new temporary one)",
        )
    if db_path.exists():
        kit = open_kit(url, as_json=run.as_json)
        try:
            used = bool(kit.payments())
        finally:
            kit.close()
        if used:
            raise run.fail(
                "demo_store_not_empty",
                f"{db_path} already holds payments; pick an empty --dir "
                "(or leave --dir out for a new temporary one)",
            )
    console = make_console() if not run.as_json else _quiet_console()
    kit = open_kit(url, as_json=run.as_json, create=True)
    try:
        summary = _demo.run_demo(kit, console, db_url=url, directory=str(path))
    finally:
        kit.close()
    if run.as_json:
        run.emit(summary)


def _quiet_console() -> Console:
    from rich.console import Console

    return Console(quiet=True)

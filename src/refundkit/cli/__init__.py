"""The ``refundkit`` command line: one command per facade method, plus ``demo`` and ``gateways``.

Startup must stay instant (``refundkit --help``): nothing heavy is imported at module level.
SQLAlchemy (through ``refundkit._kit``) and rich are imported inside the commands that need
them. ``import refundkit`` itself is light, so its errors, money and model types are fine here.

``_app`` holds the root group and the plumbing (``kit_command``, errors, exit codes),
``_render`` the tables, ``_parse`` the argument readers. Each module of ``commands`` registers
its family of commands on the root group when it is imported; importing them here is what
makes ``refundkit.cli:main`` (the console script) know them all.
"""

from __future__ import annotations

from ._app import CliFailure, cli, main

# Imported to register their commands, in the order they were written (``cli.commands`` keeps it).
# isort: off
from .commands import (  # noqa: F401
    demo,
    gateways,
    payments,
    refunds,
    recovery,
    reconcile,
    events_journal,
    delivery,
    balances,
    planning,
    serve,
)
# isort: on

__all__ = ["CliFailure", "cli", "main"]

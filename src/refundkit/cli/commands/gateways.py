"""``refundkit gateways``: the installed gateway plugins and what each can do for refunds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from ... import __version__
from ..._gateway import Capabilities
from .._app import Run, cli, kit_command
from .._render import FittedTable, capabilities_row, make_table

#: A gateway's name, capabilities and distribution (name, version; None when not known).
Installed: TypeAlias = tuple[str, Capabilities, tuple[str, str] | None]


@kit_command(cli, "gateways", store=False)
def gateways_command(run: Run) -> None:
    """List the installed gateways and what each can do for refunds.

    Columns: partial refunds, async outcome (webhooks or lookups confirm later), idempotency
    keys (and how long the gateway remembers them), void of an unsettled payment, the
    gateway's refund window, and the plugin distribution that provides it.
    """
    rows = installed_gateways()
    if run.as_json:
        run.emit(
            {
                "gateways": [
                    {
                        "name": name,
                        "capabilities": caps.to_dict(),
                        "distribution": {"name": dist[0], "version": dist[1]} if dist else None,
                    }
                    for name, caps, dist in rows
                ]
            }
        )
        return
    run.console.print(gateways_table(rows))


def installed_gateways() -> list[Installed]:
    """Each registered gateway, its capabilities, and the distribution (name, version) of it."""
    from ..._plugins import PluginManager

    pm = PluginManager()
    dists: dict[str, tuple[str, str]] = {}
    for plugin, facade in pm.pluggy.list_plugin_distinfo():
        top = getattr(plugin, "__name__", type(plugin).__module__).split(".")[0]
        dists[top] = (facade.project_name, facade.version)
    rows: list[Installed] = []
    for name in pm.gateways:
        gw_cls = pm.gateways.get(name)
        top = gw_cls.__module__.split(".")[0]
        dist = dists.get(top)
        if dist is None and top == "refundkit":
            dist = ("refundkit (built-in)", __version__)
        rows.append((name, gw_cls.capabilities, dist))
    return rows


def gateways_table(rows: Sequence[Installed]) -> FittedTable:
    columns = [
        ("gateway", "id"),
        ("partial refunds", "text"),
        ("async outcome", "text"),
        ("idempotency keys", "text"),
        ("void if unsettled", "text"),
        ("refund window", "text"),
        ("refunds per payment", "text"),
        ("distribution", "text"),
    ]
    return make_table(
        columns,
        [
            [name, *capabilities_row(caps), f"{dist[0]} {dist[1]}" if dist else "—"]
            for name, caps, dist in rows
        ],
        title="Installed gateways",
    )

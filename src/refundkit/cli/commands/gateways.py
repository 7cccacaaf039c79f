"""``refundkit gateways``: the installed gateway plugins and what each can do for refunds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import __version__
from .._app import Run, cli, kit_command
from .._render import capabilities_row, make_table

if TYPE_CHECKING:
    from ..._gateway import Capabilities


@kit_command(cli, "gateways", store=False)
def gateways_command(run: Run) -> None:
    """List the installed gateways and what each can do for refunds.

    Columns: partial refunds, async outcome (webhooks or lookups confirm later), idempotency
    keys (and how long the gateway remembers them), void of an unsettled payment, the
    gateway's refund window, and the plugin distribution that provides it.
    """
    from ..._plugins import PluginManager

    pm = PluginManager()
    dists: dict[str, tuple[str, str]] = {}
    for plugin, facade in pm.pluggy.list_plugin_distinfo():
        top = getattr(plugin, "__name__", type(plugin).__module__).split(".")[0]
        dists[top] = (facade.project_name, facade.version)
    rows: list[tuple[str, Capabilities, tuple[str, str] | None]] = []
    for name in pm.gateways:
        gw_cls = pm.gateways.get(name)
        top = gw_cls.__module__.split(".")[0]
        dist = dists.get(top)
        if dist is None and top == "refundkit":
            dist = ("refundkit (built-in)", __version__)
        rows.append((name, gw_cls.capabilities, dist))
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
    table = make_table(
        columns,
        [
            [name, *capabilities_row(caps), f"{dist[0]} {dist[1]}" if dist else "—"]
            for name, caps, dist in rows
        ],
        title="Installed gateways",
    )
    run.console.print(table)

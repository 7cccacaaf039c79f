"""``refundkit deliver`` and ``endpoints``: signed webhooks out, and endpoints a 410 disabled."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from .._app import Run, cli, kit_command
from .._render import FittedTable, make_table, print_list, when

if TYPE_CHECKING:
    from rich.text import Text

    from ..._delivery import EndpointState


@kit_command(cli, "deliver")
@click.option("--forever", is_flag=True, help="Keep delivering until Ctrl-C.")
@click.option(
    "--retry", "retry_id", metavar="EVENT_ID", help="Send a dead-lettered event again first."
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="With --forever: the pause between passes.",
)
def deliver_command(run: Run, forever: bool, retry_id: str | None, interval: float) -> None:
    """Send outbox events to the webhook endpoints of the configuration file, signed.

    At least once, in order per refund; failed attempts are retried with backoff for three
    days, then dead-lettered (`refundkit events --failed`).
    """
    from ..._delivery import DeliveryReport, endpoints_from_config, run_forever

    endpoints = endpoints_from_config(run.config.section("webhooks"))
    if not endpoints:
        raise run.fail(
            "no_webhook_endpoints",
            "no webhook endpoints: add [[webhooks.endpoints]] (url, secret) to the "
            "configuration file",
        )
    if retry_id is not None:
        requeued = run.kit.retry_event(retry_id)
        if not requeued:
            raise run.fail("nothing_to_retry", f"event {retry_id} has no failed delivery")

    def say(report: DeliveryReport) -> None:
        if run.as_json:
            click.echo(json.dumps(report.to_dict()))
        else:
            run.console.print(
                f"Delivered {len(report.delivered)}, retrying {len(report.retrying)}, "
                f"dead-lettered {len(report.dead_lettered)}."
            )
            say_disabled(run, {e.url for e in endpoints})

    if forever:
        made = run_forever(
            lambda: run.kit.deliver_events(endpoints), interval=interval, on_report=say
        )
        if not run.as_json:
            run.console.print(f"Stopped after {made} attempt(s).")
        return
    report = run.kit.deliver_events(endpoints)
    if run.as_json:
        run.emit(report.to_dict())
    else:
        say(report)


def say_disabled(run: Run, urls: set[str]) -> None:
    """One line per configured endpoint that a 410 Gone disabled."""
    for state in run.kit.webhook_endpoints():
        if state.url in urls and state.disabled_at is not None:
            run.console.print(
                f"Disabled: {state.url} ({state.disabled_reason}, {when(state.disabled_at)} UTC); "
                f"{state.pending} parked. Re-enable: refundkit endpoints enable {state.url}"
            )


@cli.group("endpoints")
def endpoints_group() -> None:
    """List the webhook endpoints deliverers have seen; re-enable one a 410 Gone disabled."""


@kit_command(endpoints_group, "list")
def endpoints_list(run: Run) -> None:
    """List webhook endpoints: enabled or disabled, where each started, pending and failed.

    An endpoint appears once a `refundkit deliver` pass has seen it in the configuration file.
    """
    states = run.kit.webhook_endpoints()
    empty = "No webhook endpoints seen yet (`refundkit deliver` registers them)."
    shown = print_list(run, "endpoints", states, endpoints_table, empty=empty)
    if shown and any(e.disabled_at for e in states):
        run.console.print("Re-enable one with: refundkit endpoints enable URL")


def endpoints_table(states: Sequence[EndpointState]) -> FittedTable:
    rows: list[list[str | Text]] = [
        [
            e.url,
            "disabled" if e.disabled_at else "enabled",
            when(e.first_seen_at),
            "the start" if e.start_seq == 0 else f"event #{e.start_seq}",
            str(e.pending) + (" parked" if e.disabled_at else ""),
            str(e.failed),
            f"{e.disabled_reason}, {when(e.disabled_at)}" if e.disabled_at else "—",
        ]
        for e in states
    ]
    columns = [
        ("endpoint", "text"),
        ("status", "short"),
        ("first seen (UTC)", "text"),
        ("gets events after", "text"),
        ("pending", "short"),
        ("failed", "amount"),
        ("disabled (UTC)", "text"),
    ]
    return make_table(columns, rows, title="Webhook endpoints")


@kit_command(endpoints_group, "enable")
@click.argument("url")
def endpoints_enable(run: Run, url: str) -> None:
    """Re-enable an endpoint a 410 Gone disabled: its parked deliveries, and the one that got
    the 410, go out again in order (same webhook-id) on the next `refundkit deliver`."""
    was_disabled = any(e.url == url and e.disabled for e in run.kit.webhook_endpoints())
    resumed = run.kit.enable_webhook_endpoint(url)
    if run.as_json:
        run.emit({"url": url, "status": "enabled", "was_disabled": was_disabled,
                  "resumed": resumed})  # fmt: skip
    elif was_disabled:
        run.console.print(
            f"Enabled {url}: {resumed} deliveries back in the queue, sent in order by the next "
            "`refundkit deliver`."
        )
    else:
        run.console.print(f"{url} was not disabled; nothing to do.")

"""``refundkit serve`` and ``dashboard``: the admin dashboard (imported only by these commands)."""

from __future__ import annotations

import click

from .._app import Run, cli, kit_command


@kit_command(cli, "serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--demo", is_flag=True, help="Serve a fresh demo store with demo users (printed at start)."
)
def serve_command(run: Run, host: str, port: int, demo: bool) -> None:
    """Serve the admin dashboard (docs/dashboard.md) over the store.

    Users, roles, the session key and the support refund limit come from the [dashboard] table
    of the configuration file. With --demo: a fresh demo store and demo users instead.
    """
    from ...dashboard import _serve, create_app, settings_from_config

    if demo:
        d = _serve.open_demo()
        kit, settings = d.kit, d.settings
        for line in _serve.demo_banner(d, f"http://{host}:{port}/"):
            click.echo(line)
    else:
        settings = settings_from_config(run.config.section("dashboard"))
        kit = run.kit
    try:
        _serve.run_server(create_app(kit, settings), host, port, click.echo)
    finally:
        kit.close()


@cli.group("dashboard")
def dashboard_group() -> None:
    """Dashboard helpers (see `refundkit serve`)."""


@kit_command(dashboard_group, "hash-password", store=False)
def hash_password_command(run: Run) -> None:
    """Print an argon2 hash for a [[dashboard.users]] password_hash. The password is asked
    for at a prompt (never an argument, so it stays out of shell history)."""
    from ...dashboard import hash_password

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise run.fail("weak_password", "a dashboard password needs at least 8 characters")
    hashed = hash_password(password)
    if run.as_json:
        run.emit({"password_hash": hashed})
    else:
        click.echo(hashed)

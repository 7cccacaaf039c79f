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
@click.option(
    "--https",
    "behind_https",
    is_flag=True,
    help="The dashboard is reached over HTTPS (a TLS proxy in front): the cookie is Secure.",
)
@click.option(
    "--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS: the cert."
)
@click.option(
    "--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS: its key."
)
@click.option(
    "--trusted-proxy",
    "proxies",
    multiple=True,
    metavar="ADDRESS",
    help="A proxy whose X-Forwarded-For/-Proto are believed (an IP or a network; repeatable; "
    "added to [dashboard] trusted_proxies). By default none is.",
)
def serve_command(
    run: Run,
    host: str,
    port: int,
    demo: bool,
    behind_https: bool,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    proxies: tuple[str, ...],
) -> None:
    """Serve the admin dashboard (docs/dashboard.md) over the store.

    Users, roles, the session key and the support refund limit come from the [dashboard] table
    of the configuration file. With --demo: a fresh demo store and demo users instead.
    """
    from ...dashboard import _serve, create_app, settings_from_config

    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise run.fail("usage_error", "--ssl-certfile and --ssl-keyfile go together")
    tls = _serve.TLS(ssl_certfile, ssl_keyfile) if ssl_certfile and ssl_keyfile else None
    if demo:
        d = _serve.open_demo()
        kit, settings = d.kit, d.settings
        scheme = "https" if tls else "http"
        for line in _serve.demo_banner(d, f"{scheme}://{host}:{port}/"):
            click.echo(line)
    else:
        settings = settings_from_config(run.config.section("dashboard"))
        kit = run.kit
    settings = _serve.with_serving(settings, https=behind_https or tls is not None, proxies=proxies)
    try:
        _serve.run_server(create_app(kit, settings), host, port, click.echo, tls)
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

"""``refundkit serve``: the dashboard under uvicorn, on a configured store or a fresh demo one."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from .._money import Money
from ._settings import DashboardSettings, User, hash_password, parse_proxies

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .._kit import RefundKit

#: The demo's users: (name, role, password). Printed at start; only for the demo store.
DEMO_USERS: Final = (
    ("admin", "billing_admin", "admin-demo"),
    ("support", "support", "support-demo"),
    ("viewer", "viewer", "viewer-demo"),
)
DEMO_SUPPORT_LIMIT: Final = Money.parse("20.00", "USD")


@attrs.frozen
class Demo:
    kit: RefundKit
    settings: DashboardSettings
    db_url: str


def demo_settings() -> DashboardSettings:
    users = {name: User(name, role, hash_password(pw)) for name, role, pw in DEMO_USERS}
    return DashboardSettings(
        secret_key=secrets.token_urlsafe(48),
        users=users,
        support_limits={"USD": DEMO_SUPPORT_LIMIT},
    )


def open_demo(directory: Path | None = None) -> Demo:
    """A fresh demo store (``refundkit demo``'s payments and refunds) and its demo users."""
    from .._kit import RefundKit
    from .._tour import run_tour

    path = directory or Path(tempfile.mkdtemp(prefix="refundkit-dashboard-demo-"))
    url = f"sqlite:///{path / 'refundkit.db'}"
    # The sandbox configured: the demo's dashboard receives its webhooks too.
    kit = RefundKit.open(url, gateways={"sandbox": {}})
    run_tour(kit, db_url=url)
    return Demo(kit, demo_settings(), url)


def with_serving(
    settings: DashboardSettings, *, https: bool, proxies: Sequence[str]
) -> DashboardSettings:
    """``refundkit serve``'s ``--https`` / TLS and ``--trusted-proxy`` over the settings."""
    extra = parse_proxies(list(proxies))
    return attrs.evolve(
        settings,
        https=settings.https or https,
        trusted_proxies=(*settings.trusted_proxies, *extra),
    )


def demo_banner(demo: Demo, url: str) -> list[str]:
    lines = [f"refundkit dashboard on a fresh demo store ({demo.db_url})", f"Open {url}", ""]
    lines.append("Demo users (name / password / role):")
    for name, role, password in DEMO_USERS:
        lines.append(f"  {name:<8} {password:<13} {role}")
    lines.append(f"support refunds up to {DEMO_SUPPORT_LIMIT} without approval.")
    return lines


@attrs.frozen
class TLS:
    """uvicorn serves HTTPS itself with these (``refundkit serve --ssl-certfile``)."""

    certfile: str
    keyfile: str


def run_server(
    app: Starlette,
    host: str,
    port: int,
    echo: Callable[[str], None],
    tls: TLS | None = None,
) -> None:
    """uvicorn, trusting no proxy headers of its own: the dashboard believes
    ``X-Forwarded-For`` only from ``[dashboard] trusted_proxies`` (``_proxy``). Its access log
    writes each request's path and query: the card-number filter (``refundkit._logs``, put on
    uvicorn's loggers when refundkit is imported, again here) redacts one typed into a search
    box or a URL."""
    import uvicorn

    from .._logs import install

    install()

    scheme = "https" if tls else "http"
    echo(f"Serving on {scheme}://{host}:{port} (Ctrl+C to stop)")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        proxy_headers=False,
        ssl_certfile=tls.certfile if tls else None,
        ssl_keyfile=tls.keyfile if tls else None,
    )

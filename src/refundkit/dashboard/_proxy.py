"""Who is asking, when the dashboard sits behind a reverse proxy.

The client address (the sign-in throttle counts per address) and the scheme (a request that
came over HTTPS gets a Secure cookie) come from the connection itself, unless its peer is one
of ``[dashboard] trusted_proxies``: then from ``X-Forwarded-For`` (the right-most address that
is not a trusted proxy) and ``X-Forwarded-Proto``. With no proxies configured, those headers
are ignored, whoever sends them: anyone may write them, loopback included.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from ._settings import Network


class TrustedProxies:
    """Rewrites ``scope["client"]`` and ``scope["scheme"]`` from a trusted proxy's headers."""

    def __init__(self, app: ASGIApp, proxies: Sequence[Network]) -> None:
        self.app = app
        self.proxies = tuple(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.proxies:
            peer = scope.get("client")
            if peer and trusted(peer[0], self.proxies):
                scope = dict(scope)
                client, scheme = forwarded(scope, self.proxies)
                if client is not None:
                    scope["client"] = (client[:64], 0)
                if scheme in ("http", "https"):
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)


def trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def forwarded(scope: Scope, proxies: Sequence[Network]) -> tuple[str | None, str | None]:
    """The client a trusted proxy names, and the scheme it was reached with."""
    hops: list[str] = []
    protos: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops += [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
        elif name == b"x-forwarded-proto":
            protos += [p.strip().lower() for p in value.decode("latin-1").split(",")]
    client = None
    for hop in reversed(hops):
        client = hop
        if not trusted(hop, proxies):
            break
    # The proxy nearest to us appends last: its word on the scheme is the one to take.
    return client, (protos[-1] if protos else None)

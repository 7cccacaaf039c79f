"""The dashboard's ASGI middleware: security headers on every page, and the session cookie,
Secure whenever the request came over HTTPS (or the dashboard is told it always does)."""

from __future__ import annotations

from typing import Any

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    """No framing, no script, nothing from elsewhere: the pages need only their own CSS."""

    HEADERS = (
        (
            b"content-security-policy",
            b"default-src 'none'; style-src 'self'; img-src 'self'; "
            b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"cache-control", b"no-store"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SessionCookie:
    """Starlette's signed session cookie (HttpOnly, SameSite=Lax), marked Secure when
    ``https_only`` or when this request's scheme is https (TLS at uvicorn, or a trusted
    proxy's ``X-Forwarded-Proto``). Who is signed in is not in the cookie: only the token
    of a session the store keeps (``_sessions``)."""

    def __init__(
        self, app: ASGIApp, *, secret_key: str, cookie: str, max_age: int, https_only: bool
    ) -> None:
        options: dict[str, Any] = {
            "secret_key": secret_key,
            "session_cookie": cookie,
            "max_age": max_age,
            "same_site": "lax",
        }
        self.secure = SessionMiddleware(app, https_only=True, **options)
        self.plain = self.secure if https_only else SessionMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.secure if scope.get("scheme") in ("https", "wss") else self.plain
        await chosen(scope, receive, send)

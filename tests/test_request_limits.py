"""Request bodies above a limit are refused with 413 without being read whole (issue 14:
one 200 MB unauthenticated webhook POST added 214 MB to the server).

``POST /webhooks/{gateway}`` takes at most 1 MiB (``webhook_max_body_bytes``), the dashboard's
own routes 64 KiB (``max_body_bytes``). A declared ``Content-Length`` above the limit is
refused before a byte is read; a chunked body is counted as it arrives and refused as soon as
it passes the limit. The tests drive the ASGI apps with a ``receive`` that hands out a large
body chunk by chunk, and count what the app pulled.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from starlette.testclient import TestClient

from refundkit import RefundKit
from refundkit.asgi import webhook_app
from refundkit.dashboard import create_app

from ._dashboard import USERS, csrf_of, settings

MiB = 1 << 20
CHUNK = 64 * 1024
#: What the client offers: far more than any limit (lazily: never all in memory).
OFFERED = 16 * MiB


class Upload:
    """An ASGI ``receive`` handing out ``total`` bytes in ``CHUNK``s; counts what was pulled."""

    def __init__(self, total: int = OFFERED) -> None:
        self.total = total
        self.pulled = 0

    async def __call__(self) -> dict[str, Any]:
        if self.pulled >= self.total:
            return {"type": "http.disconnect"}
        size = min(CHUNK, self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.pulled < self.total}


def post(app: Any, path: str, upload: Upload, *, declared: bool) -> tuple[int, bytes]:
    """POST ``upload`` to ``app`` at ``path``, with a Content-Length or chunked."""
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if declared:
        headers.append((b"content-length", str(upload.total).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": headers, "client": ("203.0.113.9", 40000),
        "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, upload, send))
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), body


@pytest.fixture
def dashboard(kit: RefundKit) -> Any:
    return create_app(kit, settings())


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_huge_webhook_body_is_refused_with_413_unread(kit: RefundKit, declared: bool) -> None:
    for app in (webhook_app(kit), create_app(kit, settings())):
        upload = Upload()
        status, body = post(app, "/webhooks/sandbox", upload, declared=declared)
        assert status == 413
        assert b"request_too_large" in body
        # Declared: not a byte read. Chunked: no more than the limit and one chunk.
        assert upload.pulled == (0 if declared else MiB + CHUNK)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/login", "/logout"])
def test_a_huge_dashboard_form_is_refused_with_413_unread(
    dashboard: Any, declared: bool, path: str
) -> None:
    upload = Upload()
    status, _ = post(dashboard, path, upload, declared=declared)
    assert status == 413
    assert upload.pulled == (0 if declared else 64 * 1024 + CHUNK)


def test_the_limits_are_settings(kit: RefundKit) -> None:
    small = attrs.evolve(settings(), max_body_bytes=1000, webhook_max_body_bytes=2000)
    app = create_app(kit, small)
    status, _ = post(app, "/login", Upload(1001), declared=True)
    assert status == 413
    status, _ = post(app, "/webhooks/sandbox", Upload(2001), declared=True)
    assert status == 413
    status, _ = post(app, "/webhooks/sandbox", Upload(2000), declared=True)
    assert status == 400  # read, and refused by the signature check
    status, _ = post(webhook_app(kit, max_body_bytes=10), "/webhooks/sandbox", Upload(11),
                     declared=False)  # fmt: skip
    assert status == 413


@pytest.fixture
def client(kit: RefundKit) -> Iterator[TestClient]:
    with TestClient(create_app(kit, settings()), follow_redirects=False) as c:
        yield c


def test_a_signed_in_users_huge_form_is_refused_and_writes_nothing(
    client: TestClient, kit: RefundKit
) -> None:
    from ._dashboard import INVOICE_PAYMENT, seed

    seed(kit)
    token = csrf_of(client.get("/login").text)
    client.post("/login", data={"name": "ann", "password": USERS["ann"][1], "csrf": token})
    token = csrf_of(client.get(f"/payments/{INVOICE_PAYMENT}").text)
    form = f"csrf={token}&amount=1.00&reason=r&pad=".encode()

    def chunked() -> Iterator[bytes]:
        yield form
        for _ in range(20):
            yield b"p" * CHUNK

    r = client.post(
        f"/payments/{INVOICE_PAYMENT}/refund",
        content=chunked(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert kit.refunds() == []


def test_bodies_under_the_limit_work_as_before(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    padding = "p" * (60 * 1024)  # a big form, still under 64 KiB
    r = client.post(
        "/login",
        data={"name": "ann", "password": USERS["ann"][1], "csrf": token, "pad": padding},
    )
    assert r.status_code == 303
    big = client.post("/login", data={"csrf": token, "pad": "p" * (65 * 1024)})
    assert big.status_code == 413

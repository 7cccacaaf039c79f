"""Inbound gateway webhooks over HTTP: an ASGI app (Starlette) with ``POST /webhooks/{gateway}``.

The raw body and headers go to ``kit.handle_gateway_webhook``, which has the gateway plugin's
``parse_webhook`` verify and read them and applies each refund update once. Answers:

- 200 with the refunds it moved: applied, a duplicate (nothing changes twice), or about a refund
  refundkit does not know (logged; acknowledged so the gateway stops retrying);
- 200 with ``"unprocessable"`` for an authentic delivery (its signature verified) that cannot
  be read as the gateway's event: logged and kept in ``unprocessable_webhooks``; every gateway
  refundkit ships retries any answer but a 2xx for days, and no retry can cure it;
- 400 when the signature is missing, wrong or stale, or the plugin refuses the body: nothing
  changes;
- 404 for a gateway that is not installed (and for ``sandbox`` unless the kit configures it);
- 413 for a body above ``max_body_bytes`` (1 MiB by default), refused before it is read whole;
- 500 (the gateway will retry) for anything else.

Mount ``webhook_routes(kit)`` into another Starlette app (the dashboard), or serve
``webhook_app(kit)`` on its own, e.g. ``uvicorn --factory``. Starlette is imported only here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _store as st
from ._errors import (
    CardDataRefused,
    RefundkitError,
    UnknownGateway,
    WebhookUnprocessable,
    WebhookVerificationError,
)

if TYPE_CHECKING:
    from ._kit import RefundKit

__all__ = ["WEBHOOK_MAX_BODY_BYTES", "BodyLimit", "webhook_app", "webhook_routes"]

log = logging.getLogger("refundkit.webhooks")

#: The only path this module serves; another app mounting the routes keeps it.
PATH = "/webhooks/{gateway}"
PREFIX: Final = "/webhooks/"
#: The largest webhook body read (1 MiB): gateways send a few kilobytes per event.
WEBHOOK_MAX_BODY_BYTES: Final = 1 << 20


class BodyTooLarge(Exception):
    """Raised inside ``BodyLimit``'s ``receive`` once a body passes the limit."""


class BodyLimit:
    """Refuses request bodies above ``limit`` bytes with 413, without reading them whole.

    A declared ``Content-Length`` above the limit is refused before a byte is read; a body
    without one (chunked) is counted as the app reads it, and refused as soon as the count
    passes the limit. Paths starting with one of ``skip`` pass untouched (their routes carry
    limits of their own).
    """

    def __init__(self, app: ASGIApp, limit: int, *, skip: Sequence[str] = ()) -> None:
        self.app = app
        self.limit = limit
        self.skip = tuple(skip)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.skip):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is larger than {self.limit} bytes"
        response = _error(413, "request_too_large", message)
        response.headers["connection"] = "close"
        await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def webhook_routes(
    kit: RefundKit,
    *,
    max_body_bytes: int = WEBHOOK_MAX_BODY_BYTES,
    sandbox: bool | None = None,
) -> list[Route]:
    """The route(s) to mount in a Starlette app. ``sandbox``: whether ``/webhooks/sandbox``
    is served; by default only when the kit configures the sandbox gateway, as its default
    webhook secret is public."""
    serve_sandbox = kit.runtime.gateways.configured("sandbox") if sandbox is None else sandbox
    if serve_sandbox:
        log.info("serving the sandbox gateway's webhooks at %ssandbox", PREFIX)

    async def receive(request: Request) -> JSONResponse:
        gateway = request.path_params["gateway"]
        if gateway == "sandbox" and not serve_sandbox:
            return _unknown(gateway)
        body = await request.body()
        try:
            # Store and gateway calls block: keep them off the event loop.
            applied = await run_in_threadpool(
                kit.handle_gateway_webhook, gateway, request.headers, body
            )
        except UnknownGateway:
            return _unknown(gateway)
        except (WebhookVerificationError, CardDataRefused) as exc:  # the sender's mistake: 400
            log.warning("refused a webhook for %s: %s (%s)", gateway, exc.code, exc)
            return _error(400, exc.code, str(exc))
        except WebhookUnprocessable as exc:
            return await run_in_threadpool(_acknowledge, kit, gateway, exc, body)
        except Exception:
            log.exception("a webhook for %s could not be applied; the gateway will retry", gateway)
            return _error(500, "internal_error", "the webhook could not be applied")
        return JSONResponse(
            {"received": True, "refunds": [{"id": r.id, "status": r.status.value} for r in applied]}
        )

    app = BodyLimit(request_response(receive), max_body_bytes)
    return [Route(PATH, app, methods=["POST"])]


def _acknowledge(
    kit: RefundKit, gateway: str, exc: WebhookUnprocessable, body: bytes
) -> JSONResponse:
    """Keep an authentic but unreadable delivery and answer 200, so the gateway stops
    retrying it; 500 (retried) only when even the record cannot be written."""
    digest = hashlib.sha256(body).hexdigest()
    record = st.UnprocessableWebhook(
        gateway=gateway,
        received_at=kit.clock(),
        error_code=exc.code,
        message=str(exc)[:500],
        body_sha256=digest,
        body_bytes=len(body),
    )
    try:
        with kit.store.core_transaction() as conn:
            record_id = st.insert_unprocessable_webhook(conn, record)
    except RefundkitError as store_exc:
        log.error("an unprocessable %s webhook could not be recorded: %s", gateway, store_exc)
        return _error(500, "internal_error", "the webhook could not be recorded")
    # The message is the plugin's, card numbers masked (RefundkitError); never the body.
    log.warning(
        "acknowledged an unprocessable %s webhook (record %s, sha256 %s, %d bytes): %s",
        gateway, record_id, digest, len(body), exc,
    )  # fmt: skip
    return JSONResponse(
        {
            "received": True,
            "refunds": [],
            "unprocessable": {"code": exc.code, "message": str(exc), "record": record_id},
        }
    )


def webhook_app(
    kit: RefundKit,
    *,
    max_body_bytes: int = WEBHOOK_MAX_BODY_BYTES,
    sandbox: bool | None = None,
    **options: Any,
) -> Starlette:
    """A Starlette app serving only ``POST /webhooks/{gateway}``."""
    routes = webhook_routes(kit, max_body_bytes=max_body_bytes, sandbox=sandbox)
    return Starlette(routes=routes, **options)


def _unknown(gateway: str) -> JSONResponse:
    return _error(404, "unknown_gateway", f"no gateway named {gateway!r} is installed")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

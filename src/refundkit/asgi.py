"""Inbound gateway webhooks over HTTP: an ASGI app (Starlette) with ``POST /webhooks/{gateway}``.

The raw body and headers go to ``kit.handle_gateway_webhook``, which has the gateway plugin's
``parse_webhook`` verify and read them and applies each refund update once. Answers:

- 200 with the refunds it moved: applied, a duplicate (nothing changes twice), or about a refund
  refundkit does not know (logged; acknowledged so the gateway stops retrying);
- 400 when the signature is missing, wrong or stale, or the body is malformed: nothing changes;
- 404 for a gateway that is not installed; 500 (the gateway will retry) for anything else.

Mount ``webhook_routes(kit)`` into another Starlette app (the dashboard), or serve
``webhook_app(kit)`` on its own, e.g. ``uvicorn --factory``. Starlette is imported only here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._errors import CardDataRefused, UnknownGateway, WebhookVerificationError

if TYPE_CHECKING:
    from ._kit import RefundKit

__all__ = ["webhook_app", "webhook_routes"]

log = logging.getLogger("refundkit.webhooks")

#: The only path this module serves; another app mounting the routes keeps it.
PATH = "/webhooks/{gateway}"


def webhook_routes(kit: RefundKit) -> list[Route]:
    """The route(s) to mount in a Starlette app."""

    async def receive(request: Request) -> JSONResponse:
        gateway = request.path_params["gateway"]
        body = await request.body()
        try:
            # Store and gateway calls block: keep them off the event loop.
            applied = await run_in_threadpool(
                kit.handle_gateway_webhook, gateway, request.headers, body
            )
        except UnknownGateway:
            return _error(404, "unknown_gateway", f"no gateway named {gateway!r} is installed")
        except (WebhookVerificationError, CardDataRefused) as exc:  # the sender's mistake: 400
            log.warning("refused a webhook for %s: %s (%s)", gateway, exc.code, exc)
            return _error(400, exc.code, str(exc))
        except Exception:
            log.exception("a webhook for %s could not be applied; the gateway will retry", gateway)
            return _error(500, "internal_error", "the webhook could not be applied")
        return JSONResponse(
            {"received": True, "refunds": [{"id": r.id, "status": r.status.value} for r in applied]}
        )

    return [Route(PATH, receive, methods=["POST"])]


def webhook_app(kit: RefundKit, **options: Any) -> Starlette:
    """A Starlette app serving only ``POST /webhooks/{gateway}``."""
    return Starlette(routes=webhook_routes(kit), **options)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

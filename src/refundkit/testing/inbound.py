"""Inbound gateway webhooks through the ASGI app: the same checks for every gateway plugin.

For test suites only: this module imports pytest, httpx and Starlette (``refundkit.asgi``).
``import refundkit`` never imports it.

A plugin's test arranges one ``InboundCase`` with a real kit: a refund made through the kit
(with the plugin's cassettes) whose outcome a gateway webhook announces, that webhook signed
the way the gateway signs it, and a validly signed webhook about a refund the kit has never
seen. Each check posts through ``webhook_app(kit)`` with ``httpx.ASGITransport``, so the
plugin's real ``parse_webhook`` verifies every delivery::

    from refundkit.testing.inbound import (
        BAD_SIGNATURES, InboundCase, check_applied_once, check_refused, check_unknown_refund,
    )

    def test_applied_once(kit, case):          # case: an InboundCase fixture
        check_applied_once(kit, case)

    @pytest.mark.parametrize("how", BAD_SIGNATURES)
    def test_bad_signature(kit, case, how):
        check_refused(kit, case, how)

The checks (R-1.8, R-4.4, R-4.6): a genuine delivery is 200 and moves the refund to its final
status; the same delivery again changes no row and adds no event; a tampered, unsigned or
signature-stripped delivery is 400 with a ``webhook_*`` error code and changes nothing; a
delivery about an unknown refund is 200, logged, and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, Final

import attrs
import httpx
import sqlalchemy as sa

from .._kit import RefundKit
from .._model import RefundStatus
from .._schema import metadata
from ..asgi import webhook_app
from .conformance import WebhookDelivery, tamper_webhook

__all__ = [
    "BAD_SIGNATURES",
    "InboundCase",
    "check_applied_once",
    "check_inbound_webhooks",
    "check_refused",
    "check_unknown_refund",
    "post_webhook",
    "snapshot",
    "strip_signature_headers",
]

#: The ways a delivery is refused, each checked by ``check_refused``.
BAD_SIGNATURES: Final = ("tampered", "unsigned", "stripped")


def strip_signature_headers(delivery: WebhookDelivery) -> WebhookDelivery:
    """The delivery without the headers whose name contains "sig" (where Stripe, Standard
    Webhooks and the sandbox carry the signature); every other header and the body kept."""
    headers, body = delivery
    return {k: v for k, v in headers.items() if "sig" not in k.lower()}, body


@attrs.frozen
class InboundCase:
    """One gateway's inbound webhooks, arranged with a real kit."""

    gateway: str
    #: The kit's refund that ``delivery`` is about.
    refund_id: str
    #: Signed as the gateway signs it; moves the refund from its status now to ``final``
    #: (pending → succeeded; succeeded → reversed for a gateway whose refunds succeed at once).
    delivery: WebhookDelivery
    final: RefundStatus
    #: Validly signed, about a refund this kit does not have.
    unknown: WebhookDelivery
    #: ``delivery`` changed where its signature covers it, still well-formed, its signature
    #: kept; None: ``tamper_webhook(delivery)`` (one byte of the body changed). Give one when
    #: the gateway signs only some fields, or when a changed byte would only garble the body
    #: (base64 in a form field), so the refusal proves the signature check, not the parser.
    tampered: WebhookDelivery | None = None
    #: Removes the signature wherever the gateway carries it (a header, a form field, a JSON
    #: field), keeping everything else.
    strip_signature: Callable[[WebhookDelivery], WebhookDelivery] = strip_signature_headers


def post_webhook(kit: RefundKit, gateway: str, delivery: WebhookDelivery) -> httpx.Response:
    """POST ``delivery`` to ``/webhooks/{gateway}`` of ``webhook_app(kit)`` with httpx."""
    headers, body = delivery

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=webhook_app(kit))
        async with httpx.AsyncClient(transport=transport, base_url="http://refundkit") as client:
            return await client.post(f"/webhooks/{gateway}", headers=dict(headers), content=body)

    return asyncio.run(go())


def snapshot(kit: RefundKit) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order: "nothing changed" compares two of these."""
    with kit.store.connect() as conn:
        return {
            table.name: [
                tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))
            ]
            for table in metadata.sorted_tables
        }


def bad_delivery(case: InboundCase, how: str) -> WebhookDelivery:
    """``case.delivery`` made bad in one of the ``BAD_SIGNATURES`` ways."""
    if how == "tampered":
        return case.tampered or tamper_webhook(case.delivery)
    stripped = case.strip_signature(case.delivery)
    if how == "stripped":
        return stripped
    if how == "unsigned":  # and no credentials at all: only the content type is left
        headers, body = stripped
        return {k: v for k, v in headers.items() if k.lower() == "content-type"}, body
    raise ValueError(f"{how!r} is none of {BAD_SIGNATURES}")


def check_applied_once(kit: RefundKit, case: InboundCase) -> None:
    """R-1.8, R-4.6: 200 and the refund moves to ``final``; the duplicate changes nothing."""
    response = post_webhook(kit, case.gateway, case.delivery)
    assert response.status_code == 200, response.text
    assert response.json()["refunds"] == [{"id": case.refund_id, "status": case.final.value}]
    assert kit.get_refund(case.refund_id).status is case.final
    after_first = snapshot(kit)
    events = [e.id for e in kit.events()]

    again = post_webhook(kit, case.gateway, case.delivery)  # gateways deliver at least once
    assert again.status_code == 200, again.text
    assert snapshot(kit) == after_first, "a duplicate delivery changed a row"
    assert [e.id for e in kit.events()] == events


def check_refused(kit: RefundKit, case: InboundCase, how: str) -> None:
    """R-4.4: a tampered, unsigned or signature-stripped delivery is 400 and changes nothing."""
    status = kit.get_refund(case.refund_id).status
    before = snapshot(kit)
    response = post_webhook(kit, case.gateway, bad_delivery(case, how))
    assert response.status_code == 400, f"{how}: {response.status_code} {response.text}"
    assert response.json()["error"]["code"].startswith("webhook_")
    assert snapshot(kit) == before
    assert kit.get_refund(case.refund_id).status is status


def check_unknown_refund(kit: RefundKit, case: InboundCase) -> None:
    """A signed delivery about a refund refundkit does not know: 200 (so the gateway stops
    retrying), a warning in the log, nothing changed."""
    before = snapshot(kit)
    with _warnings("refundkit") as records:
        response = post_webhook(kit, case.gateway, case.unknown)
    assert response.status_code == 200, response.text
    assert response.json()["refunds"] == []
    assert snapshot(kit) == before
    assert any("does not know" in r.getMessage() for r in records), [
        r.getMessage() for r in records
    ]


def check_inbound_webhooks(kit: RefundKit, case: InboundCase) -> None:
    """Every check on one kit, the refusals first (while the refund has not moved yet)."""
    for how in BAD_SIGNATURES:
        check_refused(kit, case, how)
    check_unknown_refund(kit, case)
    check_applied_once(kit, case)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _warnings(name: str) -> Iterator[list[logging.LogRecord]]:
    """Collect the warnings logged under ``name`` (from any thread) while inside."""
    logger = logging.getLogger(name)
    handler, level = _Collect(), logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.WARNING):
        logger.setLevel(logging.WARNING)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

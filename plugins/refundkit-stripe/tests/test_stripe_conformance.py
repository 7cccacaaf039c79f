"""The gateway conformance suite on Stripe's cassettes (issue 4: "Done means", point 1).

The cassettes match the form body and the Idempotency-Key header, so every refund the suite
sends carries ``metadata[refundkit_refund_id]`` (R-2.10) and the kit's key as a header, never
as a form field (R-1.4).

The gateway-truth scenarios (issue 15) get Stripe's declarations here: the refund statuses of
Stripe's OpenAPI specification and the plugin's status table, Stripe's ``error`` body, 5xx
answers built as one-interaction cassettes on the fly, and refunds' lives as Stripe announces
them (``refund.updated``, ``refund.failed``), signed like every test delivery.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import pytest
import refundkit_stripe
import yaml  # type: ignore[import-untyped]
from _stripe_cassettes import CONFORMANCE, FIXTURES, create_refund, error_body
from _stripe_support import STRIPE_VCR, StripeHarness
from _stripe_webhooks import signed_refund_delivery
from refundkit_stripe import _errors as stripe_errors

from refundkit import GatewayRefundRequest, Money
from refundkit.testing import (
    GatewayConformance,
    Report,
    StatusTable,
    WebhookHistory,
)

#: The plugin's status table (a refund's status → the kit's outcome).
STATUS_TABLE: Final = refundkit_stripe.STATUS_TABLE


def spec_statuses() -> frozenset[str]:
    """The refund statuses Stripe's OpenAPI specification lists (``refund.status``)."""
    spec = json.loads((FIXTURES / "openapi" / "spec3.2023-09-12.subset.json").read_text())
    text = spec["components"]["schemas"]["refund"]["properties"]["status"]["description"]
    return frozenset(re.findall(r"`([a-z_]+)`", text))


#: Refunds' lives as Stripe announces them: (event type, status, previous status) each.
LIVES: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    "succeeded": (
        ("refund.updated", "pending", "requires_action"),
        ("refund.updated", "succeeded", "pending"),
    ),
    "failed": (
        ("refund.updated", "pending", "requires_action"),
        ("refund.failed", "failed", "pending"),
    ),
    "canceled": (("refund.updated", "canceled", "requires_action"),),
    # A card refund fails after it succeeded: refund.failed, its status now failed.
    "succeeded_then_failed": (
        ("refund.updated", "succeeded", "pending"),
        ("refund.failed", "failed", "succeeded"),
    ),
}
_REASONS: Final = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class StripeTruthHarness(StripeHarness):
    """``StripeHarness`` with Stripe's declarations for the gateway-truth scenarios."""

    error_codes = (
        *stripe_errors.REFUSALS,
        *stripe_errors.NOT_FOUND,
        "rate_limit",
        "lock_timeout",
        "idempotency_key_in_use",
    )

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self._directory = directory
        self._built = 0

    def status_table(self) -> StatusTable:
        return StatusTable(statuses=spec_statuses(), table=STATUS_TABLE)

    def error_body(self, code: str, message: str) -> bytes:
        return json.dumps(error_body(code, message, type_="api_error")).encode()

    @contextlib.contextmanager
    def server_error(self, status: int, body: bytes) -> Iterator[GatewayRefundRequest]:
        """The full_refund request, answered ``status`` with ``body`` every time it is sent
        (the SDK's own retries replay the same answer)."""
        case = CONFORMANCE["full_refund"]
        interaction: dict[str, Any] = create_refund(case, 200, {})
        interaction["response"].update(
            status={"code": status, "message": _REASONS.get(status, "Server Error")},
            body={"string": body},
        )
        self._built += 1
        path = self._directory / f"server_error_{self._built}.yaml"
        path.write_text(yaml.dump({"version": 1, "interactions": [interaction]}))
        self._client.drop_next = False
        with STRIPE_VCR.use_cassette(str(path), allow_playback_repeats=True):
            yield GatewayRefundRequest(
                refund_id=case.refund_id,
                payment_id=f"pay_{case.charge}",
                gateway_payment_id=case.charge,
                amount=Money(case.refund_amount, case.currency),
                idempotency_key=case.key,
                reason="requested_by_customer",
            )

    @contextlib.contextmanager
    def webhook_histories(self) -> Iterator[Sequence[WebhookHistory]]:
        yield [self._history(name, life) for name, life in LIVES.items()]

    def _history(self, name: str, life: tuple[tuple[str, str, str], ...]) -> WebhookHistory:
        refund_id, gateway_refund_id = f"rf_history_{name}", f"re_rkHistory{name.title()}"
        reports = [
            Report(
                signed_refund_delivery(
                    refund_id,
                    gateway_refund_id,
                    status=status,
                    previous_status=previous,
                    event_type=event_type,
                    event_id=f"evt_rkHistory{name.title()}{n}",
                ),
                status,
            )
            for n, (event_type, status, previous) in enumerate(life)
        ]
        return WebhookHistory(name, Money(1000, "USD"), gateway_refund_id, refund_id, reports)


class TestStripeConformance(GatewayConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[StripeTruthHarness]:
        with StripeTruthHarness(tmp_path) as harness:
            yield harness

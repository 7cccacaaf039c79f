"""The gateway conformance suite, run against Braintree on its built cassettes.

The gateway-truth scenarios (issue 15) get Braintree's declarations here: the transaction
statuses of the SDK (``braintree.Transaction.Status``) and the plugin's table of a credit's
statuses, Braintree's ``api-error-response`` body, 5xx answers from an HTTP strategy that
answers the refund request itself (the SDK reads only the status of a 5xx), and refunds' lives
as Braintree notifies them (``transaction_settled``, ``transaction_settlement_declined``,
``refund_failed``), signed like every test delivery.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Final
from xml.sax.saxutils import escape

import pytest
from _braintree_support import CONFORMANCE, BraintreeHarness, gateway
from _braintree_webhooks import delivery, notification_xml
from refundkit_braintree import _errors as braintree_errors
from refundkit_braintree import _gateway as braintree_gateway

from refundkit import GatewayRefundRequest, Money
from refundkit.testing import (
    GatewayConformance,
    Report,
    StatusTable,
    WebhookHistory,
)

Http = braintree_gateway.import_braintree().util.http.Http

#: The plugin's status table (a credit transaction's status → the kit's outcome).
STATUS_TABLE: Final = braintree_gateway.CREDIT_STATUSES


def sdk_statuses() -> frozenset[str]:
    """Every transaction status the SDK names (``braintree.Transaction.Status``)."""
    status = braintree_gateway.import_braintree().Transaction.Status
    return frozenset(
        value
        for name, value in vars(status).items()
        if not name.startswith("_") and isinstance(value, str)
    )


#: Refunds' lives as Braintree notifies them: (notification kind, the credit's status) each.
LIVES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "succeeded": (("transaction_settled", "settled"),),
    "failed": (("transaction_settlement_declined", "settlement_declined"),),
    "succeeded_then_failed": (
        ("transaction_settled", "settled"),
        ("refund_failed", "processor_declined"),
    ),
}


class AnsweringHttp(Http):  # type: ignore[misc,valid-type]
    """Answers every request itself, with the status and body set on the class."""

    answer: tuple[int, bytes] = (500, b"")

    def http_do(self, verb: str, path: str, headers: Any, body: Any) -> list[Any]:
        status, text = AnsweringHttp.answer
        return [status, text]


class BraintreeTruthHarness(BraintreeHarness):
    """``BraintreeHarness`` with Braintree's declarations for the gateway-truth scenarios."""

    error_codes = tuple(braintree_errors.VALIDATION_CODES)

    def status_table(self) -> StatusTable:
        return StatusTable(statuses=sdk_statuses(), table=STATUS_TABLE)

    def error_body(self, code: str, message: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<api-error-response><errors>'
            '<transaction><errors type="array"><error>'
            f"<code>{escape(code)}</code><attribute>base</attribute>"
            f"<message>{escape(message)}</message>"
            "</error></errors></transaction></errors>"
            f"<message>{escape(message)}</message></api-error-response>"
        ).encode()

    @contextlib.contextmanager
    def server_error(self, status: int, body: bytes) -> Iterator[GatewayRefundRequest]:
        plan = CONFORMANCE["full_refund"]
        AnsweringHttp.answer = (status, body)
        answering = gateway(http_strategy=AnsweringHttp)
        before, self._gateway = self._gateway, answering
        try:
            yield GatewayRefundRequest(
                refund_id=plan.refund_id,
                payment_id=f"pay_{plan.sale_id}",
                gateway_payment_id=plan.sale_id,
                amount=plan.refund_amount,
                idempotency_key=plan.idempotency_key,
            )
        finally:
            self._gateway = before
            answering.close()

    @contextlib.contextmanager
    def webhook_histories(self) -> Iterator[Sequence[WebhookHistory]]:
        yield [self._history(name, life) for name, life in LIVES.items()]

    def _history(self, name: str, life: tuple[tuple[str, str], ...]) -> WebhookHistory:
        credit, refund_id = f"rkcr{name.replace('_', '')}"[:16], f"rf_{name}"
        amount = Money(1000, "USD")
        reports = [
            Report(delivery(notification_xml(kind, credit, refund_id, amount, status=s)), s)
            for kind, s in life
        ]
        return WebhookHistory(name, amount, credit, refund_id, reports)


class TestBraintreeConformance(GatewayConformance):
    @pytest.fixture
    def harness(self) -> Iterator[BraintreeTruthHarness]:
        with BraintreeTruthHarness() as harness:
            yield harness

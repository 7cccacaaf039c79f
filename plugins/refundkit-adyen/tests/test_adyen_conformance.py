"""The shared gateway conformance suite, run for Adyen on its cassettes (received → webhook).

The gateway-truth scenarios (issue 15) get Adyen's declarations here: the refund statuses
Adyen's specifications name (the Checkout API's ``received`` and the refund webhooks' event
codes, with ``success`` where it decides) and the plugin's status table, Adyen's error body,
5xx answers built as one-interaction cassettes on the fly, and refunds' lives as Adyen
notifies them (``REFUND``, ``REFUND_FAILED``, ``REFUNDED_REVERSED``), signed like every test
delivery.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pytest
import vcr
import yaml  # type: ignore[import-untyped]
from _adyen_cassettes import CASES, EVENT_CODES_SPEC, _same_request, adyen_value, interactions
from _adyen_harness import AdyenHarness
from _adyen_webhooks import signed_refund_delivery
from refundkit_adyen import OTHER_EVENTS, STATUS_TABLE
from refundkit_adyen import _errors as adyen_errors
from refundkit_adyen._gateway import REPLY_STATUSES

from refundkit import GatewayRefundRequest, Money
from refundkit.testing import (
    GatewayConformance,
    Report,
    StatusTable,
    WebhookHistory,
)

SPEC_EVENTS: Final[dict[str, list[str]]] = json.loads(EVENT_CODES_SPEC.read_text())

#: Every status Adyen reports a refund in, in its words: the refund reply's ``status`` enum
#: (Checkout API v72) and each refund eventCode of the Webhooks API's enum with each ``success``
#: value (the codes the plugin places among ``OTHER_EVENTS`` say nothing about a refund; its
#: own status walk, test_adyen_statuses.py, checks that every code of the spec is placed).
ADYEN_STATUSES: Final = frozenset(
    {*REPLY_STATUSES}
    | {
        f"{code}:{success}"
        for code in {*SPEC_EVENTS["eventCodes"], *SPEC_EVENTS["webhooks"]} - set(OTHER_EVENTS)
        for success in ("true", "false")
    }
)


def plugin_table() -> Mapping[str, str]:
    """The plugin's status table, keyed as ``ADYEN_STATUSES``."""
    return STATUS_TABLE


#: Refunds' lives as Adyen notifies them: (delivery kind of _adyen_webhooks, status) each.
LIVES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "succeeded": (("success", "REFUND:true"),),
    "failed": (("failure", "REFUND:false"),),
    "succeeded_then_failed": (("success", "REFUND:true"), ("refund_failed", "REFUND_FAILED:true")),
    "succeeded_then_reversed": (("success", "REFUND:true"), ("reversed", "REFUNDED_REVERSED:true")),
}


class AdyenTruthHarness(AdyenHarness):
    """``AdyenHarness`` with Adyen's declarations for the gateway-truth scenarios."""

    error_codes = (*adyen_errors.BY_CODE_4XX, "000", "703", "00_500", "100", "905")

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self._directory = directory
        self._built = 0

    def status_table(self) -> StatusTable:
        return StatusTable(statuses=ADYEN_STATUSES, table=plugin_table())

    def error_body(self, code: str, message: str) -> bytes:
        body = {"status": 500, "errorCode": code, "message": message, "errorType": "internal"}
        return json.dumps(body).encode()

    @contextlib.contextmanager
    def server_error(self, status: int, body: bytes) -> Iterator[GatewayRefundRequest]:
        """The full_refund request, answered ``status`` with ``body``."""
        case = CASES["conformance/full_refund"]
        interaction: dict[str, Any] = next(interactions(case))
        interaction["response"].update(
            status={"code": status, "message": "Server Error"}, body={"string": body}
        )
        self._built += 1
        path = self._directory / f"server_error_{self._built}.yaml"
        path.write_text(yaml.dump({"version": 1, "interactions": [interaction]}))
        # Not adyen_vcr(): its scrubber would decode the odd bodies the scenario sends.
        replay = vcr.VCR(
            record_mode="none", match_on=["method", "scheme", "host", "path", "adyen_request"]
        )
        replay.register_matcher("adyen_request", _same_request)
        with replay.use_cassette(str(path), allow_playback_repeats=True):
            yield GatewayRefundRequest(
                refund_id=case.refund_id,
                payment_id=f"pay_{case.payment_psp}",
                gateway_payment_id=case.payment_psp,
                amount=Money(case.refund_amount, case.currency),
                idempotency_key=case.key,
                reason=case.reason,
            )

    @contextlib.contextmanager
    def webhook_histories(self) -> Iterator[Sequence[WebhookHistory]]:
        yield [self._history(n, name, life) for n, (name, life) in enumerate(LIVES.items())]

    def _history(self, n: int, name: str, life: tuple[tuple[str, str], ...]) -> WebhookHistory:
        case = CASES["conformance/webhook_succeeded"]
        refund_id, psp = f"rf_adyen_history_{name}", f"RFNDHIST8HXSKG{n:02d}B"
        reports = [
            Report(
                signed_refund_delivery(
                    kind,
                    refund_id=refund_id,
                    gateway_refund_id=psp,
                    gateway_payment_id=case.payment_psp,
                    value=adyen_value(case, case.refund_amount),
                    currency=case.currency,
                ),
                status,
            )
            for kind, status in life
        ]
        amount = Money(case.refund_amount, case.currency)
        return WebhookHistory(name, amount, psp, refund_id, reports)


class TestAdyenConformance(GatewayConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[AdyenTruthHarness]:
        with AdyenTruthHarness(tmp_path) as harness:
            yield harness

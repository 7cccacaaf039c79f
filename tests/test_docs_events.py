"""docs/events.md documents every event type with exactly the fields refundkit emits (R-4.7:
amounts are integer minor units, the card is masked)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from refundkit import Card, Destination, Money, RefundKit
from refundkit._events import EVENT_TYPES
from refundkit._pans import find_pans
from refundkit.gateways.sandbox import SandboxGateway

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"
_JSON = re.compile(r"^```json\n(.*?)^```", re.MULTILINE | re.DOTALL)


def shape(value: Any) -> Any:
    """The key tree of a JSON value, with leaves reduced to their type names."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


def documented() -> dict[str, dict[str, Any]]:
    examples = [json.loads(block) for block in _JSON.findall(DOC.read_text(encoding="utf-8"))]
    return {e["type"]: e for e in examples}


def emitted(kit: RefundKit, sandbox: SandboxGateway) -> dict[str, dict[str, Any]]:
    """One real event of each type."""
    kit.record_payment(
        id="pay_1", customer_id="cus_1", amount=Money(5000, "USD"), gateway="sandbox",
        gateway_payment_id="sbx_ch_1", destination=Destination.INVOICE,
        card=Card(brand="visa", last4="4242", exp_month=12, exp_year=2030),
    )  # fmt: skip
    sandbox.script("pending_fail")
    kit.refund("pay_1", Money(1500, "USD"), reason="requested_by_customer")
    [(headers, body)] = sandbox.settle_pending()
    kit.handle_gateway_webhook("sandbox", headers, body)
    done = kit.refund("pay_1", Money(1500, "USD"), reason="requested_by_customer")
    assert done.gateway_refund_id is not None
    kit.handle_gateway_webhook("sandbox", *sandbox.reverse(done.gateway_refund_id))
    sandbox.dashboard_refund("sbx_ch_1", Money(700, "USD"))
    kit.reconcile("pay_1")  # imports the dashboard refund: refund.external
    return {e.type: e.to_dict() for e in kit.events()}


def test_every_event_type_has_its_section_and_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    for etype in EVENT_TYPES:
        assert f"## `{etype}`" in text
    assert set(documented()) == set(EVENT_TYPES)


def test_examples_have_exactly_the_emitted_fields(kit: RefundKit, sandbox: SandboxGateway) -> None:
    real = emitted(kit, sandbox)
    assert set(real) == set(EVENT_TYPES)
    docs = documented()
    for etype in EVENT_TYPES:
        assert shape(docs[etype]) == shape(real[etype]), etype


def test_emitted_payloads_carry_no_float_and_no_card_number(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """R-4.7: integer minor units and the masked card only."""

    def leaves(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [x for v in value.values() for x in leaves(v)]
        return [value]

    for event in emitted(kit, sandbox).values():
        assert not any(isinstance(v, float) for v in leaves(event))
        assert find_pans(json.dumps(event)) == []
        assert set(event["data"]["card"]) <= {"brand", "last4", "first6", "exp_month", "exp_year"}

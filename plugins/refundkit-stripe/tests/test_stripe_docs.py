"""docs/stripe.md describes what the plugin does: its configuration keys, every Stripe refund
status, every refusal code and every refund event it reads."""

from __future__ import annotations

import inspect

from _stripe_cassettes import ROOT
from refundkit_stripe import _gateway
from refundkit_stripe._errors import REFUSALS

PAGE = (ROOT / "docs" / "stripe.md").read_text()


def test_every_configuration_key_is_documented() -> None:
    source = inspect.getsource(_gateway.StripeGateway)
    keys = ["api_key", "webhook_secret", "timeout", "max_network_retries", "retry_delay",
            "webhook_tolerance"]  # fmt: skip
    for key in keys:
        assert f'"{key}"' in source, f"StripeGateway does not read {key!r}"
        assert f"| `{key}` |" in PAGE, f"docs/stripe.md has no row for {key!r}"
    for env in (_gateway.API_KEY_ENV, _gateway.WEBHOOK_SECRET_ENV):
        assert env in PAGE


def test_every_status_code_and_event_is_documented() -> None:
    for status in ("succeeded", "pending", "requires_action", "failed", "canceled"):
        assert f"| `{status}` |" in PAGE, f"no status row for {status!r}"
    for code in REFUSALS:
        assert f"`{code}`" in PAGE, f"docs/stripe.md does not name {code!r}"
    for event in (*_gateway.REFUND_EVENTS, *_gateway.CHARGE_EVENTS):
        assert f"`{event}`" in PAGE, f"docs/stripe.md does not name {event!r}"
    assert f"metadata[{_gateway.METADATA_KEY}]" in PAGE

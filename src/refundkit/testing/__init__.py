"""Test helpers for refundkit and its gateway plugins, chiefly the gateway conformance suite.

For test suites only: importing ``refundkit.testing`` imports pytest and Hypothesis (which a
plugin's test dependencies must include); ``import refundkit`` never imports this package.

Plugin authors subclass ``GatewayConformance`` and give it a ``harness`` fixture returning a
``ConformanceHarness`` for their gateway; ``refundkit.testing.conformance`` explains how.
``SandboxHarness`` is the built-in sandbox gateway's harness; ``StatusTable``,
``WebhookHistory`` and ``Report`` are what a harness declares for the gateway-truth scenarios;
``find_pans`` finds card numbers in text (for tests proving card data never leaks).
``refundkit.testing.inbound`` holds the inbound-webhook checks through the ASGI app (it imports
httpx and Starlette, so it is imported on its own).
"""

from __future__ import annotations

import pytest

# Before the imports below, so the suite's asserts report the values they compared.
pytest.register_assert_rewrite(
    "refundkit.testing.conformance",
    "refundkit.testing._sandbox",
    "refundkit.testing._truth",
    "refundkit.testing.inbound",
)

from .._pans import find_pans, luhn_valid  # noqa: E402
from ._sandbox import SandboxHarness  # noqa: E402
from ._truth import (  # noqa: E402
    ODD_BODIES,
    REFUSAL_LIKE_CODES,
    SERVER_ERROR_STATUSES,
    Report,
    StatusTable,
    WebhookHistory,
    delivery_orders,
)
from .conformance import (  # noqa: E402
    DEFAULT_CURRENCIES,
    SCENARIOS,
    ConformanceHarness,
    GatewayConformance,
    Scenario,
    ScenarioNotSupported,
    WebhookDelivery,
    tamper_webhook,
)

__all__ = [
    "DEFAULT_CURRENCIES",
    "ODD_BODIES",
    "REFUSAL_LIKE_CODES",
    "SCENARIOS",
    "SERVER_ERROR_STATUSES",
    "ConformanceHarness",
    "GatewayConformance",
    "Report",
    "SandboxHarness",
    "Scenario",
    "ScenarioNotSupported",
    "StatusTable",
    "WebhookDelivery",
    "WebhookHistory",
    "delivery_orders",
    "find_pans",
    "luhn_valid",
    "tamper_webhook",
]

"""The shared gateway conformance suite, run for Adyen on its cassettes (received → webhook)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _adyen_harness import AdyenHarness

from refundkit.testing import GatewayConformance


class TestAdyenConformance(GatewayConformance):
    @pytest.fixture
    def harness(self) -> Iterator[AdyenHarness]:
        with AdyenHarness() as harness:
            yield harness

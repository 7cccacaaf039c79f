"""The gateway conformance suite, run against Braintree on its built cassettes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _braintree_support import BraintreeHarness

from refundkit.testing import GatewayConformance


class TestBraintreeConformance(GatewayConformance):
    @pytest.fixture
    def harness(self) -> Iterator[BraintreeHarness]:
        with BraintreeHarness() as harness:
            yield harness

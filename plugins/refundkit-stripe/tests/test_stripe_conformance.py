"""The gateway conformance suite on Stripe's cassettes (issue 4: "Done means", point 1).

The cassettes match the form body and the Idempotency-Key header, so every refund the suite
sends carries ``metadata[refundkit_refund_id]`` (R-2.10) and the kit's key as a header, never
as a form field (R-1.4).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _stripe_support import StripeHarness

from refundkit.testing import GatewayConformance


class TestStripeConformance(GatewayConformance):
    @pytest.fixture
    def harness(self) -> Iterator[StripeHarness]:
        with StripeHarness() as harness:
            yield harness

"""Replaying Stripe cassettes: the vcr configuration, a gateway wired to them, the harness."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import stripe
import vcr
from _stripe_cassettes import CASSETTES, CONFORMANCE, WEBHOOK_AT, WEBHOOK_SECRET
from _stripe_webhooks import delivery
from refundkit_stripe import StripeGateway
from refundkit_stripe._http import RetryingRequestsClient
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request

from refundkit import Money
from refundkit.testing import ConformanceHarness, Scenario

#: A placeholder key: cassettes replay, so Stripe never sees it.
API_KEY: Final = "sk_test_refundkit_placeholder"
CLOCK_AT: Final = datetime.fromtimestamp(WEBHOOK_AT, UTC)


def _idempotency_key(live: Request, recorded: Request) -> None:
    """A recorded request with an Idempotency-Key matches only a request with that key."""
    expected = recorded.headers.get("Idempotency-Key")
    if expected is not None:
        actual = live.headers.get("Idempotency-Key")
        assert actual == expected, f"Idempotency-Key {actual!r} != recorded {expected!r}"


def _body_if_recorded(live: Request, recorded: Request) -> None:
    """Compare form bodies when the cassette recorded one (kit-level cassettes do not)."""
    if recorded.body is not None:
        vcr.matchers.body(live, recorded)


STRIPE_VCR: Final = vcr.VCR(
    record_mode="none",
    decode_compressed_response=True,
    match_on=["method", "scheme", "host", "port", "path", "query", "stripe_body", "stripe_key"],
    filter_headers=["authorization", "x-stripe-client-user-agent", "x-stripe-client-telemetry"],
)
STRIPE_VCR.register_matcher("stripe_body", _body_if_recorded)
STRIPE_VCR.register_matcher("stripe_key", _idempotency_key)


class DroppingClient(RetryingRequestsClient):
    """Drops the reply of the next request after the cassette played it: the refund was
    applied at Stripe, but the plugin only sees a read timeout."""

    drop_next = False

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        if self.drop_next:
            self.drop_next = False
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                "Read timed out (reply dropped by the test)"
            )
        return response


def make_gateway(**config: Any) -> StripeGateway:
    base: dict[str, Any] = {
        "api_key": API_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "retry_delay": 0,  # tests never sleep
        "clock": lambda: CLOCK_AT,
    }
    return StripeGateway({**base, **config})


def not_a_cassette_miss(exc: BaseException | None) -> None:
    """Fail if ``exc`` (or a cause of it) is vcrpy's "no matching interaction"."""
    while exc is not None:
        assert not isinstance(exc, CannotOverwriteExistingCassetteException), (
            f"the cassette has no matching interaction: {exc}"
        )
        exc = exc.__cause__ or exc.__context__


@contextlib.contextmanager
def cassette(path: Path) -> Iterator[Any]:
    """Replay ``path``; every interaction must be played, and a miss fails the test."""
    assert path.is_file(), f"no cassette {path}"
    with STRIPE_VCR.use_cassette(str(path), allow_playback_repeats=False) as cass:
        try:
            yield cass
        except BaseException as exc:
            not_a_cassette_miss(exc)
            raise
    # None played: the suite only entered the scenario (to see that it is supported).
    assert cass.all_played or not cass.play_count, (
        f"{path.name}: {cass.play_count} of {len(cass)} interactions played"
    )


class StripeHarness(ConformanceHarness):
    """The conformance suite on ``cassettes/stripe/conformance/<scenario>.yaml``."""

    def __init__(self) -> None:
        self._client = DroppingClient(timeout=5, retry_delay=0)
        self._gateway = make_gateway(http_client=self._client)

    @property
    def gateway(self) -> StripeGateway:
        return self._gateway

    @contextlib.contextmanager
    def scenario(self, name: str) -> Iterator[Scenario]:
        case = CONFORMANCE[name]
        webhook = None
        if name == "webhook_succeeded":
            webhook = delivery("refund_updated_succeeded")
        elif name == "webhook_failed":
            webhook = delivery("refund_failed_after_success")
        self._client.drop_next = name == "unknown_then_lookup"
        with cassette(CASSETTES / "conformance" / f"{name}.yaml"):
            yield Scenario(
                gateway_payment_id=case.charge,
                amount=Money(case.amount, case.currency),
                refund_amount=Money(case.refund_amount, case.currency),
                refund_id=case.refund_id,
                idempotency_key=case.key,
                webhook=webhook,
            )

    def close(self) -> None:
        self._gateway.close()

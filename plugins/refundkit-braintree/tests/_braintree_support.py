"""Shared pieces of the Braintree plugin's tests: test configuration, the scenario plans the
cassettes were built with, the vcrpy setup and the conformance harness."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import requests
import vcr
from refundkit_braintree import BraintreeGateway
from refundkit_braintree._gateway import import_braintree

from refundkit import Money
from refundkit.testing import ConformanceHarness, Scenario

Http = import_braintree().util.http.Http

ROOT: Final = Path(__file__).resolve().parent.parent.parent.parent
CASSETTES: Final = ROOT / "cassettes" / "braintree"

#: Test credentials: placeholders, never real keys (the cassettes carry no Authorization).
MERCHANT_ID: Final = "rk0test0merchant"
PUBLIC_KEY: Final = "rk_test_public_key"
PRIVATE_KEY: Final = "rk_test_private_key"
TEST_CONFIG: Final[Mapping[str, Any]] = {
    "environment": "sandbox",
    "merchant_id": MERCHANT_ID,
    "public_key": PUBLIC_KEY,
    "private_key": PRIVATE_KEY,
}


@attrs.frozen
class Plan:
    """One built cassette's payment and refund (what its requests and replies hold)."""

    sale_id: str
    amount: Money
    refund_amount: Money
    refund_id: str
    idempotency_key: str

    @property
    def amount_wire(self) -> str:
        return _wire(self.amount)

    @property
    def refund_wire(self) -> str:
        return _wire(self.refund_amount)


def _wire(money: Money) -> str:
    return f"{money.amount // 100}.{money.amount % 100:02d}"


def _plan(sale: str, amount: int, refund: int, tag: str) -> Plan:
    return Plan(sale, Money(amount, "USD"), Money(refund, "USD"), f"rf_{tag}", f"rk-{tag}-1")


CONFORMANCE: Final[Mapping[str, Plan]] = {
    "full_refund": _plan("rkslfull", 4000, 4000, "full_refund"),
    "partial_refund": _plan("rkslpart", 4000, 2000, "partial_refund"),
    "over_refund": _plan("rkslover", 4000, 4001, "over_refund"),
    "idempotent_retry": _plan("rkslidem", 4000, 1500, "idempotent_retry"),
    "unknown_then_lookup": _plan("rkslook", 4000, 2000, "unknown_then_lookup"),
    "webhook_succeeded": _plan("rkslwhok", 4000, 1000, "webhook_succeeded"),
    "webhook_failed": _plan("rkslwhno", 4000, 1000, "webhook_failed"),
    "card_masking": _plan("rkslcard", 4000, 4000, "card_masking"),
}

EXTRA: Final[Mapping[str, Plan]] = {
    "two_partials": _plan("rksltwo", 4000, 2000, "two_partials"),
    "paypal": _plan("rkslpayp", 1273, 73, "paypal"),
    "unsettled": _plan("rkslunst", 4000, 1000, "unsettled"),
    "void_settled": _plan("rkslvset", 4000, 4000, "void_settled"),
    "not_found": _plan("rkslnone", 4000, 1000, "not_found"),
    "bad_credentials": _plan("rkslauth", 4000, 1000, "bad_credentials"),
    "rate_limited": _plan("rkslrate", 4000, 1000, "rate_limited"),
    "processor_declined": _plan("rksldecl", 4000, 1000, "processor_declined"),
    "kit_recover": _plan("rkslkitr", 4000, 2000, "kit_recover"),
}

#: Credit ids the built cassettes answer with, per conformance scenario.
CREDIT_IDS: Final[Mapping[str, str]] = {
    "webhook_succeeded": "rkcrwhok",
    "webhook_failed": "rkcrwhno",
}

BRAINTREE_VCR: Final = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    # The body too: the cassette proves what is sent (amount, order_id, api_request_key).
    match_on=["method", "scheme", "host", "port", "path", "query", "body"],
    decode_compressed_response=True,
    filter_headers=["authorization"],
)


class DroppedReplyHttp(Http):  # type: ignore[misc,valid-type]
    """Sends each request, but the reply to the first refund never arrives (a read timeout
    after Braintree applied it): how ``unknown_then_lookup`` makes a refund unknown."""

    dropped: bool = False

    def http_do(self, verb: str, path: str, headers: Any, body: Any) -> list[Any]:
        reply: list[Any] = super().http_do(verb, path, headers, body)
        if path.endswith("/refund") and not DroppedReplyHttp.dropped:
            DroppedReplyHttp.dropped = True
            raise requests.exceptions.ReadTimeout("read timed out (dropped by the test)")
        return reply


_KIT_IDS: Final = re.compile(
    rb"<(order_id|api_request_key)>[^<]*</\1>|<order_id><is>[^<]*</is></order_id>"
)


def normalise_kit_ids(request: Any) -> Any:
    """vcrpy ``before_record_request``: the kit's refund ids and keys are random, so bodies
    are compared with them blanked (vcrpy applies it to recorded and live requests alike)."""
    if request.body:
        request.body = _KIT_IDS.sub(rb"<\1>ID</\1>", request.body)
    return request


def gateway(**config: Any) -> BraintreeGateway:
    return BraintreeGateway({**TEST_CONFIG, **config})


@contextlib.contextmanager
def cassette(name: str) -> Iterator[Any]:
    """Replay ``cassettes/braintree/<name>.yaml``; once used, every interaction must play."""
    with BRAINTREE_VCR.use_cassette(f"{name}.yaml", allow_playback_repeats=False) as cass:
        yield cass
        if cass.play_count:
            assert cass.all_played, f"{name}: {len(cass.data) - cass.play_count} not played"


class BraintreeHarness(ConformanceHarness):
    """The conformance harness on the built cassettes (one per scenario)."""

    def __init__(self) -> None:
        self._gateway = gateway()
        self._dropping = gateway(http_strategy=DroppedReplyHttp)

    @property
    def gateway(self) -> BraintreeGateway:
        return self._gateway

    @contextlib.contextmanager
    def scenario(self, name: str) -> Iterator[Scenario]:
        plan = CONFORMANCE[name]
        # Only unknown_then_lookup drops a reply; the suite calls harness.gateway throughout.
        self._gateway = self._dropping if name == "unknown_then_lookup" else gateway()
        DroppedReplyHttp.dropped = False
        webhook = None
        if name in CREDIT_IDS:
            from _braintree_webhooks import signed_refund_delivery

            kind = "transaction_settled" if name == "webhook_succeeded" else "refund_failed"
            webhook = signed_refund_delivery(
                kind, CREDIT_IDS[name], plan.refund_id, plan.refund_amount, plan.sale_id
            )
        with cassette(f"conformance/{name}"):
            yield Scenario(
                gateway_payment_id=plan.sale_id,
                amount=plan.amount,
                refund_amount=plan.refund_amount,
                refund_id=plan.refund_id,
                idempotency_key=plan.idempotency_key,
                webhook=webhook,
            )

    def close(self) -> None:
        self._gateway.close()
        self._dropping.close()

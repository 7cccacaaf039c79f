"""Re-records ``cassettes/stripe/`` against Stripe's test mode, in one command::

    REFUNDKIT_STRIPE_API_KEY=sk_test_... \\
        python3 -m uv run python plugins/refundkit-stripe/tests/record_stripe.py [--out DIR]

For every case test mode can produce on demand it creates the payment the case needs (a
payment intent confirmed with a test ``pm_card_...``; not recorded), then makes the same
plugin calls the tests make under vcrpy ``record_mode="all"``. Each cassette is then cleaned
before it is written: request headers other than ``Content-Type`` and ``Idempotency-Key`` and
response headers other than Stripe's own are dropped (credentials and client telemetry never
reach the disk: vcrpy filters them while recording), Stripe's ids are rewritten to the ones
the tests use (``ch_rk…``, ``re_rk…``, ``pi_rk…``), and card data is scrubbed to brand, last 4
and expiry. A cassette that still holds a card number or a key is refused, not written.

The 429 ``lock_timeout``, the 5xx answers and the webhook events cannot be produced on demand
in test mode: they are left as ``_stripe_cassettes.py`` builds them (``BUILT_ONLY``; rewritten
from the builder, byte for byte, so ``--out`` gets a complete set), and the run says so. Never
run against Stripe yet: no machine that works on refundkit reaches it (cassettes/stripe/
README.md).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs
import stripe
import vcr
import yaml  # type: ignore[import-untyped]
from _stripe_cassettes import (
    API,
    CASSETTES,
    CONFORMANCE,
    EXTRA,
    INTENT,
    NOT_REPRODUCIBLE,
    ROOT,
    SECOND_REFUND,
    Case,
    build,
)
from _stripe_clean import FILTER_HEADERS, LeakError, cassette_text, clean
from refundkit_stripe import StripeGateway
from refundkit_stripe._gateway import API_KEY_ENV
from refundkit_stripe._http import RetryingRequestsClient

from refundkit import GatewayDeclined, GatewayError, GatewayRefundRequest, Money, RefundkitError

PROG: Final = "record_stripe"
#: Built, never recorded: test mode cannot answer 429 lock_timeout or a 5xx on demand (each
#: says so in its header), and webhook events are pushed to an endpoint, not answered.
BUILT_ONLY: Final = (
    *sorted(NOT_REPRODUCIBLE),
    "webhooks/refund_updated_succeeded.json",
    "webhooks/refund_failed_after_success.json",
    "webhooks/refund_failed_before_its_success.json",
)
#: The key the bad_key case sends (the one test_stripe_errors.py uses; Stripe refuses it).
WRONG_KEY: Final = "sk_test_wrong_key_for_this_test"


class UsageError(Exception):
    """A mistake of the person running the recorder: one line, exit 2."""


class RecordingError(Exception):
    """Stripe answered something the tests do not expect: nothing is written."""


# --- the key ---------------------------------------------------------------------------------


def checked_key(environ: Mapping[str, str]) -> str:
    """The test-mode key from ``$REFUNDKIT_STRIPE_API_KEY``; never echoes it."""
    key = environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise UsageError(f"set {API_KEY_ENV} to a test-mode key (sk_test_... or rk_test_...)")
    if key.startswith(("sk_live_", "rk_live_")):
        raise UsageError(f"{API_KEY_ENV} is a live key: the recorder takes test-mode keys only")
    if not key.startswith(("sk_test_", "rk_test_")):
        raise UsageError(f"{API_KEY_ENV} is not a secret or restricted test-mode key")
    return key


# --- the cases ----------------------------------------------------------------------------------


@attrs.define
class Session:
    """One run: the Stripe client that makes payments, the recording gateways, the id map."""

    key: str
    base: str | None = None  # a local fake's URL in the dry-run test; None is Stripe
    tag: str = attrs.field(factory=lambda: secrets.token_hex(4))
    sent: int = 0  # keys sent so far: each request of the run gets its own key
    sleep: Callable[[float], None] = time.sleep
    ids: dict[str, str] = attrs.field(factory=dict)
    _http: RetryingRequestsClient | None = None
    _clients: dict[str, stripe.StripeClient] = attrs.field(factory=dict)

    def client(self, key: str | None = None) -> stripe.StripeClient:
        """A client for ``key`` (the run's by default), all on one transport."""
        key = key or self.key
        if key not in self._clients:
            if self._http is None:
                self._http = RetryingRequestsClient(timeout=30, retry_delay=0)
            addresses: Any = {"api": self.base} if self.base else None
            self._clients[key] = stripe.StripeClient(
                key, base_addresses=addresses, max_network_retries=0, http_client=self._http
            )
        return self._clients[key]

    def close(self) -> None:
        if self._http is not None:
            self._http.close()  # type: ignore[no-untyped-call]
        self._http, self._clients = None, {}

    def gateway(self, key: str | None = None) -> StripeGateway:
        # No retries: a transient error would record a second interaction the tests never
        # ask for. The run fails instead; run it again.
        gateway = StripeGateway({"api_key": key or self.key, "max_network_retries": 0})
        gateway._client = self.client(key)  # the gateway's calls, on this run's base URL
        return gateway

    def pay(self, case: Case, payment_method: str, *, intent_id: str | None = None) -> str:
        """A confirmed payment intent for ``case``; maps its ids to the case's. The charge id."""
        intent = self.client().v1.payment_intents.create(
            params={
                "amount": case.amount,
                "currency": case.currency.lower(),
                "payment_method": payment_method,
                # Cards only, confirmed here: no redirect, so no return_url.
                "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                "confirm": True,
                "description": f"refundkit cassette {case.name}",
            }
        )
        charge = intent.latest_charge
        charge_id = charge if isinstance(charge, str) else getattr(charge, "id", None)
        if intent.status != "succeeded" or not charge_id:
            raise RecordingError(f"{case.name}: the payment intent is {intent.status}, no charge")
        self.ids[intent.id] = intent_id or f"pi_rk{case.token}"
        self.ids[charge_id] = case.charge
        return charge_id

    def key_for(self, case: Case, refund_id: str | None = None) -> tuple[str, str]:
        """A fresh Idempotency-Key for this run (Stripe keeps keys 24 h), mapped to the
        test's. Returns (sent, test's)."""
        wanted = f"refundkit-{refund_id}" if refund_id else case.key
        self.sent += 1
        sent = f"{wanted}-{self.tag}{self.sent:03d}"
        self.ids[sent] = wanted
        return sent, wanted

    def request(
        self, case: Case, payment: str, *, refund_id: str | None = None, amount: int | None = None
    ) -> GatewayRefundRequest:
        sent, _ = self.key_for(case, refund_id)
        return GatewayRefundRequest(
            refund_id=refund_id or case.refund_id,
            payment_id="pay_" + case.name,
            gateway_payment_id=payment,
            amount=Money(case.refund_amount if amount is None else amount, case.currency),
            idempotency_key=sent,
            reason="requested_by_customer",
        )

    def refunded(self, case: Case, request: GatewayRefundRequest, re_id: str | None = None) -> Any:
        result = self.gateway().refund(request)
        self.ids[str(result.gateway_refund_id)] = re_id or case.gateway_refund_id
        return result

    def wait_disputed(self, charge: str, attempts: int = 30) -> None:
        for _ in range(attempts):
            if self.client().v1.charges.retrieve(charge).disputed:
                return
            self.sleep(2)
        raise RecordingError(f"{charge} was not disputed after {attempts * 2} s")


def _declined(session: Session, request: GatewayRefundRequest, code: str) -> None:
    try:
        session.gateway().refund(request)
    except GatewayDeclined as exc:
        if exc.gateway_code == code:
            return
        raise RecordingError(f"Stripe declined with {exc.gateway_code!r}, not {code!r}") from exc
    raise RecordingError(f"Stripe accepted a refund the tests expect declined ({code})")


def _refused(session: Session, request: GatewayRefundRequest, error: type[GatewayError],
             *, key: str | None = None) -> None:  # fmt: skip
    try:
        session.gateway(key).refund(request)
    except error:
        return
    except RefundkitError as exc:
        raise RecordingError(f"Stripe answered {exc!r}, not {error.__name__}") from exc
    raise RecordingError(f"Stripe accepted a refund the tests expect refused ({error.__name__})")


@attrs.frozen
class Recording:
    """One cassette: ``arrange`` (not recorded) makes the payment, ``act`` the recorded calls."""

    path: str
    case: Case
    arrange: Callable[[Session, Case], str]
    act: Callable[[Session, Case, str], None]
    kit: bool = False


def _visa(session: Session, case: Case) -> str:
    return session.pay(case, "pm_card_visa")


def _card(payment_method: str) -> Callable[[Session, Case], str]:
    return lambda session, case: session.pay(case, payment_method)


def _no_payment(session: Session, case: Case) -> str:
    return case.charge  # Stripe has no such charge


def _refund(session: Session, case: Case, charge: str) -> None:
    session.refunded(case, session.request(case, charge))


def _refund_then_fetch(session: Session, case: Case, charge: str) -> None:
    _refund(session, case, charge)
    session.gateway().fetch_payment(charge)


def _refund_twice_then_fetch(session: Session, case: Case, charge: str) -> None:
    request = session.request(case, charge)
    first = session.refunded(case, request)
    if session.refunded(case, request) != first:
        raise RecordingError(f"{case.name}: the same key made two refunds")
    session.gateway().fetch_payment(charge)


def _refund_then_lookups(session: Session, case: Case, charge: str) -> None:
    request = session.request(case, charge)
    session.refunded(case, request)
    gateway = session.gateway()
    if gateway.lookup_refund(request) is None:
        raise RecordingError(f"{case.name}: lookup_refund found nothing")
    unsent = attrs.evolve(request, refund_id=case.refund_id + "_unsent")
    if gateway.lookup_refund(unsent) is not None:
        raise RecordingError(f"{case.name}: lookup_refund found a refund never sent")


def _fetch(session: Session, case: Case, charge: str) -> None:
    session.gateway().fetch_payment(charge)


def _over_refund(session: Session, case: Case, charge: str) -> None:
    _declined(session, session.request(case, charge), "amount_too_large")


def _already_refunded(session: Session, case: Case) -> str:
    charge = session.pay(case, "pm_card_visa")
    session.client().v1.refunds.create(params={"charge": charge})  # the whole charge, first
    return charge


def _decline(code: str) -> Callable[[Session, Case, str], None]:
    return lambda session, case, charge: _declined(session, session.request(case, charge), code)


def _disputed(session: Session, case: Case) -> str:
    charge = session.pay(case, "pm_card_createDispute")
    session.wait_disputed(charge)
    return charge


def _unknown_charge(session: Session, case: Case, charge: str) -> None:
    from refundkit import GatewayPaymentNotFound

    _refused(session, session.request(case, charge), GatewayPaymentNotFound)


def _bad_key(session: Session, case: Case, charge: str) -> None:
    from refundkit import GatewayAuthenticationError

    _refused(session, session.request(case, charge), GatewayAuthenticationError, key=WRONG_KEY)


def _intent(session: Session, case: Case) -> str:
    session.pay(case, "pm_card_visa", intent_id=INTENT)
    return next(real for real, ours in session.ids.items() if ours == INTENT)


def _two_partial_refunds(session: Session, case: Case, intent: str) -> None:
    second_id, second_gateway_id, second_amount = SECOND_REFUND
    session.refunded(case, session.request(case, intent))
    request = session.request(case, intent, refund_id=second_id, amount=second_amount)
    session.refunded(case, request, second_gateway_id)
    payment = session.gateway().fetch_payment(intent)
    if payment.refunded != payment.amount:
        raise RecordingError(f"{case.name}: {payment.refunded} refunded of {payment.amount}")


def recordings() -> list[Recording]:
    c, e = CONFORMANCE, EXTRA
    pending, refund_fails = _card("pm_card_pendingRefund"), _card("pm_card_refundFail")
    return [
        Recording("conformance/full_refund.yaml", c["full_refund"], _visa, _refund),
        Recording("conformance/partial_refund.yaml", c["partial_refund"], _visa,
                  _refund_then_fetch),
        Recording("conformance/over_refund.yaml", c["over_refund"], _visa, _over_refund),
        Recording("conformance/idempotent_retry.yaml", c["idempotent_retry"], _visa,
                  _refund_twice_then_fetch),
        Recording("conformance/unknown_then_lookup.yaml", c["unknown_then_lookup"], _visa,
                  _refund_then_lookups),
        Recording("conformance/webhook_succeeded.yaml", c["webhook_succeeded"], pending, _refund),
        Recording("conformance/webhook_failed.yaml", c["webhook_failed"], refund_fails, _refund),
        Recording("conformance/card_masking.yaml", c["card_masking"], _visa, _fetch),
        Recording("errors/two_partial_refunds.yaml", e["two_partial_refunds"], _intent,
                  _two_partial_refunds),
        Recording("errors/charge_already_refunded.yaml", e["charge_already_refunded"],
                  _already_refunded,
                  _decline("charge_already_refunded")),
        Recording("errors/charge_disputed.yaml", e["charge_disputed"], _disputed,
                  _decline("charge_disputed")),
        Recording("errors/unknown_charge.yaml", e["unknown_charge"], _no_payment,
                  _unknown_charge),
        Recording("errors/bad_key.yaml", e["bad_key"], _no_payment, _bad_key),
        Recording("kit/pending_then_webhook.yaml", c["webhook_succeeded"], pending, _refund,
                  kit=True),
        Recording("kit/succeeded_then_webhook.yaml", c["webhook_failed"], refund_fails,
                  _refund, kit=True),
    ]  # fmt: skip


# --- the run ------------------------------------------------------------------------------------


def record_one(session: Session, recording: Recording, scratch: Path) -> list[dict[str, Any]]:
    """Arrange (unrecorded), act under vcrpy ``record_mode="all"``, return the cleaned
    interactions."""
    payment = recording.arrange(session, recording.case)
    path = scratch / recording.path.replace("/", "__")
    recorder = vcr.VCR(
        record_mode="all", decode_compressed_response=True, filter_headers=FILTER_HEADERS
    )
    with recorder.use_cassette(str(path)):
        recording.act(session, recording.case, payment)
    raw = yaml.safe_load(path.read_text())
    api = session.base or API
    return [clean(i, session.ids, api=api, kit=recording.kit) for i in raw["interactions"]]


def record(
    session: Session,
    out: Path,
    *,
    only: Sequence[str] = (),
    log: Callable[[str], None] = print,
    date: str | None = None,
) -> list[str]:
    """Records every case (or the ``only`` ones) into ``out``, and writes the built-only files
    from the builder. Nothing is written until every recording is cleaned and checked."""
    day = date or datetime.now(UTC).date().isoformat()
    files: dict[str, str] = {}
    chosen = [r for r in recordings() if not only or r.path in only or r.case.name in only]
    with tempfile.TemporaryDirectory(prefix="record_stripe-") as scratch:
        for recording in chosen:
            log(f"recording {recording.path}")
            interactions = record_one(session, recording, Path(scratch))
            files[recording.path] = cassette_text(interactions, session.key, day)
    built = build()
    files.update({name: built[name] for name in BUILT_ONLY})
    log(f"left as built (test mode cannot reproduce them): {', '.join(BUILT_ONLY)}")
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Re-record cassettes/stripe/ against Stripe's test mode, with the test-mode"
        f" key in ${API_KEY_ENV}. 429, 5xx and webhook cases are left as built.",
    )
    parser.add_argument("--out", type=Path, default=CASSETTES, help="default: cassettes/stripe")
    parser.add_argument(
        "--only", action="append", default=[], metavar="CASE", help="a case name or file; repeat"
    )
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = _parser().parse_args(argv)
    key = ""
    try:
        key = checked_key(environ)
        known = {r.path for r in recordings()} | {r.case.name for r in recordings()}
        unknown = sorted(set(args.only) - known)
        if unknown:
            raise UsageError(f"no such case: {', '.join(unknown)}")
        session = Session(key)
        try:
            written = record(session, args.out, only=args.only,
                             log=lambda line: print(line, file=sys.stderr))  # fmt: skip
        finally:
            session.close()
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except (RecordingError, LeakError, RefundkitError, stripe.StripeError) as exc:
        message = str(exc).replace(key, "<key>") if key else str(exc)
        print(f"{PROG}: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    for name in written:
        print(_shown(args.out / name))
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())

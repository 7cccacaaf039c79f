"""A fake of Stripe's test mode on 127.0.0.1, for a dry run of ``record_stripe.py``.

It answers the few endpoints the recorder calls the way test mode does (confirmed payment
intents from ``pm_card_...``, refunds with idempotency keys, the refusals, 401 for another
key), with bodies from the builder's Stripe shapes but Stripe-looking random ids, a card
fingerprint, a receipt URL, a billing name, a client secret, gzip and the headers Stripe
sends: everything the recorder must rewrite, scrub or drop.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import string
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import attrs
from _stripe_cassettes import STRIPE_VERSION, Case, charge_body, error_body, intent_body
from _stripe_cassettes import refund_body as built_refund

# In two pieces, like every made-up key in the tests, so secret scanners pass the file.
KEY: Final = "sk_" + "test_fakeStripeKeyForTheDryRun0123"
_LETTERS: Final = string.ascii_letters  # no digits: a fake id is never a card number


@attrs.define
class _Charge:
    id: str
    intent: str
    amount: int
    currency: str
    payment_method: str
    refunds: list[dict[str, Any]] = attrs.field(factory=list)

    @property
    def refunded(self) -> int:
        return sum(r["amount"] for r in self.refunds)

    @property
    def case(self) -> Case:
        return Case("fake", self.currency.upper(), self.amount, 0)


class FakeStripe:
    def __init__(self) -> None:
        self.random = random.Random(4242)
        self.charges: dict[str, _Charge] = {}
        self.intents: dict[str, _Charge] = {}
        self.replies: dict[str, tuple[int, dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def new_id(self, prefix: str, marker: str = "3Fake") -> str:
        """Stripe-looking; "3Fake" marks the ids the recorder must rewrite away."""
        return f"{prefix}_{marker}{''.join(self.random.choices(_LETTERS, k=19))}"

    # --- bodies ---------------------------------------------------------------------------

    def charge(self, charge: _Charge) -> dict[str, Any]:
        body = charge_body(charge.case, charge.refunded, payment_intent=charge.intent)
        body.update(
            id=charge.id,
            disputed=charge.payment_method == "pm_card_createDispute",
            receipt_url=f"https://pay.stripe.com/receipts/payment/{self.new_id('rcpt')}",
        )
        body["billing_details"]["name"] = "Jenny Rosen"
        body["payment_method_details"]["card"]["fingerprint"] = "FakeFingerprintAbc"
        body["refunds"] = {"object": "list", "data": charge.refunds, "has_more": False,
                           "total_count": len(charge.refunds),
                           "url": f"/v1/charges/{charge.id}/refunds"}  # fmt: skip
        return body

    def intent(self, charge: _Charge, *, expand: bool) -> dict[str, Any]:
        body = intent_body(charge.case, charge.refunded)
        body.update(
            id=charge.intent,
            client_secret=f"{charge.intent}_secret_{self.new_id('x')[2:]}",
            latest_charge=self.charge(charge) if expand else charge.id,
        )
        return body

    # --- endpoints ------------------------------------------------------------------------

    def pay(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        charge = _Charge(self.new_id("ch"), self.new_id("pi"), int(form["amount"]),
                         form["currency"], form["payment_method"])  # fmt: skip
        self.charges[charge.id] = self.intents[charge.intent] = charge
        return 200, self.intent(charge, expand=False)

    def refund(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        charge = self.charges.get(form.get("charge", "")) or self.intents.get(
            form.get("payment_intent", "")
        )
        if charge is None:
            missing = form.get("charge") or form.get("payment_intent")
            return 404, error_body("resource_missing", f"No such charge: '{missing}'",
                                   param="charge")  # fmt: skip
        left = charge.amount - charge.refunded
        amount = int(form.get("amount", left))
        if charge.payment_method == "pm_card_createDispute":
            return 400, error_body("charge_disputed", f"Charge {charge.id} has been charged back")
        if left == 0:
            return 400, error_body("charge_already_refunded", f"Charge {charge.id} is refunded")
        if amount > left:
            return 400, error_body("amount_too_large", "Refund amount is too large",
                                   param="amount")  # fmt: skip
        pending = charge.payment_method == "pm_card_pendingRefund"
        body = built_refund(charge.case, "pending" if pending else "succeeded", amount=amount,
                            payment_intent=charge.intent)  # fmt: skip
        body.update(
            id=self.new_id("re"),
            charge=charge.id,
            metadata={k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
        )
        charge.refunds.append(body)
        return 200, body

    def handle(self, method: str, url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        path, _, query = url.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/payment_intents":
            return self.pay(form)
        if method == "POST" and path == "/v1/refunds":
            return self.refund(form)
        if method == "GET" and path == "/v1/refunds":
            charge = self.charges[params["charge"]]
            return 200, {"object": "list", "data": charge.refunds, "has_more": False,
                         "url": "/v1/refunds"}  # fmt: skip
        if method == "GET" and parts[:2] == ["v1", "charges"] and parts[2] in self.charges:
            return 200, self.charge(self.charges[parts[2]])
        if method == "GET" and parts[:2] == ["v1", "payment_intents"]:
            expand = params.get("expand[0]") == "latest_charge"
            return 200, self.intent(self.intents[parts[2]], expand=expand)
        return 404, error_body("resource_missing", f"Unrecognized request URL ({method} {path})")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        key = self.headers.get("Idempotency-Key")
        headers = {"Request-Id": fake.new_id("req", "Kept"), "Idempotency-Key": key}
        with fake.lock:
            if self.headers.get("Authorization") != f"Bearer {KEY}":
                status, body = 401, error_body(None, "Invalid API Key provided: sk_test_****test")
                headers["Www-Authenticate"] = 'Bearer realm="Stripe"'
            elif key and self.command == "POST" and key in fake.replies:
                (status, body), headers["Idempotent-Replayed"] = fake.replies[key], "true"
            else:
                status, body = fake.handle(self.command, self.path, form)
                if key and self.command == "POST":
                    fake.replies[key] = (status, body)
        data = gzip.compress(json.dumps(body).encode())
        self.send_response(status)
        for name, value in {
            "Server": "nginx",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Content-Length": str(len(data)),
            "Set-Cookie": "__stripe_orig_props=fake; path=/",
            "Access-Control-Allow-Origin": "*",
            "Stripe-Version": self.headers.get("Stripe-Version") or STRIPE_VERSION,
            **headers,
        }.items():
            if value is not None:
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    fake: FakeStripe


@contextlib.contextmanager
def fake_stripe() -> Iterator[tuple[str, FakeStripe]]:
    """(base URL, fake) of a fake Stripe serving on 127.0.0.1 until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeStripe()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

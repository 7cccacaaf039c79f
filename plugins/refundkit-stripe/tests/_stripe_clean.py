"""Cleaning a cassette recorded from Stripe's test mode before it is written (for
``record_stripe.py``): keep only the headers the tests match or read, rewrite Stripe's ids to
the tests' ones, scrub card data to brand, last 4 and expiry, and refuse a file that would
still leak a card number or a key. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml  # type: ignore[import-untyped]
from _stripe_cassettes import API

from refundkit import find_pans

#: First line of every recorded cassette (built ones start with the builder's header).
RECORDED_HEADER: Final = (
    "# Recorded from Stripe's test mode by record_stripe.py ({date}); ids rewritten, card data"
    " scrubbed: cassettes/stripe/README.md\n"
    "# Source: Stripe's test mode, recorded {date} (the plugin's calls as the tests make them)\n"
)
RECORDED_PREFIX: Final = RECORDED_HEADER.split("(", 1)[0]
#: Dropped by vcrpy while recording: the key, and client telemetry (the machine's uname).
FILTER_HEADERS: Final = ["authorization", "x-stripe-client-user-agent", "x-stripe-client-telemetry"]
#: The only headers a cleaned cassette keeps (what the replaying tests match or read).
REQUEST_HEADERS: Final = ("Content-Type", "Idempotency-Key")
RESPONSE_HEADERS: Final = (
    "Content-Type",
    "Request-Id",
    "Stripe-Version",
    "Idempotency-Key",
    "Idempotent-Replayed",
    "Original-Request",
    "Stripe-Should-Retry",
    "Www-Authenticate",
)
#: Credentials by shape (as tests/test_cassettes.py scans for them).
_SECRETS: Final = re.compile(
    r"\b(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|whsec_[0-9A-Za-z+/]{24,})"
)
#: Card fields a cassette keeps; any other field of a card object is set to null.
CARD_KEEPS: Final = frozenset(
    {"brand", "display_brand", "last4", "exp_month", "exp_year", "country", "funding",
     "network", "networks", "checks", "three_d_secure", "wallet", "installments", "mandate",
     "network_token", "overcapture", "capture_before", "extended_authorization",
     "incremental_authorization", "multicapture", "regulated_status", "amount_authorized"}
)  # fmt: skip


class LeakError(Exception):
    """A cleaned cassette still holds a card number or a credential: it is not written."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _keep(headers: Mapping[str, Any], names: Sequence[str]) -> dict[str, list[str]]:
    wanted = {name.lower(): name for name in names}
    kept: dict[str, list[str]] = {}
    for name, values in headers.items():
        if name.lower() in wanted:
            listed = values if isinstance(values, list) else [values]
            kept[wanted[name.lower()]] = [str(_text(v)) for v in listed]
    return kept


def rewrite(text: str, ids: Mapping[str, str]) -> str:
    """Every real id (or tagged key) in ``text`` replaced by the tests' one; longest first, so
    an id that is a prefix of another is never half-replaced."""
    for real in sorted(ids, key=len, reverse=True):
        text = text.replace(real, ids[real])
    return text


def scrub(node: Any) -> Any:
    """Card data down to brand, last 4 and expiry; client secrets, receipt URLs and billing
    names to null. Returns a scrubbed copy."""
    if isinstance(node, list):
        return [scrub(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: scrub(value) for key, value in node.items()}
    if isinstance(out.get("last4"), str) and "exp_month" in out:  # a card
        out = {key: (value if key in CARD_KEEPS else None) for key, value in out.items()}
    for key in ("client_secret", "receipt_url", "receipt_email", "receipt_number"):
        if key in out:
            out[key] = None
    if isinstance(out.get("billing_details"), dict):
        details = out["billing_details"]
        for key in ("name", "email", "phone"):
            if key in details:
                details[key] = None
    return out


def _body(text: str | None, ids: Mapping[str, str]) -> str | None:
    if text is None:
        return None
    text = rewrite(text, ids)
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return json.dumps(scrub(parsed), indent=2, sort_keys=True) + "\n"


def clean(
    interaction: Mapping[str, Any], ids: Mapping[str, str], *, api: str = API, kit: bool = False
) -> dict[str, Any]:
    """One recorded interaction as the tests replay it. ``api``: the base URL it was recorded
    against (Stripe's, or a local fake's), rewritten to Stripe's. ``kit``: keep no request body
    or key (a kit makes up its refund ids), as the builder does."""
    request, response = interaction["request"], interaction["response"]
    uri = rewrite(str(request["uri"]).replace(api, API, 1), ids)
    request_headers = _keep(request.get("headers") or {}, REQUEST_HEADERS)
    response_headers = _keep(response.get("headers") or {}, RESPONSE_HEADERS)
    body = _text(request.get("body"))
    if kit:
        body, request_headers = None, {}
        response_headers.pop("Idempotency-Key", None)
    for headers in (request_headers, response_headers):
        for name, values in headers.items():
            headers[name] = [rewrite(v, ids) for v in values]
    return {
        "request": {
            "method": request["method"],
            "uri": uri,
            "body": rewrite(body, ids) if body else None,
            "headers": request_headers,
        },
        "response": {
            "status": dict(response["status"]),
            "headers": response_headers,
            "body": {"string": _body(_text(response["body"].get("string")), ids)},
        },
    }


def leaks(text: str, key: str) -> list[str]:
    found = [f"card number {pan[:6]}…{pan[-4:]}" for pan in find_pans(text)]
    if _SECRETS.search(text) or (key and key in text):
        found.append("an API key or signing secret")
    return found


def cassette_text(interactions: list[dict[str, Any]], key: str, date: str) -> str:
    """The file: the recorded header, then the cleaned interactions; refused if it leaks."""
    dumped: str = yaml.safe_dump(
        {"interactions": interactions, "version": 1}, sort_keys=False, allow_unicode=True
    )
    text = RECORDED_HEADER.format(date=date) + dumped
    found = leaks(text, key)
    if found:
        raise LeakError(f"a cleaned cassette still holds {', '.join(found)}; not written")
    return text

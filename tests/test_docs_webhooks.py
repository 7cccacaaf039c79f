"""docs/webhooks.md's consumer example runs: it verifies, dedupes a retry that comes days later
with a fresh timestamp and signature (R-4.4: dedupe over the whole retry horizon), and refuses
a tampered body."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from refundkit import WebhookVerificationError
from refundkit.webhooks import new_secret, signed_headers

from .conftest import T0

DOC = Path(__file__).resolve().parents[1] / "docs" / "webhooks.md"
_PYTHON = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def consumer() -> dict[str, Any]:
    [block] = [b for b in _PYTHON.findall(DOC.read_text(encoding="utf-8")) if "def handle(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


def test_the_consumer_dedupes_a_retry_days_later() -> None:
    ns = consumer()
    handle = cast(Callable[..., str], ns["handle"])
    secret = new_secret()
    body = b'{"id":"evt_1","type":"charge.refunded","data":{"refund":{"id":"rf_1"}}}'
    first = signed_headers(secret, "evt_1", int(T0.timestamp()), body)
    assert handle(first, body, secret, T0) == "processed"
    later = T0 + timedelta(days=3)
    retry = signed_headers(secret, "evt_1", int(later.timestamp()), body)
    assert handle(retry, body, secret, later) == "duplicate"
    assert ns["booked"] == ["rf_1"]
    with pytest.raises(WebhookVerificationError):
        handle(retry, body.replace(b"rf_1", b"rf_2"), secret, later)
    assert ns["booked"] == ["rf_1"]

"""Ids refundkit makes up itself."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from refundkit import Money, RefundKit
from refundkit._model import new_id
from refundkit._pans import find_pans

from .conftest import record


def test_a_new_id_never_holds_thirteen_digits_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """R-5.4: an id can never pass for a card number (nor be masked by redaction), so a token
    that would make one is drawn again."""
    card_like = "4111111111111111" + "abcdefgh"  # a Luhn-valid run in a 24-digit hex token
    draws: Iterator[str] = iter([card_like, "0123456789ab" * 2])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(draws))
    assert find_pans(card_like)  # the first draw would have been flagged
    assert new_id("rf_") == "rf_0123456789ab0123456789ab"


def test_ids_the_kit_makes_are_prefixed_and_random(kit: RefundKit) -> None:
    record(kit)
    ids = {kit.refund("pay_1", Money(100, "USD")).id for _ in range(5)}
    assert len(ids) == 5
    assert all(i.startswith("rf_") and len(i) == 27 for i in ids)

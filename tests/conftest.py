"""Shared fixtures: a kit on a file SQLite store with the sandbox gateway and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from refundkit import Destination, Money, Payment, RefundKit
from refundkit.gateways.sandbox import SandboxGateway

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class FakeClock:
    """An injectable clock (R-7.4): tests move time instead of sleeping."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kit.db'}"


@pytest.fixture
def kit(db_url: str, clock: FakeClock) -> Iterator[RefundKit]:
    k = RefundKit.open(db_url, autoload=False, clock=clock, retry_backoff=0)
    yield k
    k.close()


@pytest.fixture
def sandbox(kit: RefundKit) -> SandboxGateway:
    return cast(SandboxGateway, kit.gateway("sandbox"))


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def record(
    kit: RefundKit,
    id: str = "pay_1",
    amount: str = "50.00",
    *,
    currency: str = "USD",
    destination: Destination = Destination.INVOICE,
    customer_id: str = "cus_1",
    **kw: Any,
) -> Payment:
    return kit.record_payment(
        id=id,
        customer_id=customer_id,
        amount=Money.parse(amount, currency),
        gateway="sandbox",
        gateway_payment_id=f"sbx_ch_{id}",
        destination=destination,
        **kw,
    )


TABLES = ("payments", "refunds", "balance_lots", "balance_movements", "events", "journal_lines")


def row_counts(kit: RefundKit) -> dict[str, int]:
    """Rows per table: "nothing was written" is checked by comparing these."""
    with kit.store.connect() as conn:
        return {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES
        }

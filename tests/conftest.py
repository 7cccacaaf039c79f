"""Shared fixtures: a kit on each store (a SQLite file, and PostgreSQL when
``REFUNDKIT_TEST_POSTGRES_URL`` is set) with the sandbox gateway and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from refundkit import Destination, Money, Payment, RefundKit
from refundkit.gateways.sandbox import SandboxGateway

from . import _pg as pgtest

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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses a store (``db_url``, ``kit``, ...) runs on both stores, except
    those marked ``sqlite_only`` (file paths, WAL, STRICT: each says why) or
    ``postgresql_only`` (row locks, SKIP LOCKED, column types)."""
    if "store_kind" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker
        kinds = ["sqlite", "postgresql"]
        if marked("sqlite_only"):
            kinds = ["sqlite"]
        elif marked("postgresql_only"):
            kinds = ["postgresql"]
        metafunc.parametrize("store_kind", kinds, scope="function")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One PostgreSQL database of this session's own (dropped at the end), migrated once."""
    yield from pgtest.session_database()


@pytest.fixture
def db_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if store_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'kit.db'}"
    if not pgtest.admin_url():
        pytest.skip(pgtest.SKIP_REASON)
    url: str = request.getfixturevalue("pg_database")
    pgtest.empty(url)  # a test starts on empty tables: TRUNCATE is far cheaper than a schema
    return url


@pytest.fixture
def sandbox_path(tmp_path: Path) -> str:
    """Where the sandbox gateway keeps its state, so several processes (and kits) share it
    (next to a SQLite store by default; a PostgreSQL store has no file to sit beside)."""
    return str(tmp_path / "kit.sandbox.db")  # the default beside tmp_path / "kit.db"


def open_kit(db_url: str, sandbox_path: str, **options: Any) -> RefundKit:
    """A kit whose sandbox state lives at ``sandbox_path`` on either store."""
    gateways = {"sandbox": {"path": sandbox_path}} | options.pop("gateways", {})
    options.setdefault("autoload", False)
    return RefundKit.open(db_url, gateways=gateways, **options)


@pytest.fixture
def kit(db_url: str, clock: FakeClock, sandbox_path: str) -> Iterator[RefundKit]:
    k = open_kit(db_url, sandbox_path, clock=clock, retry_backoff=0)
    # The fake clock is time itself here: it stands for the database's clock too (in-flight
    # refunds are stamped with it and judged stale by it; by default the database's own).
    k.runtime.db_clock = clock
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

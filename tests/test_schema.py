"""The schema backstops the invariants, whatever code writes to it (R-3.4, R-6.8).

Requirements are in /work/shared/reference/reliability.md: R-3.4 (CHECK and UNIQUE constraints
refuse raw SQL that breaks a rule, with an IntegrityError), R-6.8 (amounts are integers in SQL;
SQLite tables are STRICT, so ``1.5`` and ``'x'`` are refused) and R-3.3 (connection settings).
Also: the Alembic migrations build exactly ``refundkit._schema.metadata``, ``migrations.HEAD``
is Alembic's head, and reopening a store does not migrate again.

Raw SQL goes straight to the kit's own engine (``kit.store.engine``) with ``sqlalchemy.text``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from refundkit import Destination, GatewayRateLimited, RefundKit, migrations
from refundkit._schema import metadata

from .conftest import TABLES, FakeClock, record, row_counts, usd

# Every column that holds an amount of minor units.
AMOUNT_COLUMNS = [
    ("payments", "amount"),
    ("payments", "held"),
    ("payments", "refunded"),
    ("refunds", "amount"),
    ("balance_lots", "amount"),
    ("balance_lots", "remaining"),
    ("balance_movements", "amount"),
    ("journal_lines", "amount"),
]
# What makes a copy of a table's first row a valid new row (fresh ids, unique keys cleared).
FRESH: dict[str, dict[str, Any]] = {
    "payments": {"id": "pay_copy", "gateway_payment_id": "sbx_ch_copy"},
    "refunds": {
        "id": "rf_copy",
        "idempotency_key": None,
        "gateway_idempotency_key": "refundkit-rf_copy",
        "gateway_refund_id": None,
    },
    "balance_lots": {"id": "lot_copy", "funding_payment_id": None},
    "balance_movements": {},
    "events": {"id": "evt_copy"},
    "journal_lines": {"kind": "reversal"},
}
AUTOINCREMENT = {
    "balance_lots": "seq",
    "balance_movements": "id",
    "events": "seq",
    "journal_lines": "id",
}


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "refundkit:migrations")
    return cfg


def run(kit: RefundKit, sql: str, **params: Any) -> None:
    with kit.store.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def insert_copy(kit: RefundKit, table: str, **changes: Any) -> None:
    """Insert a copy of ``table``'s first row with fresh unique values and ``changes``."""
    with kit.store.engine.begin() as conn:
        row = dict(conn.execute(sa.text(f"SELECT * FROM {table} LIMIT 1")).mappings().one())
        row.pop(AUTOINCREMENT.get(table, ""), None)
        row |= FRESH[table] | changes
        columns = ", ".join(f'"{c}"' for c in row)
        values = ", ".join(f":{c}" for c in row)
        conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)


@pytest.fixture
def booked(kit: RefundKit) -> RefundKit:
    """A kit with a row in every table: a customer-balance payment with a succeeded refund."""
    record(kit, destination=Destination.CUSTOMER_BALANCE)
    kit.refund("pay_1", usd("10.00"), idempotency_key="k-1", reason="requested_by_customer")
    assert all(row_counts(kit).values()), row_counts(kit)
    return kit


def refused(kit: RefundKit, write: Callable[[], None], constraint: str) -> None:
    """``write`` fails with an IntegrityError naming ``constraint``; nothing changes."""
    before = row_counts(kit)
    with kit.store.engine.connect() as conn:
        payment_before = conn.execute(sa.text("SELECT * FROM payments ORDER BY id")).all()
    with pytest.raises(sa.exc.IntegrityError) as info:
        write()
    if kit.store.is_sqlite:
        assert isinstance(info.value.orig, sqlite3.IntegrityError)
        assert constraint in str(info.value.orig)
    else:
        assert isinstance(info.value.orig, kit.store.engine.dialect.loaded_dbapi.IntegrityError)
        assert pg_message(constraint) in str(info.value.orig)
    assert row_counts(kit) == before
    with kit.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT * FROM payments ORDER BY id")).all() == payment_before


def pg_message(sqlite_message: str) -> str:
    """What PostgreSQL says for the constraint SQLite's message names."""
    if sqlite_message.startswith("CHECK constraint failed: "):
        return f'violates check constraint "{sqlite_message.split(": ", 1)[1]}"'
    if sqlite_message.startswith("UNIQUE constraint failed"):
        return "duplicate key value violates unique constraint"
    if sqlite_message.startswith("FOREIGN KEY"):
        return "violates foreign key constraint"
    raise AssertionError(f"no PostgreSQL message for {sqlite_message!r}")


# --- the fixture rows themselves are valid ----------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_a_copy_with_fresh_keys_is_accepted(booked: RefundKit, table: str) -> None:
    """Control: the copies below fail because of the one value they change, nothing else."""
    before = row_counts(booked)[table]
    insert_copy(booked, table)
    assert row_counts(booked)[table] == before + 1


# --- integer minor units only, enforced by STRICT tables --------------------------------


# STRICT is SQLite's: on PostgreSQL the columns are BIGINT (see the PostgreSQL test below).
@pytest.mark.sqlite_only
@pytest.mark.parametrize(("table", "column"), AMOUNT_COLUMNS, ids="{0[0]}.{0[1]}".format)
@pytest.mark.parametrize(("value", "stored_as"), [(1.5, "REAL"), ("x", "TEXT"), (b"\x01", "BLOB")])
def test_r6_8_amount_column_refuses_a_non_integer(
    booked: RefundKit, table: str, column: str, value: object, stored_as: str
) -> None:
    """R-6.8: "inserting 1.5 or 'x' into an amount column fails" (STRICT: an IntegrityError)."""
    refused(
        booked,
        lambda: insert_copy(booked, table, **{column: value}),
        f"cannot store {stored_as} value in INTEGER column {table}.{column}",
    )


@pytest.mark.sqlite_only  # STRICT is SQLite's (PostgreSQL: the BIGINT test below)
@pytest.mark.parametrize("value", [1.5, "x", "1.5", "1e3x", None])
def test_r6_8_updating_an_amount_to_a_non_integer_fails(booked: RefundKit, value: object) -> None:
    """R-6.8: the same through UPDATE; text that is not an integer stays refused."""
    constraint = "NOT NULL constraint failed" if value is None else "cannot store"
    refused(booked, lambda: run(booked, "UPDATE payments SET refunded = :v", v=value), constraint)


@pytest.mark.postgresql_only
def test_r6_8_postgresql_amount_columns_are_bigint(kit: RefundKit) -> None:
    """R-6.8 on PostgreSQL: every amount column is BIGINT (never REAL, float8 or NUMERIC), and
    text that is not an integer is refused by the column type."""
    with kit.store.engine.connect() as conn:
        types = {
            (r.table_name, r.column_name): r.data_type
            for r in conn.execute(
                sa.text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = current_schema()"
                )
            )
        }
    assert {c: types[c] for c in AMOUNT_COLUMNS} == dict.fromkeys(AMOUNT_COLUMNS, "bigint")
    record(kit)
    with pytest.raises(sa.exc.DataError):
        run(kit, "UPDATE payments SET refunded = :v", v="x")
    assert kit.payment("pay_1").refunded == usd("0.00")


@pytest.mark.sqlite_only  # typeof() and STRICT's lossless conversion are SQLite's
def test_r6_8_integral_values_are_stored_as_integers(booked: RefundKit) -> None:
    """R-6.8 note: STRICT converts ``2.0``, ``'3'`` and even ``'1e3'`` losslessly; the column
    still holds an integer (never a REAL), which ``typeof`` proves. Refusing such text is the
    Python layer's job (R-6.1, R-6.2)."""
    unheld = {"held": 0, "refunded": 0}
    insert_copy(booked, "payments", amount=2.0, **unheld)
    insert_copy(booked, "payments", id="pay_copy2", gateway_payment_id="c2", amount="3", **unheld)
    insert_copy(booked, "payments", id="pay_copy3", gateway_payment_id="c3", amount="1e3", **unheld)
    with booked.store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, amount, typeof(amount) FROM payments WHERE id LIKE 'pay_copy%' "
                "ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("pay_copy", 2, "integer"),
        ("pay_copy2", 3, "integer"),
        ("pay_copy3", 1000, "integer"),
    ]


@pytest.mark.sqlite_only  # STRICT tables are SQLite's
def test_r6_8_every_table_is_strict(kit: RefundKit) -> None:
    """R-6.8: every table is declared STRICT (SQLite >= 3.37)."""
    with kit.store.engine.connect() as conn:
        strict = {
            r.name: r.strict
            for r in conn.execute(sa.text("PRAGMA table_list")).all()
            if r.schema == "main"
        }
    assert {t: strict[t] for t in TABLES} == dict.fromkeys(TABLES, 1)


# --- CHECK constraints ---------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -1, -(2**63)])
def test_r3_4_refund_amount_must_be_positive(booked: RefundKit, amount: int) -> None:
    """R-3.4: ``CHECK (amount > 0)`` on refunds."""
    refused(
        booked,
        lambda: insert_copy(booked, "refunds", amount=amount),
        "CHECK constraint failed: ck_refunds_amount_positive",
    )


@pytest.mark.parametrize("amount", [0, -1])
def test_r3_4_payment_amount_must_be_positive(booked: RefundKit, amount: int) -> None:
    """R-3.4: ``CHECK (amount > 0)`` on payments."""
    refused(
        booked,
        lambda: insert_copy(booked, "payments", amount=amount, held=0, refunded=0),
        "CHECK constraint failed: ck_payments_amount_positive",
    )


@pytest.mark.parametrize("held", ["amount + 1", "-1"])
def test_r3_4_held_stays_within_the_payment(booked: RefundKit, held: str) -> None:
    """R-3.4: ``CHECK (held >= 0 AND held <= amount)`` (the cap, with reservations)."""
    refused(
        booked,
        lambda: run(booked, f"UPDATE payments SET held = {held} WHERE id = 'pay_1'"),
        "CHECK constraint failed: ck_payments_held_within_amount",
    )


@pytest.mark.parametrize("refunded", ["held + 1", "amount", "-1"])
def test_r3_4_refunded_stays_within_held(booked: RefundKit, refunded: str) -> None:
    """R-3.4: ``refunded >= 0 AND refunded <= held`` (held is 10.00 of the 50.00 here)."""
    refused(
        booked,
        lambda: run(booked, f"UPDATE payments SET refunded = {refunded} WHERE id = 'pay_1'"),
        "CHECK constraint failed: ck_payments_refunded_within_held",
    )


def test_r3_4_the_cap_holds_through_an_unconditional_update(booked: RefundKit) -> None:
    """The naive "held = held + x" a buggy writer would issue cannot pass the payment amount."""
    run(booked, "UPDATE payments SET held = held + 4000 WHERE id = 'pay_1'")  # exactly 50.00
    refused(
        booked,
        lambda: run(booked, "UPDATE payments SET held = held + 1 WHERE id = 'pay_1'"),
        "CHECK constraint failed: ck_payments_held_within_amount",
    )


@pytest.mark.parametrize(
    ("table", "changes", "constraint"),
    [
        ("balance_lots", {"remaining": 5001}, "ck_lots_remaining_within_amount"),
        ("balance_lots", {"remaining": -1}, "ck_lots_remaining_within_amount"),
        ("balance_lots", {"amount": 0, "remaining": 0}, "ck_lots_amount_positive"),
        ("balance_movements", {"amount": 0}, "ck_movements_amount_nonzero"),
        ("journal_lines", {"amount": 0}, "ck_journal_amount_positive"),
        ("journal_lines", {"amount": -1}, "ck_journal_amount_positive"),
        ("journal_lines", {"side": "both"}, "ck_journal_side"),
        ("journal_lines", {"kind": "adjustment"}, "ck_journal_kind"),
        ("refunds", {"status": "done"}, "ck_refunds_status"),
        ("payments", {"destination": "wallet"}, "ck_payments_destination"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("ck_") else None,
)
def test_r3_4_other_checks(
    booked: RefundKit, table: str, changes: dict[str, Any], constraint: str
) -> None:
    """R-3.4: the remaining CHECKs (lots, movements, journal, statuses, destinations)."""
    refused(
        booked,
        lambda: insert_copy(booked, table, **changes),
        f"CHECK constraint failed: {constraint}",
    )


# --- refund approvals (0004, 0006): a row is a payment approval or a balance approval ---------

APPROVAL = (
    "INSERT INTO refund_approvals (id, kind, payment_id, customer_id, strategy, plan, currency,"
    " amount, reason, status, requested_by, requested_at) VALUES (:id, :kind, :payment_id,"
    " :customer_id, :strategy, :plan, 'USD', 500, 'r', :status, 'sam', :at)"
)
PAYMENT_APPROVAL = {"kind": "payment", "payment_id": "pay_1", "customer_id": None,
                    "strategy": None, "plan": None, "status": "pending"}  # fmt: skip
BALANCE_APPROVAL = {"kind": "balance", "payment_id": None, "customer_id": "cus_1",
                    "strategy": "newest_first", "plan": None, "status": "pending"}  # fmt: skip


def add_approval(kit: RefundKit, id: str, **values: Any) -> None:
    run(kit, APPROVAL, id=id, at=kit.clock(), **values)


def approval_count(kit: RefundKit) -> int:
    with kit.store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM refund_approvals")).scalar_one())


def test_approvals_of_either_kind_are_accepted(booked: RefundKit) -> None:
    """Control for the refusals below: a payment and a balance approval, as the code writes."""
    add_approval(booked, "apr_p", **PAYMENT_APPROVAL)
    add_approval(booked, "apr_b", **BALANCE_APPROVAL)
    add_approval(booked, "apr_c", **BALANCE_APPROVAL | {"status": "approving", "plan": "{}"})
    assert approval_count(booked) == 3


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        (PAYMENT_APPROVAL | {"customer_id": "cus_1"}, "ck_approvals_kind"),
        (PAYMENT_APPROVAL | {"payment_id": None}, "ck_approvals_kind"),
        (PAYMENT_APPROVAL | {"strategy": "newest_first"}, "ck_approvals_kind"),
        (BALANCE_APPROVAL | {"payment_id": "pay_1"}, "ck_approvals_kind"),
        (BALANCE_APPROVAL | {"customer_id": None}, "ck_approvals_kind"),
        (BALANCE_APPROVAL | {"strategy": None}, "ck_approvals_kind"),
        (BALANCE_APPROVAL | {"kind": "invoice"}, "ck_approvals_kind"),
        (BALANCE_APPROVAL | {"status": "approving"}, "ck_approvals_balance_plan"),
        (BALANCE_APPROVAL | {"status": "approved"}, "ck_approvals_balance_plan"),
    ],
    ids=[
        "payment+customer", "payment-without-payment", "payment+strategy", "balance+payment",
        "balance-without-customer", "balance-without-strategy", "unknown-kind",
        "approving-without-plan", "approved-without-plan",
    ],
)  # fmt: skip
def test_an_approval_is_exactly_one_kind(
    booked: RefundKit, values: dict[str, Any], constraint: str
) -> None:
    """0006: both kinds share the table; CHECKs keep each row one or the other, and a balance
    approval being approved keeps the plan a retry replays."""
    refused(
        booked,
        lambda: add_approval(booked, "apr_x", **values),
        f"CHECK constraint failed: {constraint}",
    )
    assert approval_count(booked) == 0


def test_0006_keeps_the_payment_approvals_made_before_it(kit: RefundKit) -> None:
    """Upgrading from 0004 turns its rows into payment approvals, unchanged and still usable;
    downgrading drops only the balance approvals (0004 cannot hold them)."""
    from refundkit._approvals import Approvals

    record(kit, destination=Destination.CUSTOMER_BALANCE)
    cfg = alembic_config()
    with kit.store.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    run(
        kit,
        "INSERT INTO refund_approvals (id, payment_id, currency, amount, reason, status,"
        " requested_by, requested_at) VALUES ('apr_old', 'pay_1', 'USD', 500, 'r', 'pending',"
        " 'sam', :at)",
        at=kit.clock(),
    )
    with kit.store.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    approvals = Approvals(kit)
    old = approvals.get("apr_old")
    assert (old.kind, old.payment_id, old.customer_id, old.amount) == (
        "payment", "pay_1", None, usd("5.00"),
    )  # fmt: skip
    assert approvals.approve("apr_old", approver="ann").amount == usd("5.00")
    approvals.request_balance("cus_1", usd("5.00"), reason="r", requested_by="sam")
    with kit.store.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
        ids = conn.execute(sa.text("SELECT id FROM refund_approvals")).scalars().all()
        command.upgrade(cfg, "head")
    assert ids == ["apr_old"]


# --- UNIQUE constraints -------------------------------------------------------


def test_r3_4_duplicate_idempotency_key_fails(booked: RefundKit) -> None:
    """R-3.4: ``UNIQUE(idempotency_key)``."""
    refused(
        booked,
        lambda: insert_copy(booked, "refunds", idempotency_key="k-1"),
        "UNIQUE constraint failed: refunds.idempotency_key",
    )


def test_r3_4_duplicate_gateway_refund_id_on_one_gateway_fails(booked: RefundKit) -> None:
    """R-3.4 / R-1.10: ``UNIQUE(gateway, gateway_refund_id)``."""
    [refund] = booked.refunds()
    refused(
        booked,
        lambda: insert_copy(booked, "refunds", gateway_refund_id=refund.gateway_refund_id),
        "UNIQUE constraint failed: refunds.gateway, refunds.gateway_refund_id",
    )


def test_r1_4_duplicate_gateway_idempotency_key_fails(booked: RefundKit) -> None:
    """R-1.4: one gateway key per refund attempt, never shared."""
    [refund] = booked.refunds()
    refused(
        booked,
        lambda: insert_copy(
            booked, "refunds", gateway_idempotency_key=refund.gateway_idempotency_key
        ),
        "UNIQUE constraint failed: refunds.gateway_idempotency_key",
    )


def test_r3_4_uniques_allow_what_they_should(booked: RefundKit) -> None:
    """Refunds without a caller key or without a gateway id yet (reserved) are many; the same
    gateway refund id may exist at another gateway."""
    [refund] = booked.refunds()
    insert_copy(booked, "refunds")
    insert_copy(booked, "refunds", id="rf_copy2", gateway_idempotency_key="refundkit-rf_copy2")
    insert_copy(
        booked,
        "refunds",
        id="rf_copy3",
        gateway_idempotency_key="refundkit-rf_copy3",
        gateway="other",
        gateway_refund_id=refund.gateway_refund_id,
    )
    assert row_counts(booked)["refunds"] == 4


def test_r3_4_duplicate_journal_line_fails(booked: RefundKit) -> None:
    """A refund's journal is posted once: (refund_id, kind, account, side) is unique."""
    refused(
        booked,
        lambda: insert_copy(booked, "journal_lines", kind="refund"),
        "UNIQUE constraint failed: journal_lines.refund_id, journal_lines.kind, "
        "journal_lines.account, journal_lines.side",
    )


def test_duplicate_gateway_payment_fails(booked: RefundKit) -> None:
    """R-1.10 spirit: ``UNIQUE(gateway, gateway_payment_id)``."""
    refused(
        booked,
        lambda: insert_copy(booked, "payments", gateway_payment_id="sbx_ch_pay_1"),
        "UNIQUE constraint failed: payments.gateway, payments.gateway_payment_id",
    )


def test_duplicate_lot_for_one_payment_fails(booked: RefundKit) -> None:
    """DESIGN (balance lots): one top-up lot per funding payment (credits may add more)."""
    refused(
        booked,
        lambda: insert_copy(booked, "balance_lots", funding_payment_id="pay_1"),
        "UNIQUE constraint failed: balance_lots.funding_payment_id",
    )


def test_foreign_keys_are_enforced(booked: RefundKit) -> None:
    """R-3.3 connection setup: ``PRAGMA foreign_keys=ON`` on the kit's connections."""
    refused(
        booked,
        lambda: insert_copy(booked, "refunds", payment_id="pay_404"),
        "FOREIGN KEY constraint failed",
    )


# --- migrations -----------------------------------------------------------------------------


def test_migrations_build_exactly_the_metadata(kit: RefundKit) -> None:
    """Autogenerate against a migrated store finds nothing to add, drop or alter."""
    with kit.store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, metadata)
    assert diff == []


def sqlite_ddl(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                "AND name != 'alembic_version' AND name NOT LIKE 'sqlite_%'"
            )
        ).all()
    return {str(name): str(sql) for name, sql in rows}


@pytest.mark.sqlite_only  # reads sqlite_master; on PostgreSQL autogenerate compares (above)
def test_migrations_emit_the_same_ddl_as_the_metadata(kit: RefundKit, tmp_path: Path) -> None:
    """Stronger than autogenerate, which ignores CHECK constraints and STRICT: the migrated
    store's DDL equals ``metadata.create_all``'s, statement by statement."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'from_metadata.db'}")
    try:
        metadata.create_all(engine)
        expected = sqlite_ddl(engine)
    finally:
        engine.dispose()
    migrated = sqlite_ddl(kit.store.engine)
    assert set(migrated) == set(expected)
    for name, sql in expected.items():
        assert migrated[name] == sql, name
    assert set(TABLES) <= set(migrated)


def test_head_constant_is_alembics_only_head(kit: RefundKit) -> None:
    """``refundkit.migrations.HEAD`` is Alembic's single head, and the store is at it."""
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [migrations.HEAD]
    assert script.get_current_head() == migrations.HEAD
    with kit.store.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        assert list(versions) == [migrations.HEAD]


def test_downgrade_then_upgrade_round_trips(kit: RefundKit) -> None:
    """Migrations: downgrade to base leaves no table; upgrading again gives the metadata."""
    cfg = alembic_config()
    with kit.store.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        assert set(sa.inspect(conn).get_table_names()) == {"alembic_version"}
        command.upgrade(cfg, "head")
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


@pytest.fixture
def upgrades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every Alembic upgrade the store runs (and still runs it)."""
    seen: list[str] = []
    original = command.upgrade

    def spy(config: Config, revision: str, *args: Any, **kwargs: Any) -> None:
        seen.append(revision)
        original(config, revision, *args, **kwargs)

    monkeypatch.setattr(command, "upgrade", spy)
    return seen


def test_opening_a_store_twice_does_not_migrate_again(
    tmp_path: Path, clock: FakeClock, upgrades: list[str]
) -> None:
    """Store.migrate: a store at HEAD is opened (also concurrently) without migrating."""
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    with ExitStack() as stack:
        first = stack.enter_context(RefundKit.open(url, autoload=False, clock=clock))
        assert upgrades == ["head"]
        record(first)
        # A second kit on the same file, while the first is still open, then a third after.
        second = stack.enter_context(RefundKit.open(url, autoload=False, clock=clock))
        assert second.payment("pay_1") == first.payment("pay_1")
        assert second.refund("pay_1", usd("5.00")).amount == usd("5.00")
    with RefundKit.open(url, autoload=False, clock=clock) as third:
        assert third.payment("pay_1").refunded == usd("5.00")
        with third.store.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            assert list(versions) == [migrations.HEAD]
    assert upgrades == ["head"]


# --- connection settings ----------------------------------------------------------------


def pragmas(conn: sa.Connection) -> dict[str, Any]:
    return {
        name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    }


EXPECTED_PRAGMAS = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}  # 2 = FULL


@pytest.fixture
def many_connections(kit: RefundKit) -> Callable[[], Iterator[sa.Connection]]:
    """Check out several connections at once, so every pooled one is looked at."""

    def connections() -> Iterator[sa.Connection]:
        with ExitStack() as stack:
            for _ in range(6):
                yield stack.enter_context(kit.store.engine.connect())

    return connections


@pytest.mark.sqlite_only  # WAL and PRAGMAs are SQLite's connection settings
def test_r3_3_every_connection_is_wal_with_synchronous_full(
    kit: RefundKit, many_connections: Callable[[], Iterator[sa.Connection]]
) -> None:
    """R-3.3 / R-2.2: WAL, ``synchronous=FULL``, foreign keys, busy_timeout >= 5 s, and
    ``isolation_level=None`` (refundkit issues ``BEGIN IMMEDIATE`` itself)."""
    for conn in many_connections():
        found = pragmas(conn)
        assert {k: found[k] for k in EXPECTED_PRAGMAS} == EXPECTED_PRAGMAS
        assert found["busy_timeout"] >= 5000
        assert conn.connection.dbapi_connection is not None
        assert conn.connection.dbapi_connection.isolation_level is None  # we issue BEGIN


@pytest.mark.sqlite_only  # WAL and PRAGMAs are SQLite's connection settings
def test_synchronous_is_full_again_after_a_refund(
    kit: RefundKit, many_connections: Callable[[], Iterator[sa.Connection]]
) -> None:
    """R-3.3: the refund path marks ``submitted`` with synchronous=NORMAL; it must not stay so."""
    record(kit)
    kit.refund("pay_1", usd("10.00"))
    with pytest.raises(GatewayRateLimited):  # the sandbox's rate-limit cents: retried, failed
        kit.refund("pay_1", usd("0.96"))
    for conn in many_connections():
        assert pragmas(conn)["synchronous"] == 2


@pytest.mark.sqlite_only  # WAL and PRAGMAs are SQLite's connection settings
def test_wal_is_recorded_in_the_database_file(kit: RefundKit) -> None:
    """WAL is persistent: any other process opening the file gets it too."""
    database = kit.store.url.database
    assert database is not None
    plain = sqlite3.connect(database)
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        plain.close()

"""PostgreSQL for the test suite: a database of this session's own, emptied per test.

``REFUNDKIT_TEST_POSTGRES_URL`` names a server and a database to connect to for
administration (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Each session
creates ``refundkit_t_<random>`` there and drops it at the end, so concurrent runs never see
each other's data. With the variable set, an unreachable server fails the run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from refundkit import RefundKit

ENV = "REFUNDKIT_TEST_POSTGRES_URL"
SKIP_REASON = (
    f"PostgreSQL cases are off: set {ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test "
    "(a server where the user may CREATE DATABASE) to run them"
)


def admin_url() -> str | None:
    return os.environ.get(ENV) or None


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def session_database() -> Iterator[str]:
    admin = admin_url()
    assert admin is not None
    name = f"refundkit_t_{secrets.token_hex(6)}"
    engine = _admin_engine(admin)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"{ENV} is set but the PostgreSQL server cannot be used: {exc}")
    url = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    RefundKit.open(url, autoload=False).close()  # migrate once; tests then TRUNCATE
    try:
        yield url
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        engine.dispose()


_tables: dict[str, str] = {}


def empty(url: str) -> None:
    """Every table of the schema emptied (identities restarted), the migration record kept."""
    engine = _admin_engine(url)
    with engine.connect() as conn:
        if url not in _tables:
            names = conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename <> 'alembic_version'"
            ).scalars()
            _tables[url] = ", ".join(sorted(names))
        conn.exec_driver_sql("SET lock_timeout = '20s'")
        conn.exec_driver_sql(f"TRUNCATE {_tables[url]} RESTART IDENTITY CASCADE")
    engine.dispose()

"""The sandbox's own books: one SQLite file of charges, refunds and scripted outcomes.

They live apart from the kit's store, as a real gateway's state does, so many processes may
share one sandbox (WAL mode, every write one ``BEGIN IMMEDIATE`` transaction). Here too: the
clock the books are kept by, how rows read back as gateway values, and the rules a charge's
books impose on a refund.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final

from ..._errors import (
    ConfigurationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
)
from ..._gateway import (
    GatewayPayment,
    GatewayRefund,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundStatus,
)
from ..._model import Card
from ..._money import Money

_BUSY_SECONDS: Final = 30  # how long to wait for other processes' locks

#: The sandbox's status table: every status its books hold a refund in → the kit's outcome.
#: (The sandbox speaks refundkit's words, so the table is the identity; a real gateway's
#: plugin declares its own, and the conformance suite checks it is complete.)
REFUND_STATUSES: Final[Mapping[str, GatewayRefundStatus]] = MappingProxyType(
    {"succeeded": "succeeded", "pending": "pending", "failed": "failed", "reversed": "reversed"}
)
#: Every status a refund can be in at the sandbox (what its ``refunds.status`` column holds).
STATUSES: Final[frozenset[str]] = frozenset({"succeeded", "pending", "failed", "reversed"})
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND: Final = timedelta(microseconds=1)

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS charges (
        id TEXT PRIMARY KEY,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        card_brand TEXT NOT NULL,
        card_last4 TEXT NOT NULL,
        card_exp_month INTEGER,
        card_exp_year INTEGER,
        card_first6 TEXT,
        disputed INTEGER NOT NULL,
        settled INTEGER NOT NULL,
        captured_at_us INTEGER
    ) STRICT""",
    # One row per request the sandbox remembers: real refunds and stored declines (declined=1).
    """CREATE TABLE IF NOT EXISTS refunds (
        seq INTEGER PRIMARY KEY,
        gateway_refund_id TEXT UNIQUE,
        refund_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        charge_id TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        scheduled_status TEXT,
        failure_code TEXT,
        failure_message TEXT,
        declined INTEGER NOT NULL,
        void INTEGER NOT NULL,
        created_at_us INTEGER NOT NULL,
        updated_at_us INTEGER NOT NULL
    ) STRICT""",
    "CREATE INDEX IF NOT EXISTS refunds_by_key ON refunds (idempotency_key, created_at_us)",
    "CREATE INDEX IF NOT EXISTS refunds_by_refund_id ON refunds (refund_id)",
    # Covering index: the refunded/held sums read only the index.
    "CREATE INDEX IF NOT EXISTS refunds_by_charge ON refunds (charge_id, status, amount)",
    # Scripted outcomes, FIFO by seq; charge_id NULL means "any charge".
    """CREATE TABLE IF NOT EXISTS scripts (
        seq INTEGER PRIMARY KEY,
        charge_id TEXT,
        outcome TEXT NOT NULL
    ) STRICT""",
    "CREATE INDEX IF NOT EXISTS scripts_by_charge ON scripts (charge_id, seq)",
    # HTTP error answers a script names ("http:<seq>"): the status and body the refund request
    # gets, and whether the refund was applied before the answer (a 5xx after the effect).
    """CREATE TABLE IF NOT EXISTS http_answers (
        seq INTEGER PRIMARY KEY,
        status INTEGER NOT NULL,
        body BLOB NOT NULL,
        applied INTEGER NOT NULL
    ) STRICT""",
)

REFUND_COLUMNS: Final = (
    "gateway_refund_id, refund_id, idempotency_key, charge_id, amount, currency, status, "
    "scheduled_status, failure_code, failure_message, declined, void, created_at_us, "
    "updated_at_us"
)


class SandboxBooks:
    """The SQLite file at ``path``, opened lazily, and the clock its rows are stamped by."""

    def __init__(self, path: str, clock: Callable[[], datetime]) -> None:
        self._path = path
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        # One connection per instance; the lock keeps threads from interleaving transactions.
        self._lock = threading.RLock()

    def now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ConfigurationError("the sandbox clock must return an aware UTC datetime")
        return now

    def _db(self) -> sqlite3.Connection:
        # Lazily, and again after a fork: an SQLite connection must not cross processes.
        if self._conn is None or self._pid != os.getpid():
            self._conn = self._connect()
            self._pid = os.getpid()
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=_BUSY_SECONDS
        )
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
            enable_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.close()  # closing rolls back an open transaction
            raise
        return db

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with BEGIN IMMEDIATE so it never deadlocks on upgrade."""
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def enable_wal(db: sqlite3.Connection) -> None:
    # Switching a fresh file to WAL needs an exclusive lock, and SQLite may answer "locked" at
    # once (without its busy wait) when several processes open the file together: retry.
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))  # jitter, so openers do not collide again


def micros(moment: datetime) -> int:
    # Integer arithmetic on timedeltas: no float rounding in stored timestamps.
    return (moment - EPOCH) // MICROSECOND


# --- rows as gateway values ----------------------------------------------------------------


def status_of(value: str) -> GatewayRefundStatus:
    """The kit's outcome for a status the sandbox's books hold (``REFUND_STATUSES``)."""
    try:
        return REFUND_STATUSES[value]
    except KeyError:
        raise ValueError(f"sandbox database holds an unknown refund status {value!r}") from None


def result_of(row: sqlite3.Row) -> GatewayRefundResult:
    return GatewayRefundResult(
        status=status_of(row["status"]),
        gateway_refund_id=row["gateway_refund_id"],
        amount=Money(row["amount"], row["currency"]),
        failure_code=row["failure_code"],
        failure_message=row["failure_message"],
    )


def payment_of(row: sqlite3.Row) -> GatewayPayment:
    captured = row["captured_at_us"]
    return GatewayPayment(
        gateway_payment_id=row["id"],
        amount=Money(row["amount"], row["currency"]),
        refunded=Money(row["refunded"], row["currency"]),
        card=Card(
            brand=row["card_brand"],
            last4=row["card_last4"],
            exp_month=row["card_exp_month"],
            exp_year=row["card_exp_year"],
            first6=row["card_first6"],
        ),
        disputed=bool(row["disputed"]),
        settled=bool(row["settled"]),
        captured_at=None if captured is None else EPOCH + captured * MICROSECOND,
    )


def listed_of(row: sqlite3.Row) -> GatewayRefund:
    return GatewayRefund(
        gateway_refund_id=row["gateway_refund_id"],
        amount=Money(row["amount"], row["currency"]),
        status=status_of(row["status"]),
        refund_id=row["refund_id"] or None,
        created_at=EPOCH + row["created_at_us"] * MICROSECOND,
    )


# --- what a charge's books allow -------------------------------------------------------------


def check_refund(db: sqlite3.Connection, request: GatewayRefundRequest) -> GatewayError | None:
    """Why this charge cannot take this refund now, or None.

    Shared by the gateway's refunds and the dashboard control: a person refunding in the
    dashboard meets the same cap as the kit does.
    """
    charge = db.execute(
        "SELECT c.*, (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.charge_id"
        " = c.id AND r.status IN ('succeeded', 'pending')) AS held"
        " FROM charges c WHERE c.id = ?",
        (request.gateway_payment_id,),
    ).fetchone()
    if charge is None:
        return GatewayPaymentNotFound(
            f"sandbox has no charge {request.gateway_payment_id!r}",
            gateway_code="resource_missing",
        )
    code, message = _refusal(charge, request)
    return None if code is None else GatewayDeclined(message, gateway_code=code)


def _refusal(charge: sqlite3.Row, request: GatewayRefundRequest) -> tuple[str | None, str]:
    """(gateway_code, message) of the first rule the refund breaks, or (None, "")."""
    amount = request.amount.amount
    if charge["disputed"]:
        return "charge_disputed", "sandbox: the charge is disputed"
    if request.amount.currency != charge["currency"]:
        return "currency_mismatch", (
            f"sandbox: the charge is in {charge['currency']}, not {request.amount.currency}"
        )
    if amount <= 0:
        return "amount_invalid", "sandbox: a refund amount must be positive"
    if not charge["settled"] and not (request.void and amount == charge["amount"]):
        return "charge_unsettled", "sandbox: an unsettled charge can only be voided in full"
    if charge["held"] + amount > charge["amount"]:
        left = Money(charge["amount"] - charge["held"], charge["currency"])
        return "amount_too_large", f"sandbox: at most {left} can still be refunded"
    return None, ""

"""The built-in offline ``sandbox`` gateway: a fake remote gateway with fault injection.

It keeps its state (charges, refunds, idempotency keys, scripted outcomes) in its OWN SQLite
file, never in the kit's store, so that many processes can share one sandbox and a test can
script what another process's kit will see. Configuration::

    {"path": "sandbox.db",                      # required; ":memory:" works for one process
     "webhook_secret": "sandbox-webhook-secret",  # signs the webhooks it produces
     "clock": lambda: datetime.now(UTC)}          # aware UTC "now" (idempotency window, webhooks)

What a refund does is decided, in order, by the next scripted outcome for the charge
(``script(..., charge=...)``), the next global scripted outcome (``script(...)``), then the
cents of the amount (``amount % 100``): 91 decline, 92 pending then succeeded, 93 pending then
failed, 94 timeout after applying, 95 timeout before applying, 96 rate limited, 97 unavailable;
any other amount succeeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from .._errors import (
    ConfigurationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    InvalidInput,
    InvalidMoney,
    PaymentExists,
    WebhookVerificationError,
)
from .._gateway import (
    Capabilities,
    Gateway,
    GatewayPayment,
    GatewayRefund,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundStatus,
    GatewayRefundUpdate,
)
from .._model import Card, Payment, new_id
from .._money import Money
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._plugins import GatewayRegistry

#: Every outcome ``SandboxGateway.script`` accepts.
OUTCOMES: Final = (
    "succeed",
    "decline",
    "pending_succeed",
    "pending_fail",
    "timeout_after",
    "timeout_before",
    "rate_limit",
    "unavailable",
)
#: Outcome picked by the cents of an amount when nothing is scripted.
MAGIC_CENTS: Final[Mapping[int, str]] = {
    91: "decline",
    92: "pending_succeed",
    93: "pending_fail",
    94: "timeout_after",
    95: "timeout_before",
    96: "rate_limit",
    97: "unavailable",
}
DEFAULT_CARD: Final = Card(brand="visa", last4="4242", exp_month=12, exp_year=2030)
DEFAULT_WEBHOOK_SECRET: Final = "sandbox-webhook-secret"
SIGNATURE_HEADER: Final = "sandbox-signature"
#: Most seconds a webhook's timestamp may be away from the sandbox clock.
WEBHOOK_TOLERANCE_SECONDS: Final = 300
IDEMPOTENCY_WINDOW: Final = timedelta(hours=24)
_BUSY_SECONDS: Final = 30  # how long to wait for other processes' locks

# Failure codes of refunds that failed after being created (bank side), as in webhooks.
PENDING_FAILURE_CODE: Final = "refund_failed"
REVERSAL_CODE: Final = "refund_reversed"

_STATUSES: Final[frozenset[str]] = frozenset({"succeeded", "pending", "failed", "reversed"})
_NOT_APPLIED: Final = frozenset({"timeout_before", "rate_limit", "unavailable"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

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
)

_REFUND_COLUMNS: Final = (
    "gateway_refund_id, refund_id, idempotency_key, charge_id, amount, currency, status, "
    "scheduled_status, failure_code, failure_message, declined, void, created_at_us, "
    "updated_at_us"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _micros(moment: datetime) -> int:
    # Integer arithmetic on timedeltas: no float rounding in stored timestamps.
    return (moment - _EPOCH) // _MICROSECOND


def _status(value: str) -> GatewayRefundStatus:
    if value not in _STATUSES:
        raise ValueError(f"sandbox database holds an unknown refund status {value!r}")
    return cast(GatewayRefundStatus, value)


def _result(row: sqlite3.Row) -> GatewayRefundResult:
    return GatewayRefundResult(
        status=_status(row["status"]),
        gateway_refund_id=row["gateway_refund_id"],
        amount=Money(row["amount"], row["currency"]),
        failure_code=row["failure_code"],
        failure_message=row["failure_message"],
    )


def _not_applied(outcome: str) -> GatewayError:
    if outcome == "rate_limit":
        return GatewayRateLimited("sandbox: too many requests", gateway_code="rate_limited")
    if outcome == "unavailable":
        return GatewayUnavailable("sandbox: service unavailable", gateway_code="unavailable")
    return _timeout()


def _timeout() -> GatewayTimeout:
    # The same words whether or not it was applied: the caller cannot tell, like a real timeout.
    return GatewayTimeout(
        "sandbox: the request timed out; the refund may or may not have been made",
        gateway_code="timeout",
    )


class SandboxGateway(Gateway):
    """An offline gateway that behaves like a remote one, with scripted faults.

    Test and demo controls: ``script``, ``settle_pending``, ``reverse``, ``set_disputed``,
    ``set_settled``, ``refunds``, ``refund_count``, and for drift ``dashboard_refund``,
    ``forget_refund`` and ``amend_refund``. All state lives in the SQLite file at
    ``config["path"]``; every write is one ``BEGIN IMMEDIATE`` transaction, so any number of
    processes may share it.
    """

    name = "sandbox"
    capabilities = Capabilities(
        partial_refunds=True,
        async_outcome=True,
        idempotency_keys=True,
        idempotency_window_hours=24,
        void_if_unsettled=True,
        lookup=True,
    )

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._path = self._config_path()
        secret = self.config.get("webhook_secret", DEFAULT_WEBHOOK_SECRET)
        if not isinstance(secret, str) or not secret:
            raise ConfigurationError("sandbox webhook_secret must be a non-empty string")
        self._secret = secret.encode()
        clock = self.config.get("clock") or _utcnow
        if not callable(clock):
            raise ConfigurationError("sandbox clock must be a callable returning a datetime")
        self._clock: Callable[[], datetime] = clock
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        # One connection per instance; the lock keeps threads from interleaving transactions.
        self._lock = threading.RLock()

    def _config_path(self) -> str:
        path = self.config.get("path")
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise ConfigurationError(
                "the sandbox gateway needs config['path'] (a file path or ':memory:')"
            )
        return path

    # --- database ------------------------------------------------------------------------

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
            _enable_wal(db)
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
    def _write(self) -> Iterator[sqlite3.Connection]:
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
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ConfigurationError("the sandbox clock must return an aware UTC datetime")
        return now

    # --- charges -------------------------------------------------------------------------

    def register_payment(self, payment: Payment) -> GatewayPayment | None:
        """Create the charge ``payment.gateway_payment_id`` unless it exists (idempotent).

        The card is ``payment.card`` or the test Visa 4242 (12/2030); the disputed and settled
        flags are taken from the payment. Raises ``PaymentExists`` if the charge exists with
        another amount or currency.
        """
        with self._write() as db:
            existing = db.execute(
                "SELECT amount, currency FROM charges WHERE id = ?",
                (payment.gateway_payment_id,),
            ).fetchone()
            if existing is None:
                self._insert_charge(db, payment)
            elif (existing["amount"], existing["currency"]) != (
                payment.amount.amount,
                payment.amount.currency,
            ):
                raise PaymentExists(
                    f"sandbox charge {payment.gateway_payment_id!r} exists with "
                    f"{Money(existing['amount'], existing['currency'])}, not {payment.amount}"
                )
        return self.fetch_payment(payment.gateway_payment_id)

    def _insert_charge(self, db: sqlite3.Connection, payment: Payment) -> None:
        card = payment.card or DEFAULT_CARD
        captured = payment.captured_at
        db.execute(
            "INSERT INTO charges (id, amount, currency, card_brand, card_last4, card_exp_month,"
            " card_exp_year, card_first6, disputed, settled, captured_at_us)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                payment.gateway_payment_id,
                payment.amount.amount,
                payment.amount.currency,
                card.brand,
                card.last4,
                card.exp_month,
                card.exp_year,
                card.first6,
                int(payment.disputed),
                int(payment.settled),
                _micros(captured) if captured.tzinfo is not None else None,
            ),
        )

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        """The charge with ``refunded`` = the sum of its succeeded refunds."""
        with self._read() as db:
            # One statement, so the charge and its refunded sum come from one snapshot.
            row = db.execute(
                "SELECT c.*, (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r"
                " WHERE r.charge_id = c.id AND r.status = 'succeeded') AS refunded"
                " FROM charges c WHERE c.id = ?",
                (gateway_payment_id,),
            ).fetchone()
        if row is None:
            raise GatewayPaymentNotFound(
                f"sandbox has no charge {gateway_payment_id!r}", gateway_code="resource_missing"
            )
        return _payment(row)

    def set_disputed(self, charge_id: str, disputed: bool = True) -> None:
        """Mark a charge disputed (refunds are then declined with ``charge_disputed``)."""
        self._set_flag(charge_id, "disputed", disputed)

    def set_settled(self, charge_id: str, settled: bool = True) -> None:
        """Mark a charge settled or not (an unsettled charge can only be voided in full)."""
        self._set_flag(charge_id, "settled", settled)

    def _set_flag(self, charge_id: str, column: str, value: bool) -> None:
        # ``column`` is one of two literals above, never caller input.
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE charges SET {column} = ? WHERE id = ?", (int(value), charge_id)
            )
            if cursor.rowcount == 0:
                raise GatewayPaymentNotFound(f"sandbox has no charge {charge_id!r}")

    # --- refunds -------------------------------------------------------------------------

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        """Apply one refund request (see the module docstring for how its outcome is chosen)."""
        with self._write() as db:
            answer = self._refund_in(db, request, _micros(self._now()))
        # Raised only after COMMIT: consumed scripts, stored declines and applied refunds stay.
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    def _refund_in(
        self, db: sqlite3.Connection, request: GatewayRefundRequest, now_us: int
    ) -> GatewayRefundResult | GatewayError:
        stored = self._remembered(db, request.idempotency_key, now_us)
        if stored is not None:
            return _replay(stored, request)
        outcome = self._next_outcome(db, request)
        if outcome in _NOT_APPLIED:
            return _not_applied(outcome)
        refusal: GatewayError | None
        if outcome == "decline":
            refusal = GatewayDeclined(
                "sandbox: the refund was declined", gateway_code="refund_declined"
            )
        else:
            refusal = self._check(db, request)
        if isinstance(refusal, GatewayDeclined):
            # Declines are remembered under the key, so a replay gets the same answer.
            self._insert_refund(db, request, now_us, declined=refusal)
            return refusal
        if refusal is not None:
            return refusal
        row = self._insert_refund(db, request, now_us, outcome=outcome)
        return _timeout() if outcome == "timeout_after" else _result(row)

    def _remembered(self, db: sqlite3.Connection, key: str, now_us: int) -> sqlite3.Row | None:
        # Keys older than the window are forgotten, as at Stripe: the request is new again.
        since = now_us - IDEMPOTENCY_WINDOW // _MICROSECOND
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM refunds WHERE idempotency_key = ? AND created_at_us >= ?"
            " ORDER BY seq DESC LIMIT 1",
            (key, since),
        ).fetchone()
        return row

    def _next_outcome(self, db: sqlite3.Connection, request: GatewayRefundRequest) -> str:
        # Charge-specific scripts first, then global ones, each FIFO; consumed in this txn.
        for clause, args in (
            ("charge_id = ?", (request.gateway_payment_id,)),
            ("charge_id IS NULL", ()),
        ):
            row = db.execute(
                f"SELECT seq, outcome FROM scripts WHERE {clause} ORDER BY seq LIMIT 1", args
            ).fetchone()
            if row is not None:
                db.execute("DELETE FROM scripts WHERE seq = ?", (row["seq"],))
                return str(row["outcome"])
        return MAGIC_CENTS.get(request.amount.amount % 100, "succeed")

    def _check(self, db: sqlite3.Connection, request: GatewayRefundRequest) -> GatewayError | None:
        """Why this charge cannot take this refund now, or None."""
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

    def _insert_refund(
        self,
        db: sqlite3.Connection,
        request: GatewayRefundRequest,
        now_us: int,
        *,
        outcome: str = "succeed",
        declined: GatewayDeclined | None = None,
    ) -> sqlite3.Row:
        if declined is not None:
            gateway_refund_id, status, scheduled = None, "failed", None
            failure_code, failure_message = declined.gateway_code, declined.message
        else:
            gateway_refund_id = new_id("sbx_re_")
            pending = outcome.startswith("pending_")
            status = "pending" if pending else "succeeded"
            scheduled = {"pending_succeed": "succeeded", "pending_fail": "failed"}.get(outcome)
            failure_code = failure_message = None
        row: sqlite3.Row = db.execute(
            f"INSERT INTO refunds ({_REFUND_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (
                gateway_refund_id,
                request.refund_id,
                request.idempotency_key,
                request.gateway_payment_id,
                request.amount.amount,
                request.amount.currency,
                status,
                scheduled,
                failure_code,
                failure_message,
                int(declined is not None),
                int(request.void),
                now_us,
                now_us,
            ),
        ).fetchone()
        return row

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        """The newest refund sent with this key or for this refund id, or None.

        Creates nothing and consumes no script. It ignores the idempotency window, since our
        refund id is searched as well. A stored decline comes back as a ``failed`` result.
        """
        with self._read() as db:
            row = db.execute(
                "SELECT * FROM refunds WHERE idempotency_key = ? OR refund_id = ?"
                " ORDER BY seq DESC LIMIT 1",
                (request.idempotency_key, request.refund_id),
            ).fetchone()
        return None if row is None else _result(row)

    def list_refunds(self, gateway_payment_id: str) -> list[GatewayRefund] | None:
        """Every refund made on the charge (stored declines are not refunds), oldest first.

        A refund made in the sandbox's "dashboard" (``dashboard_refund``) carries no refund id.
        """
        with self._read() as db:
            if db.execute("SELECT 1 FROM charges WHERE id = ?", (gateway_payment_id,)).fetchone():
                rows = db.execute(
                    "SELECT * FROM refunds WHERE charge_id = ? AND declined = 0 ORDER BY seq",
                    (gateway_payment_id,),
                ).fetchall()
            else:
                rows = None
        if rows is None:
            raise GatewayPaymentNotFound(
                f"sandbox has no charge {gateway_payment_id!r}", gateway_code="resource_missing"
            )
        return [_listed(row) for row in rows]

    # --- test and demo controls ----------------------------------------------------------

    def script(self, *outcomes: str, charge: str | None = None) -> None:
        """Queue outcomes for the next refund requests, first in first out.

        With ``charge`` they apply to that charge only (and win over global ones). Names:
        succeed, decline, pending_succeed, pending_fail, timeout_after, timeout_before,
        rate_limit, unavailable. A replayed idempotency key consumes none.
        """
        unknown = [o for o in outcomes if o not in OUTCOMES]
        if unknown:
            raise InvalidInput(
                f"unknown sandbox outcome(s) {', '.join(map(repr, unknown))};"
                f" known: {', '.join(OUTCOMES)}"
            )
        with self._write() as db:
            db.executemany(
                "INSERT INTO scripts (charge_id, outcome) VALUES (?, ?)",
                [(charge, outcome) for outcome in outcomes],
            )

    def dashboard_refund(
        self, charge_id: str, amount: Money, *, status: GatewayRefundStatus = "succeeded"
    ) -> str:
        """Refund ``amount`` of a charge as a person would in the gateway's dashboard.

        Not through the kit: the refund carries no refundkit id, and only reconciliation
        (``kit.reconcile``) tells the kit about it. The charge's cap still applies. Returns the
        new gateway refund id.
        """
        if status not in ("succeeded", "pending"):
            raise InvalidInput("a dashboard refund is 'succeeded' or 'pending'")
        gateway_refund_id = new_id("sbx_re_")
        request = GatewayRefundRequest(
            refund_id="",
            payment_id="",
            gateway_payment_id=charge_id,
            amount=amount,
            idempotency_key="dashboard-" + gateway_refund_id,
        )
        with self._write() as db:
            refusal = self._check(db, request)
            if refusal is not None:
                raise refusal
            now_us = _micros(self._now())
            db.execute(
                f"INSERT INTO refunds ({_REFUND_COLUMNS})"
                " VALUES (?, '', ?, ?, ?, ?, ?, ?, NULL, NULL, 0, 0, ?, ?)",
                (
                    gateway_refund_id,
                    request.idempotency_key,
                    charge_id,
                    amount.amount,
                    amount.currency,
                    status,
                    "succeeded" if status == "pending" else None,
                    now_us,
                    now_us,
                ),
            )
        return gateway_refund_id

    def forget_refund(self, gateway_refund_id: str) -> None:
        """Drop a refund from the sandbox's books: drift of the other kind, for tests."""
        with self._write() as db:
            self._existing_refund(db, gateway_refund_id)
            db.execute("DELETE FROM refunds WHERE gateway_refund_id = ?", (gateway_refund_id,))

    def amend_refund(self, gateway_refund_id: str, amount: Money) -> None:
        """Change what the sandbox says a refund was (an amount or currency drift, for tests)."""
        with self._write() as db:
            self._existing_refund(db, gateway_refund_id)
            db.execute(
                "UPDATE refunds SET amount = ?, currency = ? WHERE gateway_refund_id = ?",
                (amount.amount, amount.currency, gateway_refund_id),
            )

    def settle_pending(
        self, gateway_refund_id: str | None = None
    ) -> list[tuple[dict[str, str], bytes]]:
        """Move pending refunds (all, or the one given) to their scheduled final status.

        Returns one signed webhook delivery ``(headers, body)`` per refund moved.
        """
        where = "status = 'pending'" + (" AND gateway_refund_id = ?" if gateway_refund_id else "")
        args = (gateway_refund_id,) if gateway_refund_id else ()
        with self._write() as db:
            if gateway_refund_id:
                self._existing_refund(db, gateway_refund_id)
            rows = db.execute(
                "UPDATE refunds SET status = scheduled_status, updated_at_us = ?,"
                " failure_code = CASE scheduled_status WHEN 'failed' THEN ? END,"
                " failure_message = CASE scheduled_status WHEN 'failed' THEN ? END"
                f" WHERE {where} RETURNING *",
                (_micros(self._now()), PENDING_FAILURE_CODE, "the bank refused the refund", *args),
            ).fetchall()
        return [self._webhook(row) for row in sorted(rows, key=lambda r: int(r["seq"]))]

    def reverse(self, gateway_refund_id: str) -> tuple[dict[str, str], bytes]:
        """Turn a succeeded refund into ``reversed`` (it failed later at the bank).

        Returns its signed webhook delivery ``(headers, body)``.
        """
        with self._write() as db:
            current = self._existing_refund(db, gateway_refund_id)
            if current["status"] != "succeeded":
                raise InvalidInput(
                    f"sandbox refund {gateway_refund_id!r} is {current['status']}; only a"
                    " succeeded refund can be reversed"
                )
            row = db.execute(
                "UPDATE refunds SET status = 'reversed', failure_code = ?, failure_message = ?,"
                " updated_at_us = ? WHERE gateway_refund_id = ? RETURNING *",
                (
                    REVERSAL_CODE,
                    "the bank returned the refund",
                    _micros(self._now()),
                    gateway_refund_id,
                ),
            ).fetchone()
        return self._webhook(row)

    def _existing_refund(self, db: sqlite3.Connection, gateway_refund_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM refunds WHERE gateway_refund_id = ?", (gateway_refund_id,)
        ).fetchone()
        if row is None:
            raise InvalidInput(f"sandbox has no refund {gateway_refund_id!r}")
        return row

    def refunds(self, charge_id: str | None = None) -> list[dict[str, Any]]:
        """Every remembered request (refunds and stored declines) as dicts, oldest first."""
        sql = "SELECT * FROM refunds" + (" WHERE charge_id = ?" if charge_id else "")
        with self._read() as db:
            rows = db.execute(sql + " ORDER BY seq", (charge_id,) if charge_id else ()).fetchall()
        return [dict(row) for row in rows]

    def refund_count(self, charge_id: str | None = None) -> int:
        """How many refunds were actually created (declines and rate limits are not)."""
        sql = "SELECT COUNT(*) FROM refunds WHERE declined = 0"
        with self._read() as db:
            if charge_id is None:
                row = db.execute(sql).fetchone()
            else:
                row = db.execute(sql + " AND charge_id = ?", (charge_id,)).fetchone()
        return int(row[0])

    # --- webhooks ------------------------------------------------------------------------

    def _webhook(self, row: sqlite3.Row) -> tuple[dict[str, str], bytes]:
        now = self._now()
        body = json.dumps(
            {
                "id": new_id("sbx_evt_"),
                "type": "refund.updated",
                "created": _seconds(now),
                "data": {
                    "id": row["gateway_refund_id"],
                    "refund_id": row["refund_id"],
                    "status": row["status"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                    "failure_code": row["failure_code"],
                },
            },
            separators=(",", ":"),
        ).encode()
        return {SIGNATURE_HEADER: self.sign(body, _seconds(now))}, body

    def sign(self, body: bytes, timestamp: int) -> str:
        """The ``sandbox-signature`` header value for ``body`` sent at ``timestamp`` (unix s)."""
        return f"t={timestamp},v1={self._digest(body, timestamp)}"

    def _digest(self, body: bytes, timestamp: int) -> str:
        signed = f"{timestamp}.".encode() + body
        return hmac.new(self._secret, signed, hashlib.sha256).hexdigest()

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
        """Verify the ``sandbox-signature`` header and read the refund update in ``body``.

        Raises ``WebhookVerificationError`` for a missing or garbled header, a wrong
        signature, a timestamp more than 300 s away from the sandbox clock, or a body that
        is not the JSON event. Event types other than ``refund.updated`` give no update.
        """
        self._verify(headers, body)
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookVerificationError("sandbox webhook body is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise WebhookVerificationError("sandbox webhook body is not an event")
        if event.get("type") != "refund.updated":
            return []
        return [_update(event)]

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
        if header is None:
            raise WebhookVerificationError(f"webhook has no {SIGNATURE_HEADER} header")
        timestamp, signatures = _parse_signature(header)
        expected = self._digest(body, timestamp).encode()
        # Several v1 entries are allowed (secret rotation); compare each in constant time.
        if not any(hmac.compare_digest(expected, s.encode()) for s in signatures):
            raise WebhookVerificationError("sandbox webhook signature does not match")
        if abs(_seconds(self._now()) - timestamp) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookVerificationError(
                f"sandbox webhook timestamp is more than {WEBHOOK_TOLERANCE_SECONDS} s away"
            )


def _enable_wal(db: sqlite3.Connection) -> None:
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


def _seconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1)


def _payment(row: sqlite3.Row) -> GatewayPayment:
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
        captured_at=None if captured is None else _EPOCH + captured * _MICROSECOND,
    )


def _listed(row: sqlite3.Row) -> GatewayRefund:
    return GatewayRefund(
        gateway_refund_id=row["gateway_refund_id"],
        amount=Money(row["amount"], row["currency"]),
        status=_status(row["status"]),
        refund_id=row["refund_id"] or None,
        created_at=_EPOCH + row["created_at_us"] * _MICROSECOND,
    )


def _replay(
    stored: sqlite3.Row, request: GatewayRefundRequest
) -> GatewayRefundResult | GatewayError:
    fingerprint = (request.gateway_payment_id, request.amount.amount, request.amount.currency)
    if (stored["charge_id"], stored["amount"], stored["currency"]) != fingerprint:
        return GatewayDeclined(
            "sandbox: this idempotency key was used with different parameters",
            gateway_code="idempotency_key_reused",
        )
    if stored["declined"]:
        return GatewayDeclined(stored["failure_message"], gateway_code=stored["failure_code"])
    # The stored refund as it is now (a pending one may have settled since).
    return _result(stored)


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


def _parse_signature(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookVerificationError(f"garbled {SIGNATURE_HEADER} header")
        if key == "t":
            if not value.isascii() or not value.isdigit():
                raise WebhookVerificationError(f"garbled timestamp in {SIGNATURE_HEADER}")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookVerificationError(f"{SIGNATURE_HEADER} needs t= and v1=")
    return timestamp, signatures


def _update(event: dict[str, Any]) -> GatewayRefundUpdate:
    data = event.get("data")
    try:
        if not isinstance(data, dict) or data.get("status") not in _STATUSES:
            raise ValueError("no refund status")
        return GatewayRefundUpdate(
            status=_status(data["status"]),
            refund_id=_opt_str(data.get("refund_id")),
            gateway_refund_id=_opt_str(data.get("id")),
            amount=Money(data["amount"], data["currency"]),
            failure_code=_opt_str(data.get("failure_code")),
            event_id=event["id"],
        )
    except (KeyError, ValueError, InvalidMoney) as exc:
        raise WebhookVerificationError(f"sandbox webhook event is malformed: {exc}") from None


def _opt_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


@hookimpl
def refundkit_register_gateways(register: GatewayRegistry) -> None:
    """Announce the sandbox gateway (the kit loads this module as a built-in plugin)."""
    register(SandboxGateway)

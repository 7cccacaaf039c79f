"""``SandboxGateway``: the Gateway methods of the offline sandbox, over its own books.

How a refund's outcome is chosen (scripts, then the amount's magic cents) is told in the
package docstring; ``MAGIC_CENTS`` below is the table.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

import attrs

from ..._errors import (
    CardDataRefused,
    ConfigurationError,
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    InvalidMoney,
    PaymentExists,
    WebhookUnprocessable,
)
from ..._gateway import (
    Capabilities,
    Gateway,
    GatewayPayment,
    GatewayRefund,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRefundStatus,
    GatewayRefundUpdate,
)
from ..._model import Card, Payment, new_id
from ..._money import Money
from ._books import (
    MICROSECOND,
    REFUND_COLUMNS,
    REFUND_STATUSES,
    STATUSES,
    SandboxBooks,
    check_refund,
    listed_of,
    micros,
    payment_of,
    result_of,
    status_of,
)
from ._controls import SandboxControls
from ._signing import DEFAULT_WEBHOOK_SECRET, WebhookSigner

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
IDEMPOTENCY_WINDOW: Final = timedelta(hours=24)

_NOT_APPLIED: Final = frozenset({"timeout_before", "rate_limit", "unavailable"})

#: Every error code the sandbox puts in an error answer (``error_body``), refusals first.
ERROR_CODES: Final = (
    "refund_declined",
    "charge_disputed",
    "currency_mismatch",
    "amount_invalid",
    "charge_unsettled",
    "amount_too_large",
    "idempotency_key_reused",
    "resource_missing",
    "rate_limited",
    "unavailable",
    "timeout",
)


@attrs.frozen
class HttpAnswer:
    """A scripted HTTP error answer (``script_http_error``), read by ``http_error``."""

    status: int
    body: bytes


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


class SandboxGateway(SandboxControls, Gateway):
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
    #: Every status a sandbox refund can be in → the kit's outcome (the status table).
    REFUND_STATUSES: ClassVar[Mapping[str, GatewayRefundStatus]] = REFUND_STATUSES

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        path = self._config_path()
        self._signer = WebhookSigner(self.config.get("webhook_secret", DEFAULT_WEBHOOK_SECRET))
        clock = self.config.get("clock") or _utcnow
        if not callable(clock):
            raise ConfigurationError("sandbox clock must be a callable returning a datetime")
        self._books = SandboxBooks(path, clock)

    def _config_path(self) -> str:
        path = self.config.get("path")
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise ConfigurationError(
                "the sandbox gateway needs config['path'] (a file path or ':memory:')"
            )
        return path

    def close(self) -> None:
        self._books.close()

    # --- charges -------------------------------------------------------------------------

    def register_payment(self, payment: Payment) -> GatewayPayment | None:
        """Create the charge ``payment.gateway_payment_id`` unless it exists (idempotent).

        The card is ``payment.card`` or the test Visa 4242 (12/2030); the disputed and settled
        flags are taken from the payment. Raises ``PaymentExists`` if the charge exists with
        another amount or currency.
        """
        with self._books.write() as db:
            existing = db.execute(
                "SELECT amount, currency FROM charges WHERE id = ?",
                (payment.gateway_payment_id,),
            ).fetchone()
            if existing is None:
                _insert_charge(db, payment)
            elif (existing["amount"], existing["currency"]) != (
                payment.amount.amount,
                payment.amount.currency,
            ):
                raise PaymentExists(
                    f"sandbox charge {payment.gateway_payment_id!r} exists with "
                    f"{Money(existing['amount'], existing['currency'])}, not {payment.amount}"
                )
        return self.fetch_payment(payment.gateway_payment_id)

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        """The charge with ``refunded`` = the sum of its succeeded refunds."""
        with self._books.read() as db:
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
        return payment_of(row)

    # --- refunds -------------------------------------------------------------------------

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        """Apply one refund request (see the package docstring for how its outcome is chosen)."""
        with self._books.write() as db:
            answer = _refund_in(db, request, micros(self._books.now()))
        # Raised only after COMMIT: consumed scripts, stored declines and applied refunds stay.
        if isinstance(answer, HttpAnswer):
            raise self.http_error(answer.status, answer.body)
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    # --- HTTP error answers, read as a plugin reads its SDK's errors ---------------------

    @staticmethod
    def error_body(code: str, message: str) -> bytes:
        """An error answer's body as the sandbox writes it: ``{"error": {code, message}}``."""
        return json.dumps({"error": {"code": code, "message": message}}).encode()

    def http_error(self, status: int, body: bytes) -> GatewayError:
        """What an HTTP error answer means. The status is read before any code in the body:
        a 5xx may come after the refund was made, so it is a ``GatewayTimeout`` whatever the
        body says; only a 4xx refuses. (A method: the conformance tests override it to build
        a gateway that trusts the body of a 5xx, and check that the suite catches it.)"""
        code = _error_code(body)
        message = f"sandbox: HTTP {status}" + (f" ({code})" if code else "")
        if status >= 500 or status == 409:  # 409: the same key is still being processed
            return GatewayTimeout(
                f"{message}; the refund may or may not have been made",
                gateway_code=code or f"http_{status}",
            )
        if status == 429:
            return GatewayRateLimited(message, gateway_code=code or "rate_limited")
        if status in (401, 403):
            return GatewayAuthenticationError(message, gateway_code=code or f"http_{status}")
        if status == 404:
            return GatewayPaymentNotFound(message, gateway_code=code or "resource_missing")
        return GatewayDeclined(message, gateway_code=code or f"http_{status}")

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        """The newest refund sent with this key or for this refund id, or None.

        Creates nothing and consumes no script. It ignores the idempotency window, since our
        refund id is searched as well. A stored decline comes back as a ``failed`` result.
        """
        with self._books.read() as db:
            row = db.execute(
                "SELECT * FROM refunds WHERE idempotency_key = ? OR refund_id = ?"
                " ORDER BY seq DESC LIMIT 1",
                (request.idempotency_key, request.refund_id),
            ).fetchone()
        return None if row is None else result_of(row)

    def list_refunds(self, gateway_payment_id: str) -> list[GatewayRefund] | None:
        """Every refund made on the charge (stored declines are not refunds), oldest first.

        A refund made in the sandbox's "dashboard" (``dashboard_refund``) carries no refund id.
        """
        with self._books.read() as db:
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
        return [listed_of(row) for row in rows]

    # --- webhooks ------------------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int) -> str:
        """The ``sandbox-signature`` header value for ``body`` sent at ``timestamp`` (unix s)."""
        return self._signer.sign(body, timestamp)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[GatewayRefundUpdate]:
        """Verify the ``sandbox-signature`` header and read the refund update in ``body``.

        Raises ``WebhookVerificationError`` for a missing or garbled header, a wrong
        signature or a timestamp more than 300 s away from the sandbox clock, and (once the
        signature holds) ``WebhookUnprocessable`` for a body that is not the JSON event.
        Event types other than ``refund.updated`` give no update.
        """
        self._verify(headers, body)
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookUnprocessable("sandbox webhook body is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise WebhookUnprocessable("sandbox webhook body is not an event")
        if event.get("type") != "refund.updated":
            return []
        return [_update(event)]

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        # A method, not an inline call: the conformance tests override it to build a gateway
        # that trusts unsigned webhooks, and check that the suite catches it.
        self._signer.verify(headers, body, self._books.now)


def _insert_charge(db: sqlite3.Connection, payment: Payment) -> None:
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
            micros(captured) if captured.tzinfo is not None else None,
        ),
    )


# --- one refund request, inside its write transaction ---------------------------------------


def _refund_in(
    db: sqlite3.Connection, request: GatewayRefundRequest, now_us: int
) -> GatewayRefundResult | GatewayError | HttpAnswer:
    stored = _remembered(db, request.idempotency_key, now_us)
    if stored is not None:
        return _replay(stored, request)
    outcome = _next_outcome(db, request)
    if outcome.startswith("http:"):
        return _http_answer(db, request, now_us, int(outcome.removeprefix("http:")))
    if outcome in _NOT_APPLIED:
        return _not_applied(outcome)
    refusal: GatewayError | None
    if outcome == "decline":
        refusal = GatewayDeclined(
            "sandbox: the refund was declined", gateway_code="refund_declined"
        )
    else:
        refusal = check_refund(db, request)
    if isinstance(refusal, GatewayDeclined):
        # Declines are remembered under the key, so a replay gets the same answer.
        _insert_refund(db, request, now_us, declined=refusal)
        return refusal
    if refusal is not None:
        return refusal
    row = _insert_refund(db, request, now_us, outcome=outcome)
    return _timeout() if outcome == "timeout_after" else result_of(row)


def _http_answer(
    db: sqlite3.Connection, request: GatewayRefundRequest, now_us: int, seq: int
) -> HttpAnswer:
    row = db.execute("SELECT * FROM http_answers WHERE seq = ?", (seq,)).fetchone()
    db.execute("DELETE FROM http_answers WHERE seq = ?", (seq,))
    if row["applied"] and check_refund(db, request) is None:
        _insert_refund(db, request, now_us)  # made, then the answer went wrong
    return HttpAnswer(int(row["status"]), bytes(row["body"]))


def _error_code(body: bytes) -> str | None:
    """``error.code`` of a sandbox error body, or None for any other body."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code else None


def _remembered(db: sqlite3.Connection, key: str, now_us: int) -> sqlite3.Row | None:
    # Keys older than the window are forgotten, as at Stripe: the request is new again.
    since = now_us - IDEMPOTENCY_WINDOW // MICROSECOND
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM refunds WHERE idempotency_key = ? AND created_at_us >= ?"
        " ORDER BY seq DESC LIMIT 1",
        (key, since),
    ).fetchone()
    return row


def _next_outcome(db: sqlite3.Connection, request: GatewayRefundRequest) -> str:
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


def _insert_refund(
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
        f"INSERT INTO refunds ({REFUND_COLUMNS})"
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
    return result_of(stored)


# --- an inbound webhook's event --------------------------------------------------------------


def _update(event: dict[str, Any]) -> GatewayRefundUpdate:
    data = event.get("data")
    try:
        if not isinstance(data, dict) or data.get("status") not in STATUSES:
            raise ValueError("no refund status")
        return GatewayRefundUpdate(
            status=status_of(data["status"]),
            refund_id=_opt_str(data.get("refund_id")),
            gateway_refund_id=_opt_str(data.get("id")),
            amount=Money(data["amount"], data["currency"]),
            failure_code=_opt_str(data.get("failure_code")),
            event_id=event["id"],
        )
    except CardDataRefused:
        raise  # an id holding a card number: refused as such, not as a malformed event
    except (KeyError, ValueError, InvalidMoney) as exc:
        raise WebhookUnprocessable(f"sandbox webhook event is malformed: {exc}") from None


def _opt_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value

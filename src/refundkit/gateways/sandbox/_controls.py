"""The sandbox's test and demo controls: what a test does to the "remote" side.

Scripting outcomes, settling and reversing refunds (each answered by the signed webhook a real
gateway would send), flagging charges, and drift (refunds made, forgotten or changed behind the
kit's back). They are mixed into ``SandboxGateway`` so that ``kit.gateway("sandbox")`` offers
them beside the gateway methods.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from ..._errors import GatewayPaymentNotFound, InvalidInput
from ..._gateway import GatewayRefundRequest, GatewayRefundStatus
from ..._model import new_id
from ..._money import Money
from ._books import REFUND_COLUMNS, SandboxBooks, check_refund, micros
from ._signing import SIGNATURE_HEADER, WebhookSigner, seconds

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

# Failure codes of refunds that failed after being created (bank side), as in webhooks.
PENDING_FAILURE_CODE: Final = "refund_failed"
REVERSAL_CODE: Final = "refund_reversed"

#: One signed webhook delivery: (headers, body).
Delivery = tuple[dict[str, str], bytes]


class SandboxControls:
    """Test and demo controls over the sandbox's books; see the module docstring."""

    # Set by SandboxGateway.__init__: the controls act on the same books and secret.
    _books: SandboxBooks
    _signer: WebhookSigner

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
        with self._books.write() as db:
            db.executemany(
                "INSERT INTO scripts (charge_id, outcome) VALUES (?, ?)",
                [(charge, outcome) for outcome in outcomes],
            )

    def script_http_error(
        self, status: int, body: bytes = b"", *, applied: bool = False, charge: str | None = None
    ) -> None:
        """Queue an HTTP error answer for the next refund request (with ``charge``: on it).

        The request is answered with ``status`` and ``body`` (say
        ``SandboxGateway.error_body(code, message)``), which the gateway reads as a plugin reads
        its SDK's error (``SandboxGateway.http_error``). With ``applied`` the sandbox made the
        refund before answering (a 5xx after the effect, when the charge allows it). Queued
        with ``script``'s outcomes, first in first out.
        """
        if type(status) is not int or not 400 <= status <= 599:
            raise InvalidInput(f"an HTTP error status is 400-599, not {status!r}")
        if not isinstance(body, bytes):
            raise InvalidInput("an HTTP error body is bytes")
        with self._books.write() as db:
            seq = db.execute(
                "INSERT INTO http_answers (status, body, applied) VALUES (?, ?, ?) RETURNING seq",
                (status, body, int(applied)),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO scripts (charge_id, outcome) VALUES (?, ?)", (charge, f"http:{seq}")
            )

    # --- charges -------------------------------------------------------------------------

    def set_disputed(self, charge_id: str, disputed: bool = True) -> None:
        """Mark a charge disputed (refunds are then declined with ``charge_disputed``)."""
        self._set_flag(charge_id, "disputed", disputed)

    def set_settled(self, charge_id: str, settled: bool = True) -> None:
        """Mark a charge settled or not (an unsettled charge can only be voided in full)."""
        self._set_flag(charge_id, "settled", settled)

    def _set_flag(self, charge_id: str, column: str, value: bool) -> None:
        # ``column`` is one of two literals above, never caller input.
        with self._books.write() as db:
            cursor = db.execute(
                f"UPDATE charges SET {column} = ? WHERE id = ?", (int(value), charge_id)
            )
            if cursor.rowcount == 0:
                raise GatewayPaymentNotFound(f"sandbox has no charge {charge_id!r}")

    # --- drift ---------------------------------------------------------------------------

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
        with self._books.write() as db:
            refusal = check_refund(db, request)
            if refusal is not None:
                raise refusal
            now_us = micros(self._books.now())
            db.execute(
                f"INSERT INTO refunds ({REFUND_COLUMNS})"
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
        with self._books.write() as db:
            _existing_refund(db, gateway_refund_id)
            db.execute("DELETE FROM refunds WHERE gateway_refund_id = ?", (gateway_refund_id,))

    def amend_refund(self, gateway_refund_id: str, amount: Money) -> None:
        """Change what the sandbox says a refund was (an amount or currency drift, for tests)."""
        with self._books.write() as db:
            _existing_refund(db, gateway_refund_id)
            db.execute(
                "UPDATE refunds SET amount = ?, currency = ? WHERE gateway_refund_id = ?",
                (amount.amount, amount.currency, gateway_refund_id),
            )

    # --- later outcomes, announced by webhook --------------------------------------------

    def settle_pending(self, gateway_refund_id: str | None = None) -> list[Delivery]:
        """Move pending refunds (all, or the one given) to their scheduled final status.

        Returns one signed webhook delivery ``(headers, body)`` per refund moved.
        """
        where = "status = 'pending'" + (" AND gateway_refund_id = ?" if gateway_refund_id else "")
        args = (gateway_refund_id,) if gateway_refund_id else ()
        with self._books.write() as db:
            if gateway_refund_id:
                _existing_refund(db, gateway_refund_id)
            rows = db.execute(
                "UPDATE refunds SET status = scheduled_status, updated_at_us = ?,"
                " failure_code = CASE scheduled_status WHEN 'failed' THEN ? END,"
                " failure_message = CASE scheduled_status WHEN 'failed' THEN ? END"
                f" WHERE {where} RETURNING *",
                (
                    micros(self._books.now()),
                    PENDING_FAILURE_CODE,
                    "the bank refused the refund",
                    *args,
                ),
            ).fetchall()
        ordered = sorted(rows, key=lambda r: int(r["seq"]))
        return [self._webhook(row, previous="pending") for row in ordered]

    def reverse(self, gateway_refund_id: str) -> Delivery:
        """Turn a succeeded refund into ``reversed`` (it failed later at the bank), as Adyen
        reports it (``REFUNDED_REVERSED``).

        Returns its signed webhook delivery ``(headers, body)``.
        """
        return self._after_success(gateway_refund_id, "reversed", REVERSAL_CODE)

    def fail_after_success(self, gateway_refund_id: str) -> Delivery:
        """Turn a succeeded refund into ``failed``, as Stripe reports a card refund that fails
        after it succeeded (``refund.failed``: the refund's status is now failed).

        Returns its signed webhook delivery ``(headers, body)``.
        """
        return self._after_success(gateway_refund_id, "failed", PENDING_FAILURE_CODE)

    def _after_success(self, gateway_refund_id: str, status: str, code: str) -> Delivery:
        with self._books.write() as db:
            current = _existing_refund(db, gateway_refund_id)
            if current["status"] != "succeeded":
                raise InvalidInput(
                    f"sandbox refund {gateway_refund_id!r} is {current['status']}; only a"
                    f" succeeded refund can become {status}"
                )
            row = db.execute(
                "UPDATE refunds SET status = ?, failure_code = ?, failure_message = ?,"
                " updated_at_us = ? WHERE gateway_refund_id = ? RETURNING *",
                (
                    status,
                    code,
                    "the bank returned the refund",
                    micros(self._books.now()),
                    gateway_refund_id,
                ),
            ).fetchone()
        return self._webhook(row, previous="succeeded")

    def announce(self, gateway_refund_id: str) -> Delivery:
        """The signed webhook about a refund as it stands now (any status, pending too): the
        event a gateway sends again, or late, or out of order."""
        with self._books.read() as db:
            row = _existing_refund(db, gateway_refund_id)
        return self._webhook(row)

    def _webhook(self, row: sqlite3.Row, previous: str | None = None) -> Delivery:
        """The signed ``refund.updated`` event a real gateway would send about ``row``;
        ``previous_status`` is the status it left, as Stripe's ``previous_attributes`` say
        (a plugin must not read it to decide the refund's state)."""
        now = self._books.now()
        body = json.dumps(
            {
                "id": new_id("sbx_evt_"),
                "type": "refund.updated",
                "created": seconds(now),
                "data": {
                    "id": row["gateway_refund_id"],
                    "refund_id": row["refund_id"],
                    "status": row["status"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                    "failure_code": row["failure_code"],
                    "previous_status": previous,
                },
            },
            separators=(",", ":"),
        ).encode()
        return {SIGNATURE_HEADER: self._signer.sign(body, seconds(now))}, body

    # --- what the books hold -------------------------------------------------------------

    def refunds(self, charge_id: str | None = None) -> list[dict[str, Any]]:
        """Every remembered request (refunds and stored declines) as dicts, oldest first."""
        sql = "SELECT * FROM refunds" + (" WHERE charge_id = ?" if charge_id else "")
        with self._books.read() as db:
            rows = db.execute(sql + " ORDER BY seq", (charge_id,) if charge_id else ()).fetchall()
        return [dict(row) for row in rows]

    def refund_count(self, charge_id: str | None = None) -> int:
        """How many refunds were actually created (declines and rate limits are not)."""
        sql = "SELECT COUNT(*) FROM refunds WHERE declined = 0"
        with self._books.read() as db:
            if charge_id is None:
                row = db.execute(sql).fetchone()
            else:
                row = db.execute(sql + " AND charge_id = ?", (charge_id,)).fetchone()
        return int(row[0])


def _existing_refund(db: sqlite3.Connection, gateway_refund_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM refunds WHERE gateway_refund_id = ?", (gateway_refund_id,)
    ).fetchone()
    if row is None:
        raise InvalidInput(f"sandbox has no refund {gateway_refund_id!r}")
    return row

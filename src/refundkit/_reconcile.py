"""Drift reconciliation: what a gateway's books say about a payment against refundkit's record.

Refunds can reach a gateway without refundkit (a person in the gateway's dashboard), and a
gateway can lose or alter one. This module is the pure core: ``compare`` pairs the gateway's
listed refunds with the local ones and says what differs, and the findings say so in words.
``_engine.reconcile`` applies that per payment:

- a refund made outside refundkit is *imported*: recorded with its gateway refund id, counted
  against the cap, journaled and announced as ``refund.external``;
- a local refund in flight that the gateway has settled is *resolved* through the kit's one
  bookkeeping path (``_engine.transitions``);
- an amount or currency that differs goes to ``manual_review``;
- a local refund the gateway does not know, or two gateway refunds for one refund id, is
  *flagged* for a person and nothing is written.

Reconciling twice imports nothing twice: an import is found again by its gateway refund id,
and ``UNIQUE(gateway, gateway_refund_id)`` stops two reconcilers importing the same refund.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from ._gateway import GatewayPayment, GatewayRefund
from ._model import EXTERNAL_KEY_PREFIX, Payment, Refund, RefundStatus, new_id
from ._money import Money

S = RefundStatus

#: What a finding did: wrote a refund, moved one, sent one to a person, or only reported.
ACTIONS: Final = ("imported", "resolved", "manual_review", "flagged")
#: Local statuses that claim the gateway holds the refund; missing there means drift.
_CLAIMS_GATEWAY: Final = (S.SUCCEEDED, S.PENDING, S.REVERSED)
#: Statuses of a gateway refund that moved money (or may still): these are imported.
IMPORTABLE: Final = ("succeeded", "pending")
EXTERNAL_REASON: Final = "external"


@attrs.frozen
class Finding:
    """One difference between the gateway and the local record, and what was done about it."""

    code: str
    action: str
    payment_id: str
    message: str
    refund_id: str | None = None
    gateway_refund_id: str | None = None
    amount: Money | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "action": self.action,
            "payment_id": self.payment_id,
            "refund_id": self.refund_id,
            "gateway_refund_id": self.gateway_refund_id,
            "amount": self.amount.amount if self.amount else None,
            "currency": self.amount.currency if self.amount else None,
            "message": self.message,
        }


@attrs.frozen
class ReconcileReport:
    """What one ``reconcile()`` pass found, payment by payment."""

    payments_checked: int = 0
    findings: tuple[Finding, ...] = ()

    def by_action(self, action: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.action == action)

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "payments_checked": self.payments_checked,
            "counts": {a: len(self.by_action(a)) for a in ACTIONS},
            "findings": [f.to_dict() for f in self.findings],
        }


# --- the pure core ---------------------------------------------------------------------------


@attrs.frozen
class Pair:
    """A local refund and the gateway's record of it."""

    local: Refund
    remote: GatewayRefund


@attrs.frozen
class Comparison:
    pairs: tuple[Pair, ...] = ()
    #: Listed by the gateway, unknown locally (a dashboard refund): import candidates.
    external: tuple[GatewayRefund, ...] = ()
    #: A second gateway refund carrying a refund id already paired: a refund made twice.
    duplicates: tuple[Pair, ...] = ()
    #: Local refunds that claim the gateway holds them, not listed there.
    missing: tuple[Refund, ...] = ()


def compare(local: Sequence[Refund], remote: Sequence[GatewayRefund]) -> Comparison:
    """Pair gateway refunds with local ones: by gateway refund id, then by our refund id."""
    by_gateway_id = {r.gateway_refund_id: r for r in local if r.gateway_refund_id}
    by_id = {r.id: r for r in local}
    paired: dict[str, Refund] = {}
    pairs: list[Pair] = []
    duplicates: list[Pair] = []
    external: list[GatewayRefund] = []
    for gr in remote:
        mine = by_gateway_id.get(gr.gateway_refund_id)
        if mine is None and gr.refund_id is not None:
            mine = by_id.get(gr.refund_id)
            if mine is not None and mine.gateway_refund_id not in (None, gr.gateway_refund_id):
                duplicates.append(Pair(mine, gr))  # our refund is known under another id
                continue
        if mine is None:
            external.append(gr)
        elif mine.id in paired:
            duplicates.append(Pair(mine, gr))
        else:
            paired[mine.id] = mine
            pairs.append(Pair(mine, gr))
    missing = tuple(r for r in local if r.id not in paired and r.status in _CLAIMS_GATEWAY)
    return Comparison(tuple(pairs), tuple(external), tuple(duplicates), missing)


def mismatch(pair: Pair) -> str | None:
    """``amount_mismatch`` or ``currency_mismatch`` when the two records disagree, else None."""
    if pair.local.amount.currency != pair.remote.amount.currency:
        return "currency_mismatch"
    if pair.local.amount != pair.remote.amount:
        return "amount_mismatch"
    return None


def external_refund(payment: Payment, remote: GatewayRefund, now: datetime) -> Refund:
    refund_id = new_id("rf_")
    return Refund(
        id=refund_id,
        payment_id=payment.id,
        amount=remote.amount,
        status=S(remote.status),
        reason=EXTERNAL_REASON,
        actor=f"gateway:{payment.gateway}",
        idempotency_key=None,
        gateway=payment.gateway,
        gateway_idempotency_key=EXTERNAL_KEY_PREFIX + refund_id,
        gateway_refund_id=remote.gateway_refund_id,
        created_at=now,
        updated_at=now,
    )


# --- findings --------------------------------------------------------------------------------


class Found:
    """Builds findings for one payment and refund pair."""

    def __init__(self, payment: Payment, local: Refund | None, remote: GatewayRefund) -> None:
        self.payment, self.local, self.remote = payment, local, remote

    def __call__(self, code: str, action: str, message: str) -> Finding:
        return Finding(
            code=code,
            action=action,
            payment_id=self.payment.id,
            message=message,
            refund_id=self.local.id if self.local else None,
            gateway_refund_id=self.remote.gateway_refund_id,
            amount=self.remote.amount,
        )


def flag_changes(payment: Payment, remote: GatewayPayment) -> list[Finding]:
    """Settlement and dispute as the gateway now says: the quote's limits read them."""
    changes = []
    if remote.settled != payment.settled:
        changes.append(
            ("settled", "the payment has settled at the gateway: partial refunds are possible")
            if remote.settled
            else ("unsettled", "the gateway says the payment has not settled")
        )
    if remote.disputed != payment.disputed:
        changes.append(
            ("dispute_opened", "the payment is disputed at the gateway: refunds are refused")
            if remote.disputed
            else ("dispute_closed", "the payment's dispute is closed at the gateway")
        )
    return [
        Finding(code=code, action="updated", payment_id=payment.id, message=message)
        for code, message in changes
    ]


def flag(payment: Payment, code: str, message: str) -> Finding:
    return Finding(code=code, action="flagged", payment_id=payment.id, message=message)


def disagree(local: Refund, remote: GatewayRefund) -> str:
    return f"the gateway says {remote.amount}, refundkit {local.amount}"


def duplicate(payment: Payment, pair: Pair) -> Finding:
    return Found(payment, pair.local, pair.remote)(
        "duplicate_at_gateway",
        "flagged",
        f"a second gateway refund for refund {pair.local.id}; a person must check",
    )


def missing(payment: Payment, refund: Refund) -> Finding:
    return Finding(
        code="unknown_at_gateway",
        action="flagged",
        payment_id=payment.id,
        message=f"refundkit records it {refund.status}; the gateway does not list it",
        refund_id=refund.id,
        gateway_refund_id=refund.gateway_refund_id,
        amount=refund.amount,
    )

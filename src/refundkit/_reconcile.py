"""Drift reconciliation: what a gateway's books say about a payment against refundkit's record.

Refunds can reach a gateway without refundkit (a person in the gateway's dashboard), and a
gateway can lose or alter one. ``compare`` is the pure core: it pairs the gateway's listed
refunds with the local ones and says what differs. ``Reconciler`` applies that per payment:

- a refund made outside refundkit is *imported*: recorded with its gateway refund id, counted
  against the cap, journaled and announced as ``refund.external``;
- a local refund in flight that the gateway has settled is *resolved* through the kit's one
  bookkeeping path (``RefundKit._apply_result``);
- an amount or currency that differs goes to ``manual_review``;
- a local refund the gateway does not know, or two gateway refunds for one refund id, is
  *flagged* for a person and nothing is written.

Reconciling twice imports nothing twice: an import is found again by its gateway refund id,
and ``UNIQUE(gateway, gateway_refund_id)`` stops two reconcilers importing the same refund.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import attrs

from . import _store as st
from ._errors import RefundkitError
from ._events import REFUND_EXTERNAL, new_event_id, refund_event
from ._gateway import GatewayPayment, GatewayRefund, GatewayRefundResult
from ._ledger import refund_journal
from ._model import EXTERNAL_KEY_PREFIX, Destination, Payment, Refund, RefundStatus, new_id
from ._money import Money

if TYPE_CHECKING:
    from ._kit import RefundKit

S = RefundStatus

#: What a finding did: wrote a refund, moved one, sent one to a person, or only reported.
ACTIONS: Final = ("imported", "resolved", "manual_review", "flagged")
#: Local statuses that claim the gateway holds the refund; missing there means drift.
_CLAIMS_GATEWAY: Final = (S.SUCCEEDED, S.PENDING, S.REVERSED)
#: Statuses of a gateway refund that moved money (or may still): these are imported.
_IMPORTABLE: Final = ("succeeded", "pending")
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


# --- applying it -----------------------------------------------------------------------------


class Reconciler:
    """Runs ``compare`` for each payment and applies the result through the kit."""

    def __init__(self, kit: RefundKit) -> None:
        self.kit = kit

    def run(
        self,
        payment_id: str | None = None,
        *,
        gateway: str | None = None,
        since: datetime | None = None,
    ) -> ReconcileReport:
        with self.kit.store.connect() as conn:
            payments = st.payments_to_reconcile(
                conn, payment_id=payment_id, gateway=gateway, since=since
            )
        findings: list[Finding] = []
        for payment in payments:
            findings.extend(self._payment(payment))
        self.kit.dispatch_events()
        return ReconcileReport(len(payments), tuple(findings))

    def _payment(self, payment: Payment) -> list[Finding]:
        gw = self.kit.gateway(payment.gateway)
        try:
            remote_payment = gw.fetch_payment(payment.gateway_payment_id)
            listed = gw.list_refunds(payment.gateway_payment_id)
        except RefundkitError as exc:
            return [_flag(payment, "gateway_error", f"could not read the gateway: {exc}")]
        if remote_payment.amount != payment.amount:
            return [
                _flag(
                    payment,
                    "payment_mismatch",
                    f"the gateway holds {remote_payment.amount} for this payment, "
                    f"refundkit {payment.amount}; its refunds were not compared",
                )
            ]
        flags = _flag_changes(payment, remote_payment)
        payment = self.kit._store_flags(payment, remote_payment.settled, remote_payment.disputed)
        local = self.kit.refunds(payment.id)
        if listed is None:
            return flags + self._by_total(payment, local, remote_payment.refunded)
        found = compare(local, listed)
        out: list[Finding | None] = [*flags]
        out += [self._pair(payment, p) for p in found.pairs]
        out += [self._import(payment, gr) for gr in found.external]
        out += [_duplicate(payment, p) for p in found.duplicates]
        out += [_missing(payment, r) for r in found.missing]
        return [f for f in out if f is not None]

    def _pair(self, payment: Payment, pair: Pair) -> Finding | None:
        local, remote = pair.local, pair.remote
        code = mismatch(pair)
        if code is None and local.status.value == remote.status:
            return None
        if code is not None and local.status is S.MANUAL_REVIEW:
            return None  # already with a person
        before = local.status
        moved = self.kit._apply_result(
            local,
            payment,
            GatewayRefundResult(remote.status, remote.gateway_refund_id, remote.amount),
        )
        found = _Found(payment, local, remote)
        if code is not None:
            if moved.status is S.MANUAL_REVIEW:
                return found(code, "manual_review", _disagree(local, remote))
            return found(code, "flagged", _disagree(local, remote) + f"; the refund is {before}")
        if moved.status.value == remote.status or (
            remote.status == "failed" and moved.status is S.REVERSED
        ):
            return found("status_changed", "resolved", f"{before} -> {moved.status} (gateway)")
        return found(
            "status_mismatch",
            "flagged",
            f"refundkit says {moved.status}, the gateway says {remote.status}",
        )

    def _import(self, payment: Payment, remote: GatewayRefund) -> Finding | None:
        if remote.status not in _IMPORTABLE:
            return None  # failed or reversed outside refundkit: no money moved
        found = _Found(payment, None, remote)
        if remote.amount.currency != payment.amount.currency:
            return found(
                "currency_mismatch",
                "manual_review",
                f"a refund in {remote.amount.currency} on a {payment.amount.currency} payment",
            )
        kit = self.kit
        now = kit.clock()
        with kit.store.write() as tx:
            if st.refund_by_gateway_id(tx, payment.gateway, remote.gateway_refund_id):
                return None  # another reconciler imported it meanwhile
            locked = st.get_payment(tx, payment.id, lock=True)
            assert locked is not None  # payments are never deleted
            why = _no_room(tx, locked, remote.amount)
            if why:
                return found("over_cap", "manual_review", why)
            refund = _external_refund(locked, remote, now)
            _write_import(tx, refund, locked, now)
        made = found("imported", "imported", "made at the gateway, not through refundkit")
        return attrs.evolve(made, refund_id=refund.id)

    def _by_total(
        self, payment: Payment, local: Sequence[Refund], refunded: Money
    ) -> list[Finding]:
        """A gateway that cannot list refunds: compare its refunded total with ours."""
        ours = payment.refunded or Money.zero(payment.amount.currency)
        if refunded.currency != ours.currency:
            return [_flag(payment, "currency_mismatch", f"the gateway refunded {refunded}")]
        diff = refunded.amount - ours.amount
        if diff == 0:
            return []
        if diff < 0 or any(r.status.in_flight for r in local):
            return [
                _flag(
                    payment,
                    "total_mismatch",
                    f"the gateway refunded {refunded}, refundkit {ours}; "
                    + ("run recover first" if diff > 0 else "a local refund is not at the gateway"),
                )
            ]
        gone = Money(diff, ours.currency)
        remote = GatewayRefund(gateway_refund_id=new_id("total-"), amount=gone, status="succeeded")
        return [f for f in [self._import(payment, remote)] if f is not None]


def _no_room(tx: st.Tx, payment: Payment, amount: Money) -> str | None:
    """Why the refundable balance cannot take an outside refund of ``amount``, or None."""
    held = payment.held.amount if payment.held else 0
    credited = payment.credited.amount if payment.credited else 0
    room = payment.amount.amount - held - credited
    if amount.amount > room:
        return (
            f"an outside refund of {amount} exceeds what refundkit still holds refundable "
            f"({Money(room, amount.currency)}); a person must decide"
        )
    if payment.destination is Destination.CUSTOMER_BALANCE:
        lot = st.lot_for_payment(tx, payment.id)
        if lot is not None and lot["remaining"] < amount.amount:
            return (
                f"an outside refund of {amount}, but only "
                f"{Money(lot['remaining'], amount.currency)} of the top-up is still in the "
                "customer balance; a person must decide"
            )
    return None


def _external_refund(payment: Payment, remote: GatewayRefund, now: datetime) -> Refund:
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


def _write_import(tx: st.Tx, refund: Refund, payment: Payment, now: datetime) -> None:
    """The refund, its hold, its lot movement, journal and event: one transaction."""
    amt = refund.amount.amount
    lot = None
    if payment.destination is Destination.CUSTOMER_BALANCE:
        lot = st.lot_for_payment(tx, payment.id)
        if lot is not None:
            refund = attrs.evolve(refund, lot_id=lot["id"])
    st.insert_refund(tx, refund, f"external:{refund.gateway_refund_id}", void=False)
    st.update_refund(tx, refund.id, {"gateway_refund_id": refund.gateway_refund_id})
    st.add_held(tx, payment.id, amt)
    if lot is not None:
        st.move_lot(tx, lot["id"], -amt, kind="refund", now=now, refund_id=refund.id)
    if refund.status is S.SUCCEEDED:
        refunded = st.add_refunded(tx, payment.id, amt)
        payment = attrs.evolve(payment, refunded=Money(refunded, refund.amount.currency))
        st.insert_journal(tx, refund_journal(refund, payment, now, lot is not None))
    event = refund_event(REFUND_EXTERNAL, refund, payment, now, event_id=new_event_id())
    st.insert_event(tx, event, refund.id)


# --- findings --------------------------------------------------------------------------------


class _Found:
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


def _flag_changes(payment: Payment, remote: GatewayPayment) -> list[Finding]:
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


def _flag(payment: Payment, code: str, message: str) -> Finding:
    return Finding(code=code, action="flagged", payment_id=payment.id, message=message)


def _disagree(local: Refund, remote: GatewayRefund) -> str:
    return f"the gateway says {remote.amount}, refundkit {local.amount}"


def _duplicate(payment: Payment, pair: Pair) -> Finding:
    return _Found(payment, pair.local, pair.remote)(
        "duplicate_at_gateway",
        "flagged",
        f"a second gateway refund for refund {pair.local.id}; a person must check",
    )


def _missing(payment: Payment, refund: Refund) -> Finding:
    return Finding(
        code="unknown_at_gateway",
        action="flagged",
        payment_id=payment.id,
        message=f"refundkit records it {refund.status}; the gateway does not list it",
        refund_id=refund.id,
        gateway_refund_id=refund.gateway_refund_id,
        amount=refund.amount,
    )

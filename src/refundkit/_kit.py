"""``RefundKit``: the facade a billing backend calls. One use case per method.

A refund is three short transactions with the gateway call between them (R-2.1):

1. *reserve* — payment row locked; idempotency check; quote from current state; the refund is
   written ``reserved`` with a gateway key derived from its id; its amount is held at once.
2. *submit* — marked ``submitted``, then the gateway is called outside any transaction.
3. *confirm* — the outcome is applied with a conditional update (only from a state that may
   move there), with its journal and outbox event in the same transaction.

Whatever the gateway said is applied through ``_apply``; recovery and webhooks use it too, so a
refund is journaled and announced once however many paths report its outcome.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import attrs
from sqlalchemy.engine import Engine

from . import _store as st
from ._errors import (
    CardDataRefused,
    GatewayAuthenticationError,
    GatewayDeclined,
    GatewayDisagrees,
    GatewayError,
    GatewayPaymentNotFound,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyConflict,
    InsufficientBalance,
    InsufficientRefundableBalance,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidMoney,
    NotFound,
    PaymentExists,
    PaymentNotFound,
    RefundkitError,
    RefundNotAllowed,
    RefundNotFound,
    RequestInProgress,
    ResolutionRefused,
    StalePlan,
)
from ._events import event_type_for, new_event_id, refund_event
from ._gateway import Gateway, GatewayRefundRequest, GatewayRefundResult, GatewayRefundUpdate
from ._ledger import refund_journal, reversal_journal
from ._model import (
    Card,
    Destination,
    Event,
    JournalLine,
    Payment,
    Quote,
    Refund,
    RefundStatus,
    check_id,
    iso,
    new_id,
)
from ._money import MAX_AMOUNT, Money
from ._pans import find_pans
from ._planner import (
    STRATEGIES,
    Leg,
    LegResult,
    Plan,
    PlanResult,
    Source,
    allocate,
    candidate_order,
    uses_cover_candidates,
)
from ._plugins import PluginManager
from ._policy import PolicyConfig, PolicyContext, check_amount, check_request
from ._policy import quote as make_quote
from ._schema import IN_FLIGHT_STATUSES, from_db_time

if TYPE_CHECKING:
    from ._accounting import TrialBalance
    from ._delivery import Delivery, DeliveryReport, Endpoint, EndpointState, Sender
    from ._reconcile import ReconcileReport

log = logging.getLogger("refundkit")

S = RefundStatus
# Which states may move to each target. Every source of one target holds the same balance, so
# the bookkeeping of a move depends only on the target.
_FROM: dict[RefundStatus, tuple[str, ...]] = {
    S.SUBMITTED: ("reserved",),
    S.PENDING: ("reserved", "submitted", "unknown"),
    S.UNKNOWN: ("reserved", "submitted"),
    S.MANUAL_REVIEW: ("reserved", "submitted", "unknown", "pending"),
    S.SUCCEEDED: ("reserved", "submitted", "unknown", "pending", "manual_review"),
    S.FAILED: ("reserved", "submitted", "unknown", "pending", "manual_review"),
    S.REVERSED: ("succeeded",),
}

#: Gateway answers that prove nothing was refunded; only these release a reservation (R-2.4).
#: Anything else, a bare GatewayError included, leaves the refund unknown and held.
DEFINITE_REFUSALS: tuple[type[RefundkitError], ...] = (
    GatewayDeclined,
    GatewayRateLimited,
    GatewayUnavailable,
    GatewayAuthenticationError,
    GatewayPaymentNotFound,
    InvalidMoney,
)

#: Recovery schedule after an unknown outcome (modelled on Kill Bill's janitor).
DEFAULT_RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=3),
    timedelta(hours=1),
    *(timedelta(days=1),) * 5,
)

#: What ``_reserve`` asks for before it can decide.
_RECOVER_FIRST: Final = object()
_REFRESH_FIRST: Final = object()

_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}", re.ASCII)  # printable ASCII, no spaces
_TEXT_RE = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class RecoveryReport:
    """What one ``recover()`` pass did, refund by refund."""

    resolved: tuple[Refund, ...] = ()
    still_unknown: tuple[Refund, ...] = ()
    manual_review: tuple[Refund, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolved": [r.to_dict() for r in self.resolved],
            "still_unknown": [r.to_dict() for r in self.still_unknown],
            "manual_review": [r.to_dict() for r in self.manual_review],
        }


@attrs.frozen
class BalanceLot:
    """A piece of customer balance with its provenance: the payment that funded it."""

    id: str
    kind: str  # "top_up" or "credit"
    amount: Money
    remaining: Money
    funding_payment_id: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> BalanceLot:
        cur = r["currency"]
        created = r["created_at"]
        if isinstance(created, str):
            created = from_db_time(created)
        return cls(
            r["id"], r["kind"], Money(r["amount"], cur), Money(r["remaining"], cur),
            r["funding_payment_id"], created,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "currency": self.amount.currency,
            "amount": self.amount.amount,
            "remaining": self.remaining.amount,
            "funding_payment_id": self.funding_payment_id,
        }


@attrs.frozen
class CustomerBalance:
    customer_id: str
    totals: dict[str, Money]
    lots: tuple[BalanceLot, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "totals": {c: m.amount for c, m in self.totals.items()},
            "lots": [lot.to_dict() for lot in self.lots],
        }


@attrs.frozen
class InvoiceBalance:
    """An invoice's payments (split tender) and its refundable balance."""

    invoice_id: str
    total: Money
    refundable: Money
    refunded: Money
    credited: Money
    payments: tuple[Payment, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "currency": self.total.currency,
            "total": self.total.amount,
            "refundable": self.refundable.amount,
            "refunded": self.refunded.amount,
            "credited": self.credited.amount,
            "payments": [p.to_dict() for p in self.payments],
        }


class RefundKit:
    """Refunds done right: caps, exactly-once gateway calls, ledger and events."""

    def __init__(
        self,
        store: st.Store,
        *,
        plugins: PluginManager,
        gateways: Mapping[str, Mapping[str, Any]] | None = None,
        policy: PolicyConfig | None = None,
        clock: Callable[[], datetime] = _utcnow,
        submit_retries: int = 2,
        retry_backoff: float = 0.2,
        in_flight_timeout: timedelta = timedelta(minutes=2),
        retry_schedule: Sequence[timedelta] = DEFAULT_RETRY_SCHEDULE,
    ) -> None:
        self.store = store
        self.plugins = plugins
        self.policy = policy or PolicyConfig()
        self.clock = clock
        self.submit_retries = submit_retries
        self.retry_backoff = retry_backoff
        self.in_flight_timeout = in_flight_timeout
        self.retry_schedule = tuple(retry_schedule)
        self._gateway_config = {k: dict(v) for k, v in (gateways or {}).items()}
        self._gateways: dict[str, Gateway] = {}
        self._rules = plugins.policy_rules()
        self._listeners = plugins.has_event_listeners()
        #: Named crash points for tests (R-2.2): called with "reserved", "submitted",
        #: "gateway_returned", "confirmed" (before the outbox relay) and "published" (the
        #: relay handed events to listeners and has not marked them dispatched yet).
        self._checkpoint: Callable[[str], None] = lambda _name: None

    # --- opening and closing ----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | Engine = "sqlite:///refundkit.db",
        *,
        gateways: Mapping[str, Mapping[str, Any]] | None = None,
        plugins: Iterable[object] = (),
        autoload: bool | None = None,
        create: bool = True,
        **options: Any,
    ) -> RefundKit:
        """Open (and create or upgrade) a store. ``url`` may be a host's SQLAlchemy Engine.

        With ``create=False`` a missing SQLite file raises ``StoreNotFound`` instead of being
        created (the CLI's reading commands use this).
        """
        if not create and isinstance(url, str):
            st.check_exists(url)
        engine = url if isinstance(url, Engine) else st.create_engine(url)
        store = st.Store(engine)
        store.migrate()
        pm = PluginManager(autoload=autoload, plugins=plugins)
        return cls(store, plugins=pm, gateways=gateways, **options)

    def close(self) -> None:
        for gw in self._gateways.values():
            gw.close()
        self._gateways.clear()
        self.store.dispose()

    def __enter__(self) -> RefundKit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RefundKit store={self.store.url.render_as_string(hide_password=True)!r}>"

    # --- gateways ---------------------------------------------------------------------------

    def gateway(self, name: str) -> Gateway:
        """The configured gateway instance (created on first use)."""
        gw = self._gateways.get(name)
        if gw is None:
            cls = self.plugins.gateways.get(name)
            gw = cls(self._gateway_defaults(name) | self._gateway_config.get(name, {}))
            self._gateways[name] = gw
        return gw

    def _gateway_defaults(self, name: str) -> dict[str, Any]:
        if name != "sandbox":
            return {}
        # The sandbox keeps its state next to the store, like a remote gateway would elsewhere.
        db = self.store.url.database if self.store.is_sqlite else None
        path = (
            ":memory:"
            if not db or db == ":memory:"
            else str(Path(db).with_suffix("")) + (".sandbox.db")
        )
        return {"path": path, "clock": self.clock}

    # --- payments ---------------------------------------------------------------------------

    def record_payment(
        self,
        *,
        id: str,
        customer_id: str,
        amount: Money,
        gateway: str,
        gateway_payment_id: str,
        destination: Destination | str = Destination.INVOICE,
        card: Card | Mapping[str, Any] | None = None,
        captured_at: datetime | None = None,
        invoice_id: str | None = None,
        disputed: bool = False,
        settled: bool = True,
    ) -> Payment:
        """Record a captured payment. Recording the same payment again returns it."""
        payment = Payment(
            id=check_id(id, "payment id"),
            customer_id=check_id(customer_id, "customer id"),
            amount=_check_money(amount, "amount"),
            gateway=check_id(gateway, "gateway"),
            gateway_payment_id=check_id(gateway_payment_id, "gateway payment id"),
            destination=_check_destination(destination),
            captured_at=_check_time(captured_at) if captured_at else self.clock(),
            card=_check_card(card),
            invoice_id=check_id(invoice_id, "invoice id") if invoice_id is not None else None,
            disputed=_check_flag(disputed, "disputed"),
            settled=_check_flag(settled, "settled"),
        )
        if payment.amount.amount <= 0:
            raise InvalidMoney("a payment amount must be greater than zero")
        gw = self.gateway(payment.gateway)
        with self.store.read() as conn:
            existing = st.get_payment(conn, payment.id)
        if existing is not None:
            return self._same_payment(existing, payment)
        known = gw.register_payment(payment)
        if known is not None and payment.card is None and known.card is not None:
            payment = attrs.evolve(payment, card=known.card)
        if known is not None and not known.settled:
            # The gateway says it has not settled: the quote then offers only the full void.
            payment = attrs.evolve(payment, settled=False)
        now = self.clock()
        try:
            with self.store.write() as conn:
                if payment.destination is Destination.CUSTOMER_BALANCE:
                    _check_balance_room(conn, payment)
                st.insert_payment(conn, payment, now)
                if payment.destination is Destination.CUSTOMER_BALANCE:
                    lot_id = new_id("lot_")
                    whole = payment.amount.amount
                    st.insert_lot(conn, payment, lot_id, now, kind="top_up", amount=whole)
        except self.store.integrity_errors:
            with self.store.read() as conn:
                existing = st.get_payment(conn, payment.id)
            if existing is None:
                raise PaymentExists(
                    f"{payment.gateway} payment {payment.gateway_payment_id} is already "
                    "recorded under another payment id"
                ) from None
            return self._same_payment(existing, payment)
        return self.payment(payment.id)

    @staticmethod
    def _same_payment(existing: Payment, new: Payment) -> Payment:
        fields = ("customer_id", "amount", "gateway", "gateway_payment_id", "destination")
        if any(getattr(existing, f) != getattr(new, f) for f in fields):
            raise PaymentExists(f"payment {new.id} is already recorded with other details")
        return existing

    def payment(self, payment_id: str) -> Payment:
        with self.store.read() as conn:
            p = st.get_payment(conn, check_id(payment_id, "payment id"))
        if p is None:
            raise PaymentNotFound(f"no payment {payment_id!r}")
        return p

    def payments(self, customer_id: str | None = None) -> list[Payment]:
        with self.store.connect() as conn:
            return st.list_payments(conn, customer_id)

    # --- quotes -----------------------------------------------------------------------------

    def quote(self, payment_id: str) -> Quote:
        """What a refund of this payment may be now, and the limits that bind.

        A payment recorded unsettled is first checked at its gateway (one call), so "it has
        not settled yet" is never a stale answer."""
        check_id(payment_id, "payment id")
        quote, settled = self._quote_now(payment_id)
        if settled:
            return quote
        self._refresh_unsettled(payment_id)
        return self._quote_now(payment_id)[0]

    def _quote_now(self, payment_id: str) -> tuple[Quote, bool]:
        """The quote from the stored record, and whether the payment is stored as settled."""
        with self.store.read() as conn:
            payment = st.get_payment(conn, payment_id)
            if payment is None:
                raise PaymentNotFound(f"no payment {payment_id!r}")
            ctx, _ = self._context(conn, payment)
        return make_quote(ctx, self._rules), payment.settled

    def refresh_payment(self, payment_id: str) -> Payment:
        """Ask the payment's gateway whether it has settled and whether it is disputed, and
        store what it says. ``quote``, ``refund`` and ``reconcile`` do this themselves when it
        matters; gateway errors are raised (typed)."""
        payment = self.payment(payment_id)
        remote = self.gateway(payment.gateway).fetch_payment(payment.gateway_payment_id)
        return self._store_flags(payment, remote.settled, remote.disputed)

    def _store_flags(self, payment: Payment, settled: bool, disputed: bool) -> Payment:
        if (payment.settled, payment.disputed) == (settled, disputed):
            return payment
        with self.store.write() as conn:
            st.set_payment_flags(conn, payment.id, settled=settled, disputed=disputed)
        log.info("payment %s: settled=%s disputed=%s (gateway)", payment.id, settled, disputed)
        return attrs.evolve(payment, settled=settled, disputed=disputed)

    def _refresh_unsettled(self, payment_id: str) -> None:
        """An unsettled payment may have settled since it was recorded (Braintree settles
        within a day): without asking, its partial refunds would be refused for ever."""
        try:
            self.refresh_payment(payment_id)
        except RefundkitError as exc:
            # The stored answer stands: "not settled yet" is the safe one.
            log.warning("payment %s: could not ask its gateway about settlement: %s",
                        payment_id, exc)  # fmt: skip

    def _context(
        self, conn: st.Tx, payment: Payment, lot: dict[str, Any] | None = None
    ) -> tuple[PolicyContext, int]:
        """The facts the policy reads, in the caller's transaction. ``lot``: the balance lot
        the refund draws on; a credit lot bounds it (a top-up's own lot is read here anyway)."""
        count, unknown = st.refund_stats(conn, payment.id)
        cur = payment.amount.currency
        remaining = spent = credit_spent = None
        spent_on: tuple[str, ...] = ()
        credit_spent_on: tuple[str, ...] = ()
        if payment.destination is Destination.CUSTOMER_BALANCE:
            top_up = st.lot_for_payment(conn, payment.id)
            if top_up is not None:
                remaining = Money(top_up["remaining"], cur)
                # What left the lot other than through this payment's own refunds.
                held = payment.held.amount if payment.held else 0
                spent_amount = top_up["amount"] - top_up["remaining"] - held
                if spent_amount > 0:
                    spent = Money(spent_amount, cur)
                    spent_on = tuple(st.lot_spent_on(conn, top_up["id"]))
        elif payment.credited:
            credit_lots = st.credit_lots_of_payment(conn, payment.id)
            used = sum(x["amount"] - x["remaining"] for x in credit_lots)
            if used > 0:
                credit_spent = Money(used, cur)
                credit_spent_on = tuple(
                    ref for x in credit_lots for ref in st.lot_spent_on(conn, x["id"])
                )
        ctx = PolicyContext(
            payment=payment,
            held=payment.held or Money.zero(cur),
            refund_count=count,
            capabilities=self.gateway(payment.gateway).capabilities,
            config=self.policy,
            now=self.clock(),
            balance_remaining=remaining,
            balance_spent=spent,
            balance_spent_on=spent_on,
            credit_spent=credit_spent,
            credit_spent_on=credit_spent_on,
            lot_remaining=Money(lot["remaining"], cur)
            if lot is not None and lot["kind"] == "credit"
            else None,
        )
        return ctx, unknown

    # --- refunds ----------------------------------------------------------------------------

    def refund(
        self,
        payment_id: str,
        amount: Money | None = None,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> Refund:
        """Refund ``amount`` (default: the quote's default amount) exactly once.

        Returns the refund (``succeeded``, ``pending``, or ``unknown`` when the gateway's answer
        was lost; ``recover()`` settles those). Raises a ``RefundkitError`` when the policy or
        the gateway refuses; a gateway refusal is kept as a ``failed`` refund (``error.refund``).
        """
        check_id(payment_id, "payment id")
        if amount is not None:
            _check_money(amount, "amount")
        reason = _check_text(reason, "reason")
        actor = _check_text(actor, "actor")
        if idempotency_key is not None and (
            type(idempotency_key) is not str or not _KEY_RE.fullmatch(idempotency_key)
        ):
            raise InvalidIdempotencyKey(
                "an idempotency key is 1-255 printable ASCII characters without spaces"
            )
        if idempotency_key is not None and find_pans(idempotency_key):
            # Keys are stored and shown: a card number pasted there must not be.
            raise CardDataRefused("the idempotency key looks like a card number; it was refused")
        return self._refund(_Ask(payment_id, amount, reason, idempotency_key, actor))

    def _refund(self, ask: _Ask) -> Refund:
        recovered = refreshed = False
        while True:
            reserved = self._reserve(ask, ignore_unknown=recovered, refreshed=refreshed)
            if reserved is _RECOVER_FIRST:
                # refunds in doubt on this payment are looked up before a new one is
                # computed; whatever stays unknown still counts against the cap.
                self.recover(payment_id=ask.payment_id, force=True)
                recovered = True
            elif reserved is _REFRESH_FIRST:
                self._refresh_unsettled(ask.payment_id)
                refreshed = True
            else:
                assert isinstance(reserved, Refund)
                return reserved

    def _reserve(
        self, ask: _Ask, *, ignore_unknown: bool = False, refreshed: bool = False
    ) -> Refund | object:
        """Reserve and run the refund, or say what must happen first (``_RECOVER_FIRST``:
        look up the payment's unknown refunds; ``_REFRESH_FIRST``: ask the gateway whether
        an unsettled payment has settled since)."""
        now = self.clock()
        key, amount, fingerprint = ask.key, ask.amount, ask.fingerprint
        try:
            with self.store.write() as conn:
                if key is not None:
                    found = st.refund_by_key(conn, key)
                    if found is not None:
                        return self._replay(*found, fingerprint)
                payment = st.get_payment(conn, ask.payment_id, lock=True)
                if payment is None:
                    raise PaymentNotFound(f"no payment {ask.payment_id!r}")
                if amount is not None:
                    # Refused requests never reach recovery or a gateway.
                    check_request(payment.amount.currency, amount)
                lot = _source_lot(conn, payment, ask.lot_id)
                credit = lot is not None and lot["kind"] == "credit"
                if not payment.settled and not refreshed:
                    return _REFRESH_FIRST
                ctx, unknown = self._context(conn, payment, lot)
                if unknown and not ignore_unknown:
                    return _RECOVER_FIRST
                q = make_quote(ctx, self._rules)
                amt = amount if amount is not None else q.default_amount
                check_amount(q, amt)
                gw = self.gateway(payment.gateway)
                gw.to_gateway_amount(amt)  # unrepresentable amounts are refused before writing
                refund = _new_refund(payment, amt, ask.reason, ask.actor, key, now, lot)
                void = q.full_only and not payment.settled
                st.insert_refund(conn, refund, fingerprint, void=void)
                if credit:
                    # Credit goes back to the card: credited becomes held, the lot shrinks.
                    st.add_credited(conn, payment.id, -amt.amount, held_delta=amt.amount)
                else:
                    st.add_held(conn, payment.id, amt.amount)
                if lot is not None:
                    st.move_lot(
                        conn, lot["id"], -amt.amount, kind="refund", now=now, refund_id=refund.id
                    )
        except self.store.integrity_errors:
            # A concurrent request with the same key won the insert: replay it.
            if key is None:
                raise
            with self.store.read() as conn:
                found = st.refund_by_key(conn, key)
            if found is None:
                raise
            return self._replay(*found, fingerprint)
        self._checkpoint("reserved")
        return self._submit(refund, payment, void=void, keep_key=ask.keep_key)

    def _replay(self, refund: Refund, stored_fingerprint: str, fingerprint: str) -> Refund:
        """Same key: the stored outcome, or a conflict if the parameters differ (R-1.2, R-1.3)."""
        if stored_fingerprint != fingerprint:
            raise IdempotencyConflict(
                f"idempotency key {refund.idempotency_key!r} was used for a different refund "
                f"({refund.amount} of {refund.payment_id}); use a new key"
            )
        if refund.status in (S.RESERVED, S.SUBMITTED) and (
            self.clock() - refund.updated_at < self.in_flight_timeout
        ):
            raise RequestInProgress(f"refund {refund.id} is still being executed; retry shortly")
        if refund.status is S.FAILED:
            raise GatewayDeclined(
                refund.failure_message or "the gateway declined this refund",
                gateway_code=refund.failure_code,
                refund=refund,
            )
        return refund

    def _submit(
        self, refund: Refund, payment: Payment, *, void: bool = False, keep_key: bool = False
    ) -> Refund:
        # Advisory mark, written without an fsync: recovery treats a stale "reserved" refund
        # exactly like a "submitted" one (it looks it up before anything else).
        with self.store.write(durable=False) as conn:
            st.transition_refund(
                conn,
                refund.id,
                _FROM[S.SUBMITTED],
                {"status": "submitted", "updated_at": self.clock()},
            )
        refund = attrs.evolve(refund, status=S.SUBMITTED)
        self._checkpoint("submitted")
        gw = self.gateway(payment.gateway)
        request = _request(refund, payment, void)
        try:
            result = self._call_gateway(gw, request)
        except GatewayTimeout as exc:
            self._checkpoint("gateway_returned")
            return self._mark_unknown(refund, payment, str(exc))
        except DEFINITE_REFUSALS as exc:
            # Certainly not refunded: the reservation is released.
            self._checkpoint("gateway_returned")
            code = getattr(exc, "gateway_code", None) or exc.code
            applied = self._apply(
                refund,
                payment,
                S.FAILED,
                failure_code=code,
                failure_message=str(exc),
                # Nothing reached the gateway's books: the caller may retry with the same key
                # (not a plan's leg: executing a plan again must change nothing).
                forget_key=not keep_key
                and isinstance(exc, GatewayRateLimited | GatewayUnavailable),
            )
            if isinstance(exc, GatewayError):
                exc.refund = applied
            raise
        except RefundkitError as exc:
            # Any other error (a plain GatewayError included) may hide an applied refund.
            self._checkpoint("gateway_returned")
            held = self._mark_unknown(refund, payment, str(exc))
            if isinstance(exc, GatewayError):
                exc.refund = held
            raise
        except Exception as exc:
            # A plugin bug: we cannot know whether the refund happened, so hold it as unknown.
            self._checkpoint("gateway_returned")
            log.exception("gateway %s raised an unexpected error", gw.name)
            held = self._mark_unknown(refund, payment, f"{type(exc).__name__}: {exc}")
            raise GatewayError(
                f"gateway {gw.name} failed unexpectedly; refund {refund.id} is unknown "
                "until recover() looks it up",
                refund=held,
            ) from exc
        self._checkpoint("gateway_returned")
        return self._apply_result(refund, payment, result)

    def _call_gateway(self, gw: Gateway, request: GatewayRefundRequest) -> GatewayRefundResult:
        """Call the gateway; retry (same key) only errors that certainly had no effect."""
        for attempt in range(self.submit_retries + 1):
            try:
                return gw.refund(request)
            except (GatewayRateLimited, GatewayUnavailable):
                if attempt == self.submit_retries:
                    raise
                time.sleep(self.retry_backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply_result(
        self, refund: Refund, payment: Payment, result: GatewayRefundResult
    ) -> Refund:
        if result.amount is not None and result.amount != refund.amount:
            # The gateway refunded something else than we asked: a person must look (DESIGN).
            return self._apply(
                refund,
                payment,
                S.MANUAL_REVIEW,
                gateway_refund_id=result.gateway_refund_id,
                failure_code="amount_mismatch",
                failure_message=f"gateway reported {result.amount}, we asked {refund.amount}",
            )
        return self._apply(
            refund,
            payment,
            S(result.status),
            gateway_refund_id=result.gateway_refund_id,
            failure_code=result.failure_code,
            failure_message=result.failure_message,
        )

    def _mark_unknown(self, refund: Refund, payment: Payment, why: str) -> Refund:
        return self._apply(
            refund,
            payment,
            S.UNKNOWN,
            failure_code="timeout",
            failure_message=why,
            next_attempt_at=self.clock() + self.retry_schedule[0] if self.retry_schedule else None,
        )

    def _apply(
        self,
        refund: Refund,
        payment: Payment,
        to: RefundStatus,
        *,
        gateway_refund_id: str | None = None,
        failure_code: str | None = None,
        failure_message: str | None = None,
        forget_key: bool = False,
        next_attempt_at: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
        also: Callable[[st.Tx, datetime], Mapping[str, Any]] | None = None,
    ) -> Refund:
        """Move ``refund`` to ``to`` with its bookkeeping, once (confirm, recovery, webhooks).

        ``also`` writes more in the same transaction when the move happens, and returns what
        the event's ``data`` gains (a person's decision, say)."""
        now = self.clock()
        values: dict[str, Any] = {"status": to.value, "updated_at": now}
        if gateway_refund_id:
            values["gateway_refund_id"] = gateway_refund_id
        # A refund that ends well forgets the timeout that came before.
        values["failure_code"] = failure_code
        values["failure_message"] = failure_message
        if forget_key:
            # Not applied at the gateway: the caller may retry with the same key later.
            values["idempotency_key"] = None
        values["next_attempt_at"] = next_attempt_at
        if extra:
            values.update(extra)
        with self.store.write() as conn:
            st.lock_payment_row(conn, payment.id)
            if st.transition_refund(conn, refund.id, _FROM[to], values):
                updated = attrs.evolve(
                    refund,
                    status=to,
                    updated_at=now,
                    gateway_refund_id=gateway_refund_id or refund.gateway_refund_id,
                    failure_code=values.get("failure_code", refund.failure_code),
                    failure_message=values.get("failure_message", refund.failure_message),
                    idempotency_key=None if forget_key else refund.idempotency_key,
                )
                # Balances, journal and event commit with the status change, or not at all.
                payment = self._book(conn, updated, payment, to, now)
                more = also(conn, now) if also is not None else {}
                etype = event_type_for(to)
                if etype is not None:
                    event = refund_event(etype, updated, payment, now, event_id=new_event_id())
                    event["data"].update(more)
                    st.insert_event(conn, event, updated.id)
                moved = None
            else:
                moved = st.get_refund(conn, refund.id)
                if moved is None:  # pragma: no cover - refunds are never deleted
                    raise RefundNotFound(f"no refund {refund.id!r}")
        if moved is not None:
            # Someone else (recovery, a webhook) moved it first, or the move goes backwards.
            if to is S.FAILED and moved.status is S.SUCCEEDED:
                # A refund that fails after it succeeded was reversed: the money came back.
                return self._apply(
                    moved,
                    payment,
                    S.REVERSED,
                    failure_code=failure_code,
                    failure_message=failure_message,
                )
            if moved.status is not to:
                log.info("refund %s is %s; not moving it to %s", refund.id, moved.status, to)
            return moved
        self._checkpoint("confirmed")  # committed, before the outbox relay runs
        if etype is not None and self._listeners:
            self.dispatch_events()
        return updated

    def _book(
        self, conn: st.Tx, refund: Refund, payment: Payment, to: RefundStatus, now: datetime
    ) -> Payment:
        """Balances and journal for a move to ``to``; returns the payment as it now stands."""
        amt = refund.amount.amount
        cur = refund.amount.currency
        from_balance = refund.lot_id is not None
        if to is S.SUCCEEDED:
            refunded = st.add_refunded(conn, payment.id, amt)
            st.insert_journal(conn, refund_journal(refund, payment, now, from_balance))
            return attrs.evolve(payment, refunded=Money(refunded, cur))
        if to not in (S.FAILED, S.REVERSED):
            return payment
        # The money is back: release what the refund held, to the lot it came from.
        reversed_ = to is S.REVERSED
        lot = st.get_lot(conn, refund.lot_id) if refund.lot_id else None
        credit = lot is not None and lot["kind"] == "credit"
        refunded = st.add_refunded(
            conn, payment.id, -amt if reversed_ else 0, 0 if credit else -amt
        )
        if credit:
            st.add_credited(conn, payment.id, amt, held_delta=-amt)
        if lot is not None:
            st.move_lot(conn, lot["id"], amt, kind=f"refund_{to.value}", now=now,
                        refund_id=refund.id)  # fmt: skip
        if reversed_:
            st.insert_journal(conn, reversal_journal(refund, payment, now, from_balance))
        return attrs.evolve(payment, refunded=Money(refunded, cur))

    # --- recovery ---------------------------------------------------------------------------

    def recover(self, payment_id: str | None = None, *, force: bool = False) -> RecoveryReport:
        """Settle refunds whose outcome is not known, by looking them up at their gateway.

        Refunds are retried on ``retry_schedule`` (one lookup per attempt); each worker claims
        the due ones first (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several recovery
        workers never look the same refund up twice for one attempt (R-2.6). ``force`` looks
        up every in-flight refund (of ``payment_id``) now, due or not.

        Never sends a refund blindly: a refund is re-sent (with its original key) only when
        the lookup finds nothing and the gateway's idempotency window still covers the key.
        After the last attempt of the schedule a refund goes to ``manual_review``.
        """
        now = self.clock()
        resolved: list[Refund] = []
        unknown: list[Refund] = []
        review: list[Refund] = []
        for refund in self._recovery_candidates(payment_id, now, force=force):
            outcome = self._recover_one(refund, now)
            if outcome.status is S.MANUAL_REVIEW:
                review.append(outcome)
            elif outcome.status.in_flight and outcome.status is not S.PENDING:
                unknown.append(outcome)
            elif outcome.status is not refund.status or outcome.status.final:
                resolved.append(outcome)
        self.dispatch_events()
        return RecoveryReport(tuple(resolved), tuple(unknown), tuple(review))

    #: How many due refunds one recovery worker claims at a time.
    recovery_batch = 20

    def _recovery_candidates(
        self, payment_id: str | None, now: datetime, *, force: bool
    ) -> Iterator[Refund]:
        if force:
            # Read them all first: the connection is back in the pool before any lookup.
            with self.store.connect() as conn:
                listed = st.list_refunds(conn, payment_id=payment_id, statuses=IN_FLIGHT_STATUSES)
            yield from listed
            return
        seen: set[str] = set()
        while True:
            batch = [r for r in self._claim_due(payment_id, now) if r.id not in seen]
            if not batch:
                return
            seen.update(r.id for r in batch)
            yield from batch

    def _claim_due(self, payment_id: str | None, now: datetime) -> list[Refund]:
        """Claim a batch of due refunds, leased for the in-flight timeout (R-2.6)."""
        with self.store.write() as tx:
            return st.claim_due(
                tx,
                now,
                now - self.in_flight_timeout,
                now + self.in_flight_timeout,
                batch=self.recovery_batch,
                payment_id=payment_id,
            )

    def recovery_due(self) -> list[tuple[Refund, datetime]]:
        """Every in-flight refund with the time recovery will next look at it, soonest first."""
        with self.store.connect() as conn:
            rows = st.in_flight_with_next_attempt(conn)
        due = []
        for refund, nxt in rows:
            if refund.status in (S.RESERVED, S.SUBMITTED):
                abandoned = refund.updated_at + self.in_flight_timeout
                nxt = max(nxt, abandoned) if nxt else abandoned
            due.append((refund, nxt or refund.updated_at))
        return sorted(due, key=lambda pair: (pair[1], pair[0].id))

    def _recover_one(self, refund: Refund, now: datetime) -> Refund:
        payment = self.payment(refund.payment_id)
        gw = self.gateway(refund.gateway)
        if refund.imported:
            return self._recover_imported(refund, payment, gw)
        request = self._request_for(refund, payment)
        try:
            found = gw.lookup_refund(request) if gw.capabilities.lookup else None
        except RefundkitError as exc:
            return self._schedule_retry(refund, payment, f"lookup failed: {exc}")
        if found is not None:
            return self._settle_found(refund, payment, found)
        fresh = now - refund.updated_at < self.in_flight_timeout
        if fresh:
            return refund  # another worker may still be sending it: only a found result counts
        if refund.status is S.RESERVED:
            return self._apply(
                refund,
                payment,
                S.FAILED,
                failure_code="not_submitted",
                failure_message="the refund never reached the gateway",
            )
        if refund.status is S.PENDING:
            return self._schedule_retry(refund, payment, "pending refund not found by lookup")
        window = gw.capabilities.idempotency_window_hours
        if gw.capabilities.idempotency_keys and (
            window is None or now - refund.created_at < timedelta(hours=window)
        ):
            # Same key, inside the gateway's window: the gateway deduplicates it.
            try:
                result = gw.refund(request)
            except GatewayTimeout as exc:
                return self._schedule_retry(refund, payment, str(exc))
            except GatewayDeclined as exc:
                return self._apply(
                    refund,
                    payment,
                    S.FAILED,
                    failure_code=exc.gateway_code or exc.code,
                    failure_message=str(exc),
                )
            except RefundkitError as exc:
                return self._schedule_retry(refund, payment, str(exc))
            return self._apply_result(refund, payment, result)
        return self._schedule_retry(refund, payment, "not found at the gateway")

    def _recover_imported(self, refund: Refund, payment: Payment, gw: Gateway) -> Refund:
        """An imported refund never carried our id to the gateway, so ``lookup_refund``
        cannot find it; the gateway's refund list can, by its gateway refund id. Without a
        list the next ``reconcile`` settles it. Never sent, so never re-sent."""
        try:
            listable, found = self._listed(gw, payment, refund)
        except RefundkitError as exc:
            return self._schedule_retry(refund, payment, f"listing refunds failed: {exc}")
        if found is None:
            why = "imported refund not listed by the gateway" if listable else "run reconcile"
            return self._schedule_retry(refund, payment, why)
        return self._settle_found(refund, payment, found)

    def _settle_found(self, refund: Refund, payment: Payment, found: GatewayRefundResult) -> Refund:
        outcome = self._apply_result(refund, payment, found)
        if outcome.status is S.PENDING:
            # Each lookup that finds it still pending is one attempt of the schedule, so a
            # refund the gateway never settles reaches manual_review instead of being
            # looked up forever; a later webhook still settles it from there.
            return self._schedule_retry(outcome, payment, "still pending at the gateway")
        return outcome

    def _listed(
        self, gw: Gateway, payment: Payment, refund: Refund
    ) -> tuple[bool, GatewayRefundResult | None]:
        """``refund`` in the gateway's refund list, found by its gateway refund id: (could the
        list tell, what it says; None when it is not there). Gateway errors are raised."""
        listed = gw.list_refunds(payment.gateway_payment_id)
        ours = refund.gateway_refund_id
        if listed is None or ours is None:
            return False, None
        match = next((r for r in listed if r.gateway_refund_id == ours), None)
        if match is None:
            return True, None
        return True, GatewayRefundResult(match.status, match.gateway_refund_id, match.amount)

    def _request_for(self, refund: Refund, payment: Payment) -> GatewayRefundRequest:
        """The gateway request of a refund already recorded (a void keeps being a void)."""
        with self.store.read() as tx:
            row = st.get_refund_row(tx, refund.id)
        return _request(refund, payment, bool(row and row["void"]))

    def _schedule_retry(self, refund: Refund, payment: Payment, why: str) -> Refund:
        attempts = refund.attempts + 1
        if attempts >= len(self.retry_schedule):
            return self._apply(
                refund,
                payment,
                S.MANUAL_REVIEW,
                failure_code="unresolved",
                failure_message=why,
                extra={"attempts": attempts},
            )
        target = S.UNKNOWN if refund.status in (S.RESERVED, S.SUBMITTED) else refund.status
        nxt = self.clock() + self.retry_schedule[attempts]
        if target is refund.status:
            with self.store.write() as conn:
                st.update_refund(
                    conn,
                    refund.id,
                    {"attempts": attempts, "next_attempt_at": nxt, "failure_message": why},
                )
            return attrs.evolve(refund, attempts=attempts, failure_message=why)
        return self._apply(
            refund,
            payment,
            target,
            failure_code="timeout",
            failure_message=why,
            next_attempt_at=nxt,
            extra={"attempts": attempts},
        )

    # --- manual review ----------------------------------------------------------------------

    def resolve(
        self,
        refund_id: str,
        status: str,
        *,
        actor: str,
        note: str,
        gateway_refund_id: str | None = None,
        force: bool = False,
    ) -> Refund:
        """A person's decision about a refund in ``manual_review``: ``"succeeded"`` (booked,
        journaled, ``charge.refunded``) or ``"failed"`` (its hold released, ``refund.failed``).

        The gateway is asked first where it can be: when it says otherwise, ``GatewayDisagrees``
        is raised and nothing is written (``force=True`` decides without asking, for a gateway
        that is wrong or unreachable). Who, when, what and why are kept with the refund and
        carried by the event as ``resolution``.
        """
        refund = self.get_refund(refund_id)
        if status not in ("succeeded", "failed"):
            raise InvalidInput("a refund in manual review is resolved as succeeded or failed")
        actor = _need(_check_text(actor, "actor"), "actor")
        note = _need(_check_text(note, "note"), "note")
        if gateway_refund_id is not None:
            check_id(gateway_refund_id, "gateway refund id")
        if refund.status is not S.MANUAL_REVIEW:
            raise ResolutionRefused(
                f"refund {refund.id} is {refund.status}, not in manual review: only a refund in "
                "manual review is decided by a person"
            )
        payment = self.payment(refund.payment_id)
        checked, seen = (False, None) if force else self._gateway_view(refund, payment)
        says = seen.status if seen is not None else "unknown to it" if checked else status
        if says != status and not (says == "unknown to it" and status == "failed"):
            raise GatewayDisagrees(
                f"{refund.gateway} says refund {refund.id} is {says}"
                + (f" (gateway refund {seen.gateway_refund_id})" if seen else "")
                + f", not {status}; nothing was changed. Decide with force only if the "
                "gateway is wrong."
            )
        grid = gateway_refund_id or (seen.gateway_refund_id if seen else None)

        def record(tx: st.Tx, now: datetime) -> Mapping[str, Any]:
            st.insert_resolution(tx, refund.id, status, actor, note, now, checked=checked)
            return {"resolution": {"by": actor, "note": note, "at": iso(now), "status": status}}

        to = S(status)
        moved = self._apply(
            refund,
            payment,
            to,
            gateway_refund_id=grid,
            failure_code="resolved_by_person" if to is S.FAILED else None,
            failure_message=f"{actor}: {note}" if to is S.FAILED else None,
            also=record,
        )
        if moved.status is not to:
            raise ResolutionRefused(f"refund {refund.id} moved to {moved.status} meanwhile")
        return moved

    def resolution(self, refund_id: str) -> dict[str, Any] | None:
        """The person's decision about a refund that was in manual review, if any."""
        with self.store.read() as conn:
            return st.get_resolution(conn, check_id(refund_id, "refund id"))

    def _gateway_view(
        self, refund: Refund, payment: Payment
    ) -> tuple[bool, GatewayRefundResult | None]:
        """(could the gateway be asked, what it says about ``refund``: None if it does not
        know it). Gateway errors are raised."""
        gw = self.gateway(refund.gateway)
        if refund.imported or not gw.capabilities.lookup:
            return self._listed(gw, payment, refund)
        return True, gw.lookup_refund(self._request_for(refund, payment))

    # --- reconciliation ---------------------------------------------------------------------

    def reconcile(
        self,
        payment_id: str | None = None,
        *,
        gateway: str | None = None,
        since: datetime | None = None,
    ) -> ReconcileReport:
        """Compare each payment's refunds at its gateway with the local record (drift).

        Refunds made outside refundkit are imported (held, journaled, ``refund.external``);
        amount or currency mismatches go to ``manual_review``; a local refund the gateway
        does not list is flagged. Picks one payment, a gateway's payments, or those captured
        ``since``; safe to run again (nothing is imported twice). See docs/reconciliation.md.
        """
        from ._reconcile import Reconciler

        if payment_id is not None:
            self.payment(payment_id)  # PaymentNotFound for a mistyped id
        if gateway is not None:
            self.plugins.gateways.get(gateway)  # unknown gateway: a typed error
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise InvalidInput("since must be an aware datetime (e.g. in UTC)")
        return Reconciler(self).run(payment_id, gateway=gateway, since=since)

    # --- webhooks ---------------------------------------------------------------------------

    def handle_gateway_webhook(
        self, gateway: str, headers: Mapping[str, str], body: bytes
    ) -> list[Refund]:
        """Verify and apply a gateway's webhook; duplicates and stale updates change nothing."""
        gw = self.gateway(gateway)
        applied: list[Refund] = []
        for update in gw.parse_webhook(headers, body):
            refund = self._find_update_target(gateway, update)
            if refund is None:
                log.warning(
                    "webhook from %s for a refund refundkit does not know: %s",
                    gateway,
                    update.gateway_refund_id or update.refund_id,
                )
                continue
            payment = self.payment(refund.payment_id)
            result = GatewayRefundResult(
                update.status, update.gateway_refund_id, update.amount, update.failure_code
            )
            applied.append(self._apply_result(refund, payment, result))
        return applied

    def _find_update_target(self, gateway: str, update: GatewayRefundUpdate) -> Refund | None:
        with self.store.read() as conn:
            if update.refund_id:
                refund = st.get_refund(conn, update.refund_id)
                if refund is not None and refund.gateway == gateway:
                    return refund if _same_gateway_refund(refund, update) else None
            if update.gateway_refund_id:
                return st.refund_by_gateway_id(conn, gateway, update.gateway_refund_id)
        return None

    # --- reading ----------------------------------------------------------------------------

    def get_refund(self, refund_id: str) -> Refund:
        with self.store.read() as conn:
            refund = st.get_refund(conn, check_id(refund_id, "refund id"))
        if refund is None:
            raise RefundNotFound(f"no refund {refund_id!r}")
        return refund

    def refunds(self, payment_id: str | None = None, *, status: str | None = None) -> list[Refund]:
        statuses = [RefundStatus(status).value] if status else None
        with self.store.connect() as conn:
            return st.list_refunds(conn, payment_id=payment_id, statuses=statuses)

    def events(
        self,
        after: str | int | None = None,
        *,
        limit: int | None = None,
        refund_id: str | None = None,
    ) -> list[Event]:
        """Outbox events, oldest first; ``after`` is an event id or sequence number."""
        with self.store.connect() as conn:
            seq = 0
            if isinstance(after, str):
                found = st.event_seq(conn, after)
                if found is None:
                    raise InvalidInput(f"no event {after!r}")
                seq = found
            elif type(after) is int:
                seq = after
            elif after is not None:
                raise InvalidInput("after must be an event id or a sequence number")
            return st.list_events(conn, after_seq=seq, limit=limit, refund_id=refund_id)

    def journal(
        self, refund_id: str | None = None, *, since: datetime | None = None
    ) -> list[JournalLine]:
        """Journal lines in posting order; ``since`` keeps those posted from then on (export:
        docs/accounting.md)."""
        from ._accounting import read_lines

        return read_lines(self.store, since=since, refund_id=refund_id)

    def export_journal(
        self, out: IO[str], format: str = "jsonl", *, since: datetime | None = None
    ) -> int:
        """Write journal lines to ``out`` as ``csv`` or ``jsonl`` with stable line ids; returns
        how many lines were written (docs/accounting.md)."""
        from ._accounting import write_export

        return write_export(self.journal(since=since), out, format)

    def trial_balance(self) -> TrialBalance:
        """Debits equal credits per currency; every succeeded or reversed refund journaled."""
        from ._accounting import check

        return check(self.store)

    def dispatch_events(self) -> int:
        """Hand undelivered outbox events to ``refundkit_on_event`` listeners (at least once)."""
        if not self._listeners:
            return 0
        with self.store.connect() as conn:
            pending = st.list_events(conn, undispatched=True, limit=500)
        done: list[int] = []
        for ev in pending:
            try:
                self.plugins.on_event(ev.to_dict())
            except Exception:
                log.exception("an event listener failed on %s; it will be offered again", ev.id)
                break
            done.append(ev.seq)
        self._checkpoint("published")  # handed to listeners, not yet marked: sent again later
        if done:
            with self.store.connect() as conn:
                st.mark_dispatched(conn, done, self.clock())
        return len(done)

    # --- outgoing webhooks (docs/webhooks.md; the work is in _delivery.py) -------------------

    def deliver_events(
        self,
        endpoints: Iterable[Endpoint | Mapping[str, Any]],
        *,
        send: Sender | None = None,
        rng: Callable[[], float] | None = None,
    ) -> DeliveryReport:
        """Send due outbox events to ``endpoints``, signed, in order per refund (one pass)."""
        from ._delivery import Deliverer

        return Deliverer(self.store, endpoints, clock=self.clock, send=send, rng=rng).run_once()

    def webhook_deliveries(
        self, status: str | None = None, *, event_id: str | None = None
    ) -> list[Delivery]:
        """Deliveries per (event, endpoint); ``status="failed"`` lists the dead letters."""
        from ._delivery import list_deliveries

        return list_deliveries(self.store, status=status, event_id=event_id)

    def retry_event(self, event_id: str) -> int:
        """Deliver a dead-lettered event again, with a fresh retry horizon."""
        from ._delivery import retry_event

        return retry_event(self.store, event_id, self.clock())

    def webhook_endpoints(self) -> list[EndpointState]:
        """Endpoints a deliverer has seen: where each starts, and whether a 410 disabled it."""
        from ._delivery import list_endpoints

        return list_endpoints(self.store)

    def enable_webhook_endpoint(self, url: str) -> int:
        """Re-enable an endpoint a 410 Gone disabled; returns how many deliveries resume."""
        from ._delivery import enable_endpoint

        return enable_endpoint(self.store, url, self.clock())

    # --- customer balance -------------------------------------------------------------------

    def balance(self, customer_id: str) -> CustomerBalance:
        """The customer's balance per currency, lot by lot with the payment that funded it."""
        with self.store.read() as conn:
            rows = st.customer_lots(conn, check_id(customer_id, "customer id"))
        lots = tuple(BalanceLot.from_row(r) for r in rows)
        totals: dict[str, Money] = {}
        for lot in lots:
            cur = lot.remaining.currency
            totals[cur] = totals.get(cur, Money.zero(cur)) + lot.remaining
        return CustomerBalance(customer_id, totals, lots)

    def redeem_balance(
        self,
        customer_id: str,
        amount: Money,
        *,
        reference: str,
        order: str = "oldest_first",
    ) -> Money:
        """Spend ``amount`` of the customer's balance on ``reference`` (e.g. an invoice id),
        lot by lot, ``oldest_first`` (default) or ``newest_first``; returns what is left."""
        check_id(customer_id, "customer id")
        _check_money(amount, "amount")
        check_id(reference, "reference")
        if order not in ("oldest_first", "newest_first"):
            raise InvalidInput("order must be 'oldest_first' or 'newest_first'")
        if amount.amount <= 0:
            raise InvalidMoney("a redemption must be greater than zero")
        now = self.clock()
        with self.store.write() as conn:
            lots = [
                r
                for r in st.customer_lots(conn, customer_id)
                if r["currency"] == amount.currency and r["remaining"] > 0
            ]
            if order == "newest_first":
                lots.reverse()
            available = sum(r["remaining"] for r in lots)
            if available < amount.amount:
                raise InsufficientBalance(
                    f"the customer's balance holds {Money(available, amount.currency)}, "
                    f"less than {amount}"
                )
            left = amount.amount
            for lot in lots:
                take = min(left, lot["remaining"])
                st.move_lot(conn, lot["id"], -take, kind="redemption", now=now, reference=reference)
                left -= take
                if not left:
                    break
        return Money(available - amount.amount, amount.currency)

    def issue_credit(
        self, source_id: str, amount: Money, *, reference: str | None = None
    ) -> tuple[BalanceLot, ...]:
        """Move ``amount`` of a payment's (or an invoice's) refundable balance into the
        customer balance, as lots that remember the payment that funded them.

        ``source_id`` is a payment id, or an invoice id (its payments give newest first).
        The credit is no longer refundable to the card directly; ``refund_balance`` can
        still send what is left of it back to that payment's card.
        """
        check_id(source_id, "payment or invoice id")
        _check_money(amount, "amount")
        if reference is not None:
            check_id(reference, "reference")
        if amount.amount <= 0:
            raise InvalidMoney("a credit must be greater than zero")
        now = self.clock()
        lots: list[BalanceLot] = []
        with self.store.write() as conn:
            sources = _credit_sources(conn, source_id)
            for payment in sources:
                check_request(payment.amount.currency, amount)
            available = sum(p.refundable.amount for p in sources)
            if available < amount.amount:
                where = ", ".join(f"{p.id} has {p.refundable}" for p in sources)
                raise InsufficientRefundableBalance(
                    f"only {Money(available, amount.currency)} of {source_id} can become "
                    f"credit ({where})"
                )
            left = amount.amount
            for payment in sources:
                take = min(left, payment.refundable.amount)
                if take <= 0:
                    continue
                lot_id = new_id("lot_")
                st.add_credited(conn, payment.id, take)
                st.insert_lot(conn, payment, lot_id, now, kind="credit", amount=take)
                st.record_movement(conn, lot_id, take, kind="credit_issued", now=now,
                                   reference=reference)  # fmt: skip
                row = st.get_lot(conn, lot_id)
                assert row is not None
                lots.append(BalanceLot.from_row(row))
                left -= take
                if not left:
                    break
        return tuple(lots)

    # --- planning ---------------------------------------------------------------------------

    def plan_refund(
        self,
        customer_id: str,
        total: Money,
        *,
        strategy: str = "newest_first",
        scope: str | None = None,
    ) -> Plan:
        """Preview how ``total`` would go back to the customer's cards; writes nothing.

        ``scope``: ``None`` (all the customer's payments), ``"balance"`` (the customer balance,
        lot by lot, to the payments that funded it) or an invoice id. ``strategy``: see
        ``refundkit._planner.STRATEGIES``. Each leg is within its source's quote now; what
        cannot go back is ``plan.unrefundable``, with ``plan.reason`` in plain words.
        """
        check_id(customer_id, "customer id")
        _check_money(total, "total")
        if scope is not None and scope != "balance":
            check_id(scope, "scope")
        if strategy not in STRATEGIES:
            raise InvalidInput(f"strategy must be one of {', '.join(STRATEGIES)}")
        with self.store.read() as tx:
            planner = _Candidates(self, tx, customer_id, total, scope)
            allocation = allocate(
                total,
                strategy,
                planner.candidates(strategy),
                cover_candidates=planner.covers(strategy)
                if uses_cover_candidates(strategy)
                else None,
                listed_totals=planner.listed_totals(strategy),
            )
            basis = planner.basis(allocation.legs)
        return Plan(
            id=new_id("pln_"),
            customer_id=customer_id,
            strategy=strategy,
            scope=scope,
            allocation=allocation,
            basis=basis,
            created=iso(self.clock()),
        )

    def execute(
        self,
        plan: Plan | Mapping[str, Any],
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> PlanResult:
        """Run a plan's legs, each a refund with a key derived from the plan id and the leg.

        Executing the same plan again changes nothing (each leg replays). A plan whose sources
        changed since it was made raises ``StalePlan`` before any new leg runs; a leg that
        fails does not stop the others, and the result says what happened to each.
        """
        if not isinstance(plan, Plan):
            plan = Plan.from_dict(plan)
        reason = _check_text(reason, "reason")
        actor = _check_text(actor, "actor")
        self._check_fresh(plan)
        results = []
        for i, leg in enumerate(plan.legs):
            results.append(self._run_leg(plan, i, leg, reason, actor))
        return PlanResult(plan.id, tuple(results))

    def refund_balance(
        self, customer_id: str, amount: Money, *, strategy: str = "newest_first", **kw: Any
    ) -> PlanResult:
        """Return ``amount`` of the customer's balance to the cards that funded it: plans over
        the lots (newest first by default), then executes, one refund per funding payment."""
        plan = self.plan_refund(customer_id, amount, strategy=strategy, scope="balance")
        if plan.unrefundable:
            raise InsufficientRefundableBalance(plan.reason or "the balance cannot cover it")
        return self.execute(plan, **kw)

    def _check_fresh(self, plan: Plan) -> None:
        with self.store.read() as tx:
            for i, leg in enumerate(plan.legs):
                if st.refund_by_key(tx, plan.leg_key(i)) is not None:
                    continue  # already executed: its replay is checked by the idempotency key
                for name, then in _leg_basis(tx, leg).items():
                    if plan.basis.get(name) != then:
                        raise StalePlan(
                            f"plan {plan.id} is stale: {leg.payment_id} changed since it was "
                            "made (another refund or credit); make a new plan"
                        )

    def _run_leg(
        self, plan: Plan, i: int, leg: Leg, reason: str | None, actor: str | None
    ) -> LegResult:
        try:
            ask = _Ask(leg.payment_id, leg.amount, reason, plan.leg_key(i), actor, leg.lot_id,
                       keep_key=True)  # fmt: skip
            refund = self._refund(ask)
        except GatewayError as exc:
            rid = exc.refund.id if exc.refund else None
            status: Any = exc.refund.status.value if exc.refund else "failed"
            return LegResult(i, leg, status, rid, exc.to_dict())
        except RefundkitError as exc:
            return LegResult(i, leg, "refused", None, exc.to_dict())
        status = refund.status.value
        if status in ("reserved", "submitted"):
            status = "unknown"
        return LegResult(i, leg, status, refund.id)

    def invoice(self, invoice_id: str) -> InvoiceBalance:
        """An invoice's payments and its refundable balance (their sum)."""
        check_id(invoice_id, "invoice id")
        with self.store.read() as conn:
            payments = st.invoice_payments(conn, invoice_id)
        if not payments:
            raise NotFound(f"no payments on invoice {invoice_id!r}")
        cur = payments[0].amount.currency
        zero = Money.zero(cur)

        def total(values: list[Money]) -> Money:
            return sum(values, zero)

        return InvoiceBalance(
            invoice_id=invoice_id,
            total=total([p.amount for p in payments]),
            refundable=total([p.refundable for p in payments]),
            refunded=total([p.refunded or zero for p in payments]),
            credited=total([p.credited or zero for p in payments]),
            payments=tuple(payments),
        )


# --- helpers ----------------------------------------------------------------------------------


@attrs.frozen
class _Ask:
    """One refund as the caller asked for it: what its idempotency key stands for."""

    payment_id: str
    amount: Money | None
    reason: str | None
    key: str | None
    actor: str | None
    lot_id: str | None = None
    #: A plan's leg keeps its key even when the gateway was unreachable (see execute).
    keep_key: bool = False

    @property
    def fingerprint(self) -> str:
        amount = self.amount
        return "|".join(
            [
                self.payment_id,
                str(amount.amount) if amount else "default",
                amount.currency if amount else "",
                self.reason or "",
                self.lot_id or "",
            ]
        )


#: How many sources a single_source refusal names (the rest are counted).
LISTED = 10


class _Candidates:
    """Planner sources, streamed from the store in the order a strategy needs. Each source's
    ``available`` is its full quote now (only for sources the planner actually reads)."""

    def __init__(
        self, kit: RefundKit, tx: st.Tx, customer_id: str, total: Money, scope: str | None
    ) -> None:
        self.kit, self.tx, self.cid, self.total, self.scope = kit, tx, customer_id, total, scope
        self.cur = total.currency
        self._top: list[tuple[Any, ...]] | None = None

    def candidates(self, strategy: str) -> Iterator[Source]:
        order = candidate_order(strategy)
        if strategy == "single_source" and self.scope != "balance":
            return self._listing()  # only named in a refusal: refundable balances suffice
        return self._sources(order)

    def covers(self, strategy: str) -> Iterator[Source]:
        if strategy == "single_source" and self.scope is None:
            top = self._top_listed()
            if not top or top[0][4] < self.total.amount:
                # The largest refundable balance bounds every quote: no payment covers the
                # total, so the full covering-payment scan is skipped.
                return
        yield from self._sources("cover")

    def _top_listed(self) -> list[tuple[Any, ...]]:
        if self._top is None:
            self._top = self.tx.run(
                "plan_refundable", cid=self.cid, cur=self.cur, top=LISTED
            ).fetchall()
        return self._top

    def _sources(self, order: str) -> Iterator[Source]:
        if self.scope == "balance":
            for (lot_id,) in st.stream(self.tx, f"plan_lots_{order}", **self._args(order)):
                yield self._lot_source(lot_id)
        elif self.scope is not None:
            for payment in self._invoice_payments(order):
                yield self._payment_source(payment)
        else:
            for (pid,) in st.stream(self.tx, f"plan_{order}", **self._args(order)):
                found = st.get_payment(self.tx, pid)
                assert found is not None
                yield self._payment_source(found)

    def _args(self, order: str) -> dict[str, Any]:
        args: dict[str, Any] = {"cid": self.cid, "cur": self.cur}
        if order == "cover":
            args["total"] = self.total.amount
        return args

    def _invoice_payments(self, order: str) -> list[Payment]:
        payments = [p for p in st.invoice_payments(self.tx, str(self.scope))
                    if p.customer_id == self.cid and p.amount.currency == self.cur]  # fmt: skip
        if order == "oldest":
            payments.reverse()
        elif order == "largest":
            payments.sort(key=lambda p: -p.refundable.amount)
        elif order == "cover":  # newest first, as for a customer's payments
            payments = [p for p in payments if p.refundable >= self.total]
        return payments

    def _payment_source(self, payment: Payment) -> Source:
        return self._source(payment, _source_lot(self.tx, payment, None))

    def _lot_source(self, lot_id: str) -> Source:
        lot = st.get_lot(self.tx, lot_id)
        assert lot is not None
        payment = st.get_payment(self.tx, lot["funding_payment_id"])
        assert payment is not None
        return self._source(payment, lot)

    def _source(self, payment: Payment, lot: dict[str, Any] | None) -> Source:
        ctx, _ = self.kit._context(self.tx, payment, lot)
        q = make_quote(ctx, self.kit._rules)
        return Source(
            payment_id=payment.id,
            gateway=payment.gateway,
            captured_at=payment.captured_at,
            available=q.max_amount,
            invoice_id=payment.invoice_id,
            lot_id=lot["id"] if lot is not None else None,
            card=payment.card,
            limits=q.limits,
        )

    def _listing(self) -> Iterator[Source]:
        """The largest refundable balances, for a single_source refusal to name."""
        if self.scope is not None:
            yield from (self._payment_source(p) for p in self._invoice_payments("largest"))
            return
        for pid, invoice_id, gateway, captured, refundable in self._top_listed():
            yield Source(
                payment_id=pid,
                gateway=gateway,
                captured_at=from_db_time(captured),
                available=Money(refundable, self.cur),
                invoice_id=invoice_id,
            )

    def listed_totals(self, strategy: str) -> Callable[[], tuple[int, Money]] | None:
        """Count and sum of every payment's refundable balance, for a single_source refusal
        (the listing holds only the largest few). Queried only if the plan is refused."""
        if strategy != "single_source" or self.scope is not None:
            return None

        def totals() -> tuple[int, Money]:
            row = self.tx.run("plan_refundable_totals", cid=self.cid, cur=self.cur).fetchone()
            return int(row[0]), Money(int(row[1]), self.cur)

        return totals

    def basis(self, legs: Sequence[Leg]) -> dict[str, int]:
        out: dict[str, int] = {}
        for leg in legs:
            out |= _leg_basis(self.tx, leg)
        return out


def _leg_basis(tx: st.Tx, leg: Leg) -> dict[str, int]:
    """What a leg relies on: its lot's remainder, or its payment's held + credited total."""
    if leg.lot_id is not None:
        lot = st.get_lot(tx, leg.lot_id)
        return {f"lot:{leg.lot_id}": lot["remaining"] if lot else -1}
    payment = st.get_payment(tx, leg.payment_id)
    if payment is None:
        return {f"payment:{leg.payment_id}": -1}
    return {f"payment:{leg.payment_id}": payment.amount.amount - payment.refundable.amount}


def _credit_sources(tx: st.Tx, source_id: str) -> list[Payment]:
    """The payments a credit is drawn from: one payment, or an invoice's (newest first)."""
    payment = st.get_payment(tx, source_id, lock=True)
    payments = [payment] if payment is not None else st.invoice_payments(tx, source_id, lock=True)
    if not payments:
        raise PaymentNotFound(f"no payment or invoice {source_id!r}")
    for p in payments:
        if p.destination is Destination.CUSTOMER_BALANCE:
            raise InvalidInput(f"{p.id} already paid into the customer balance; it gives no credit")
        if p.disputed:
            raise RefundNotAllowed(f"{p.id} is disputed; no credit can be issued from it")
    return payments


def _check_balance_room(tx: st.Tx, payment: Payment) -> None:
    """A customer's balance in one currency must stay a storable amount (R-6.8)."""
    cur = payment.amount.currency
    held = sum(
        r["remaining"] for r in st.customer_lots(tx, payment.customer_id) if r["currency"] == cur
    )
    if held + payment.amount.amount > MAX_AMOUNT:
        raise InvalidMoney(
            f"this top-up would take the customer's {cur} balance past the largest storable amount"
        )


def _check_money(value: object, what: str) -> Money:
    if not isinstance(value, Money):
        raise InvalidMoney(
            f"{what} must be refundkit.Money (e.g. Money.parse('12.34', 'USD')), "
            f"not {type(value).__name__}"
        )
    return value


def _check_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str or not _TEXT_RE.fullmatch(value):
        raise InvalidInput(f"{what} must be 1-200 characters without control characters")
    if find_pans(value):
        raise CardDataRefused(f"{what} looks like it holds a card number; it was not stored")
    return value


def _need(value: str | None, what: str) -> str:
    if not value:
        raise InvalidInput(f"{what} is required")
    return value


def _check_flag(value: object, what: str) -> bool:
    if type(value) is not bool:  # bool("no") is True: only real booleans mean yes or no
        raise InvalidInput(f"{what} must be True or False")
    return value


def _check_time(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput("captured_at must be an aware datetime (e.g. in UTC)")
    return value.astimezone(UTC)


def _check_destination(value: Destination | str) -> Destination:
    try:
        return Destination(value)
    except ValueError:
        raise InvalidInput("destination must be 'invoice' or 'customer_balance'") from None


_SECRET_CARD_FIELDS = {
    "number",
    "pan",
    "cvc",
    "cvv",
    "cvv2",
    "verification_value",
    "security_code",
    "track",
    "pin",
}


def _check_card(card: Card | Mapping[str, Any] | None) -> Card | None:
    if card is None or isinstance(card, Card):
        return card
    if not isinstance(card, Mapping):
        raise InvalidInput("card must be a refundkit.Card or a mapping")
    secret = _SECRET_CARD_FIELDS & {str(k).lower() for k in card}
    if secret:
        raise CardDataRefused(
            f"card data {sorted(secret)} is never accepted: pass brand, last4 and expiry only"
        )
    try:
        return Card(**card)
    except TypeError as exc:
        raise InvalidInput(f"card: {exc}") from None


def _source_lot(tx: st.Tx, payment: Payment, lot_id: str | None) -> dict[str, Any] | None:
    """The balance lot a refund of ``payment`` draws on: the one asked for, or a top-up's own."""
    if lot_id is None:
        if payment.destination is Destination.CUSTOMER_BALANCE:
            return st.lot_for_payment(tx, payment.id)
        return None
    lot = st.get_lot(tx, lot_id)
    if lot is None or lot["funding_payment_id"] != payment.id:
        raise InvalidInput(f"balance lot {lot_id} was not funded by payment {payment.id}")
    return lot


def _new_refund(
    payment: Payment,
    amount: Money,
    reason: str | None,
    actor: str | None,
    key: str | None,
    now: datetime,
    lot: dict[str, Any] | None = None,
) -> Refund:
    refund_id = new_id("rf_")
    return Refund(
        id=refund_id,
        payment_id=payment.id,
        amount=amount,
        status=S.RESERVED,
        reason=reason,
        actor=actor,
        idempotency_key=key,
        gateway=payment.gateway,
        # Derived from the refund id and committed before the call.
        gateway_idempotency_key=f"refundkit-{refund_id}",
        gateway_refund_id=None,
        created_at=now,
        updated_at=now,
        lot_id=lot["id"] if lot is not None else None,
    )


def _request(refund: Refund, payment: Payment, void: bool) -> GatewayRefundRequest:
    return GatewayRefundRequest(
        refund_id=refund.id,
        payment_id=payment.id,
        gateway_payment_id=payment.gateway_payment_id,
        amount=refund.amount,
        idempotency_key=refund.gateway_idempotency_key,
        reason=refund.reason,
        void=void,
    )


def _same_gateway_refund(refund: Refund, update: GatewayRefundUpdate) -> bool:
    """An update names our refund but another gateway refund: money may have moved twice.

    Applying it would let, say, a failure of that other refund reverse ours and reopen the
    balance. It is left for ``reconcile``, which imports a refund made outside refundkit.
    """
    theirs, ours = update.gateway_refund_id, refund.gateway_refund_id
    if theirs is None or ours is None or theirs == ours:
        return True
    log.warning(
        "webhook names refund %s but gateway refund %s, not %s: not applied; "
        "run reconcile to import it",
        refund.id,
        theirs,
        ours,
    )
    return False

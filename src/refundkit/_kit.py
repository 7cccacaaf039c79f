"""``RefundKit``: the facade a billing backend calls. One use case per method.

The facade keeps the state (a ``Runtime``: store, plugins, gateways, policy, clock, retry
settings) and hands each use case to a service module of ``_engine`` (docs/architecture.md).
A refund is three short transactions with the gateway call between them (R-2.1):
``_engine.refunds`` reserves and submits, ``_engine.outcomes`` says what the gateway's answer
means, and ``_engine.transitions`` is the one bookkeeping path that recovery, webhooks,
reconciliation and a person's decision use too, so a refund is journaled and announced once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar, cast

from sqlalchemy.engine import Engine

from . import _store as st
from ._balances import BalanceLot, CustomerBalance, InvoiceBalance
from ._engine import (
    Runtime,
    balances,
    inbound,
    outbox,
    payments,
    planning,
    reconcile,
    recovery,
    refunds,
    review,
)
from ._engine.gateways import GatewayPool
from ._engine.recovery import RecoveryReport
from ._errors import InvalidInput, InvalidStore
from ._gateway import Gateway
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
)
from ._money import Money
from ._planner import Plan, PlanResult
from ._plugins import PluginManager
from ._policy import PolicyConfig
from ._schedule import DEFAULT_RETRY_SCHEDULE
from ._validate import check_idempotency_key, check_money, check_text, no_card_numbers

if TYPE_CHECKING:
    from ._accounting import TrialBalance
    from ._delivery import Delivery, DeliveryReport, Endpoint, EndpointState, Sender
    from ._reconcile import ReconcileReport

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "BalanceLot",
    "CustomerBalance",
    "InvoiceBalance",
    "RecoveryReport",
    "RefundKit",
]

T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _check_status(status: object) -> str | None:
    """A refund status to filter on: one of ``RefundStatus``'s values, or None."""
    if status is None or (isinstance(status, str) and status in _STATUSES):
        return status
    raise InvalidInput(f"status must be one of {', '.join(_STATUSES)}, not {status!r}"[:300])


_STATUSES = tuple(s.value for s in RefundStatus)


class _OnRuntime(Generic[T]):
    """A kit setting that lives on the runtime the services share (so setting it on the kit,
    as ``refundkit recover --schedule`` does, reaches every service)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, kit: RefundKit, owner: type | None = None) -> T:
        return cast(T, getattr(kit.runtime, self._name))

    def __set__(self, kit: RefundKit, value: T) -> None:
        setattr(kit.runtime, self._name, value)


class RefundKit:
    """Refunds done right: caps, exactly-once gateway calls, ledger and events."""

    store = _OnRuntime[st.Store]()
    plugins = _OnRuntime[PluginManager]()
    policy = _OnRuntime[PolicyConfig]()
    clock = _OnRuntime[Callable[[], datetime]]()
    submit_retries = _OnRuntime[int]()
    retry_backoff = _OnRuntime[float]()
    in_flight_timeout = _OnRuntime[timedelta]()
    retry_schedule = _OnRuntime[tuple[timedelta, ...]]()
    #: How many due refunds one recovery worker claims at a time.
    recovery_batch = _OnRuntime[int]()

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
        #: What the services share. ``runtime.checkpoint`` is called at the named crash
        #: points of a refund (tests use it to die there, R-2.2).
        self.runtime = Runtime(
            store=store,
            plugins=plugins,
            gateways=GatewayPool(plugins, gateways, store),
            policy=policy or PolicyConfig(),
            clock=clock,
            submit_retries=submit_retries,
            retry_backoff=retry_backoff,
            in_flight_timeout=in_flight_timeout,
            retry_schedule=tuple(retry_schedule),
        )

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
        created (the CLI's reading commands use this). A URL that names nothing usable raises
        ``InvalidStore``; a server that cannot be reached or a file another process holds
        locked, ``StoreUnavailable`` (docs/facade.md, "Opening a store").
        """
        if not isinstance(url, str | Engine):
            raise InvalidStore("a store is a database URL or an SQLAlchemy Engine")
        if not create and isinstance(url, str):
            st.check_exists(url)
        store = st.open_store(url)
        try:
            pm = PluginManager(autoload=autoload, plugins=plugins)
            return cls(store, plugins=pm, gateways=gateways, **options)
        except BaseException:
            if isinstance(url, str):
                store.dispose()
            raise

    def close(self) -> None:
        self.runtime.gateways.close()
        self.store.dispose()

    def __enter__(self) -> RefundKit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RefundKit store={self.store.url.render_as_string(hide_password=True)!r}>"

    def gateway(self, name: str) -> Gateway:
        """The configured gateway instance (created on first use)."""
        no_card_numbers(gateway=name)
        return self.runtime.gateway(name)

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
        payment = payments.new_payment(
            self.runtime, id=id, customer_id=customer_id, amount=amount, gateway=gateway,
            gateway_payment_id=gateway_payment_id, destination=destination, card=card,
            captured_at=captured_at, invoice_id=invoice_id, disputed=disputed, settled=settled,
        )  # fmt: skip
        return payments.record(self.runtime, payment)

    def payment(self, payment_id: str) -> Payment:
        return payments.get(self.runtime, payment_id)

    def payments(self, customer_id: str | None = None) -> list[Payment]:
        no_card_numbers(customer_id=customer_id)
        return payments.listing(self.runtime, customer_id)

    def quote(self, payment_id: str) -> Quote:
        """What a refund of this payment may be now, and the limits that bind.

        A payment recorded unsettled is first checked at its gateway (one call), so "it has
        not settled yet" is never a stale answer."""
        return payments.quote(self.runtime, payment_id)

    def refresh_payment(self, payment_id: str) -> Payment:
        """Ask the payment's gateway whether it has settled and whether it is disputed, and
        store what it says. ``quote``, ``refund`` and ``reconcile`` do this themselves when it
        matters; gateway errors are raised (typed)."""
        return payments.refresh(self.runtime, payment_id)

    def invoice(self, invoice_id: str) -> InvoiceBalance:
        """An invoice's payments and its refundable balance (their sum)."""
        return payments.invoice(self.runtime, invoice_id)

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
        ask = refunds.Ask(
            payment_id=check_id(payment_id, "payment id"),
            amount=check_money(amount, "amount") if amount is not None else None,
            reason=check_text(reason, "reason"),
            actor=check_text(actor, "actor"),
            key=check_idempotency_key(idempotency_key),
        )
        return refunds.run(self.runtime, ask)

    def get_refund(self, refund_id: str) -> Refund:
        return refunds.get(self.runtime, refund_id)

    def refunds(self, payment_id: str | None = None, *, status: str | None = None) -> list[Refund]:
        """Refunds in creation order, of one payment and in one ``RefundStatus`` if given."""
        no_card_numbers(payment_id=payment_id, status=status)
        if payment_id is not None:
            check_id(payment_id, "payment id")
        return refunds.listing(self.runtime, payment_id, _check_status(status))

    # --- recovery and manual review ---------------------------------------------------------

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
        no_card_numbers(payment_id=payment_id)
        return recovery.recover(self.runtime, payment_id, force=force)

    def recovery_due(self) -> list[tuple[Refund, datetime]]:
        """Every in-flight refund with the time recovery will next look at it, soonest first."""
        return recovery.due(self.runtime)

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
        no_card_numbers(status=status)
        return review.resolve(
            self.runtime, refund_id, status, actor=actor, note=note,
            gateway_refund_id=gateway_refund_id, force=force,
        )  # fmt: skip

    def resolution(self, refund_id: str) -> dict[str, Any] | None:
        """The person's decision about a refund that was in manual review, if any."""
        return review.resolution(self.runtime, refund_id)

    # --- reconciliation and inbound webhooks ------------------------------------------------

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
        no_card_numbers(payment_id=payment_id, gateway=gateway)
        return reconcile.reconcile(self.runtime, payment_id, gateway, since)

    def handle_gateway_webhook(
        self, gateway: str, headers: Mapping[str, str], body: bytes
    ) -> list[Refund]:
        """Verify and apply a gateway's webhook; duplicates and stale updates change nothing."""
        no_card_numbers(gateway=gateway)
        return inbound.handle(self.runtime, gateway, headers, body)

    # --- events and the journal -------------------------------------------------------------

    def events(
        self,
        after: str | int | None = None,
        *,
        limit: int | None = None,
        refund_id: str | None = None,
    ) -> list[Event]:
        """Outbox events, oldest first; ``after`` is an event id or sequence number."""
        # A sequence number is never 13 digits long: one that reads as a card number is one.
        no_card_numbers(after=str(after) if type(after) is int else after, refund_id=refund_id)
        return outbox.events(self.runtime, after, limit, refund_id)

    def dispatch_events(self) -> int:
        """Hand undelivered outbox events to ``refundkit_on_event`` listeners (at least once)."""
        return outbox.dispatch(self.runtime)

    def journal(
        self, refund_id: str | None = None, *, since: datetime | None = None
    ) -> list[JournalLine]:
        """Journal lines in posting order; ``since`` keeps those posted from then on (export:
        docs/accounting.md)."""
        from ._accounting import read_lines

        no_card_numbers(refund_id=refund_id)
        return read_lines(self.store, since=since, refund_id=refund_id)

    def export_journal(
        self, out: IO[str], format: str = "jsonl", *, since: datetime | None = None
    ) -> int:
        """Write journal lines to ``out`` as ``csv`` or ``jsonl`` with stable line ids; returns
        how many lines were written (docs/accounting.md)."""
        from ._accounting import write_export

        no_card_numbers(format=format)
        return write_export(self.journal(since=since), out, format)

    def trial_balance(self) -> TrialBalance:
        """Debits equal credits per currency; every succeeded or reversed refund journaled."""
        from ._accounting import check

        return check(self.store)

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

        no_card_numbers(status=status, event_id=event_id)
        return list_deliveries(self.store, status=status, event_id=event_id)

    def retry_event(self, event_id: str) -> int:
        """Deliver a dead-lettered event again, with a fresh retry horizon."""
        from ._delivery import retry_event

        no_card_numbers(event_id=event_id)
        return retry_event(self.store, event_id, self.clock())

    def webhook_endpoints(self) -> list[EndpointState]:
        """Endpoints a deliverer has seen: where each starts, and whether a 410 disabled it."""
        from ._delivery import list_endpoints

        return list_endpoints(self.store)

    def enable_webhook_endpoint(self, url: str) -> int:
        """Re-enable an endpoint a 410 Gone disabled; returns how many deliveries resume."""
        from ._delivery import enable_endpoint

        no_card_numbers(url=url)
        return enable_endpoint(self.store, url, self.clock())

    # --- customer balance and planning ------------------------------------------------------

    def balance(self, customer_id: str) -> CustomerBalance:
        """The customer's balance per currency, lot by lot with the payment that funded it."""
        return balances.balance(self.runtime, customer_id)

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
        no_card_numbers(order=order)
        return balances.redeem(self.runtime, customer_id, amount, reference, order)

    def issue_credit(
        self, source_id: str, amount: Money, *, reference: str | None = None
    ) -> tuple[BalanceLot, ...]:
        """Move ``amount`` of a payment's (or an invoice's) refundable balance into the
        customer balance, as lots that remember the payment that funded them.

        ``source_id`` is a payment id, or an invoice id (its payments give newest first).
        The credit is no longer refundable to the card directly; ``refund_balance`` can
        still send what is left of it back to that payment's card.
        """
        return balances.issue_credit(self.runtime, source_id, amount, reference)

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
        no_card_numbers(strategy=strategy)
        return planning.plan_refund(self.runtime, customer_id, total, strategy, scope)

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
        return planning.execute(self.runtime, plan, reason, actor)

    def refund_balance(
        self, customer_id: str, amount: Money, *, strategy: str = "newest_first", **kw: Any
    ) -> PlanResult:
        """Return ``amount`` of the customer's balance to the cards that funded it: plans over
        the lots (newest first by default), then executes, one refund per funding payment."""
        no_card_numbers(strategy=strategy)
        return planning.refund_balance(self.runtime, customer_id, amount, strategy, **kw)

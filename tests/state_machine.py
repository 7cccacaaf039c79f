"""R-7.1: a Hypothesis state machine drives the kit through the sandbox's faults.

Rules make payments, ask for refunds (keys drawn from a bundle, sometimes with altered
parameters), pick the gateway's outcome through the amount's cents (the sandbox's magic cents:
decline, 5xx before effect, timeout after or before effect, pending), crash the kit at a named
point and reopen it on the same store, run recovery, deliver webhooks (duplicated, reordered,
late), reverse refunds at the gateway, reconcile, and move the clock (past 24 h too).

After every step the invariants compare three things: an integer model of what each refund
must be, the local store, and the sandbox's own books (the "real" gateway). The module is
imported by ``tests/test_state_machine.py``, which runs it for CI and shows it catches planted
bugs.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal, cast

from hypothesis import strategies as hs
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from refundkit import Card, Money, RefundKit, RefundStatus
from refundkit._errors import (
    GatewayDeclined,
    GatewayDisagrees,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    RefundNotAllowed,
    RefundReleased,
    RequestInProgress,
    WebhookVerificationError,
)
from refundkit._ledger import is_balanced
from refundkit._model import Refund
from refundkit._pans import find_pans
from refundkit.gateways.sandbox import WEBHOOK_TOLERANCE_SECONDS, SandboxGateway

from .conftest import T0, FakeClock, row_counts

S = RefundStatus
#: The sandbox's magic cents (see its module docstring) → what the refund call must return.
OUTCOMES: Final[dict[int, S | type[Exception]]] = {
    0: S.SUCCEEDED,
    91: GatewayDeclined,
    92: S.PENDING,  # then succeeded
    93: S.PENDING,  # then failed
    94: S.UNKNOWN,  # timeout after the effect
    95: S.UNKNOWN,  # timeout before the effect
    97: GatewayUnavailable,  # 5xx before the effect
}
CURRENCIES: Final = ("USD", "JPY", "EUR", "KWD")
CRASH_POINTS: Final = ("reserved", "submitted", "gateway_returned", "confirmed", "published")
#: Canary card (R-5.4): its BIN and last 4 are stored, the number never is.
CANARY: Final = Card(brand="visa", last4="1111", exp_month=12, exp_year=2030, first6="411111")
HOLDING: Final = frozenset(s for s in S if s.holds_balance)


_TEMPLATE: list[Path] = []


def _template() -> Path:
    """An empty, migrated store file, made once per process."""
    if not _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="refundkit-sm-template-")) / "kit.db"
        RefundKit.open(f"sqlite:///{path}", autoload=False).close()
        atexit.register(shutil.rmtree, path.parent, True)
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


class Crash(BaseException):
    """The worker dies at a checkpoint: nothing below it runs (a BaseException: no handler)."""


@dataclass
class ModelRefund:
    refund_id: str
    payment_id: str
    amount: int
    cents: int
    #: What the local record must say; None while recovery or a crash leaves it in doubt.
    expected: S | None


@dataclass
class ModelPayment:
    payment_id: str
    amount: int
    currency: str
    refunds: list[ModelRefund] = field(default_factory=list)
    #: Someone refunded at the gateway's dashboard: its cap now differs from ours until
    #: reconciliation, so the model stops predicting this payment's refund calls.
    outside: bool = False

    def known_held(self) -> int | None:
        """Integer model of the held balance, when every refund's status is known."""
        if any(r.expected is None for r in self.refunds):
            return None
        return sum(r.amount for r in self.refunds if r.expected in HOLDING)


@dataclass(frozen=True)
class Key:
    key: str
    payment_id: str
    amount: int


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    made_at_s: int


#: Two attempts: only recovery passes use them (the look-ups before a new refund do not, issue
#: 14), so a short schedule keeps manual review, and people's decisions, within an example.
RETRY_SCHEDULE: Final = (timedelta(seconds=15), timedelta(hours=1))


class RefundMachine(RuleBasedStateMachine):
    payments = Bundle("payments")
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        # tmpfs when there is one: the machine fsyncs thousands of times per run.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dir = Path(tempfile.mkdtemp(prefix="refundkit-sm-", dir=shm))
        self.url = self.new_store()
        self.clock = FakeClock(T0)
        self.kit = self._open()
        self.model: dict[str, ModelPayment] = {}
        self.by_id: dict[str, ModelRefund] = {}
        self.deliveries: list[Delivery] = []
        self.key_count = 0

    def new_store(self) -> str:
        """An empty, migrated store for one example (a subclass runs it on PostgreSQL)."""
        # A copy of a migrated store: running the migrations per example would dominate.
        shutil.copy(_template(), self.dir / "kit.db")
        return f"sqlite:///{self.dir / 'kit.db'}"

    def _open(self) -> RefundKit:
        # The sandbox's books in a file of the example's own, on either store, so they outlive
        # a crash and restart of the kit.
        kit = RefundKit.open(
            self.url,
            autoload=False,
            clock=self.clock,
            retry_backoff=0,
            submit_retries=0,
            # Short, so recovery gives up within an example and people get to decide.
            retry_schedule=RETRY_SCHEDULE,
            gateways={"sandbox": {"path": str(self.dir / "sandbox.db")}},
        )
        kit.runtime.db_clock = self.clock  # the model's time is the database's too
        return kit

    @property
    def sandbox(self) -> SandboxGateway:
        return cast(SandboxGateway, self.kit.gateway("sandbox"))

    def teardown(self) -> None:
        self.kit.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- rules ------------------------------------------------------------------------------

    @precondition(lambda self: len(self.model) < 3)
    @rule(
        target=payments,
        currency=hs.sampled_from(CURRENCIES),
        amount=hs.integers(1_000, 20_000),
    )
    def new_payment(self, currency: str, amount: int) -> str:
        return self._pay(currency, amount)

    @initialize(
        target=payments,
        currency=hs.sampled_from(CURRENCIES),
        amount=hs.integers(1_000, 20_000),
    )
    def first_payment(self, currency: str, amount: int) -> str:
        """Every run starts with a payment, so no step is wasted waiting for one."""
        return self._pay(currency, amount)

    def _pay(self, currency: str, amount: int) -> str:
        pid = f"pay_{len(self.model) + 1}"
        self.kit.record_payment(
            id=pid,
            customer_id="cus_1",
            amount=Money(amount, currency),
            gateway="sandbox",
            gateway_payment_id=f"sbx_ch_{pid}",
            destination="invoice",
            card=CANARY,
        )
        self.model[pid] = ModelPayment(pid, amount, currency)
        return pid

    @rule(
        target=keys,
        pid=payments,
        units=hs.integers(1, 60),
        cents=hs.sampled_from(sorted(OUTCOMES)),
        with_key=hs.booleans(),
    )
    def refund(self, pid: str, units: int, cents: int, with_key: bool) -> Key:
        key = None
        if with_key:
            self.key_count += 1
            key = f"key-{self.key_count}"
        self._refund(pid, units * 100 + cents, key)
        return Key(key or "", pid, units * 100 + cents)

    @rule(k=keys, altered=hs.booleans())
    def reuse_key(self, k: Key, altered: bool) -> None:
        """R-1.2/R-1.3: the same key replays; with other parameters it is refused."""
        if not k.key:
            return
        pay = self.model[k.payment_id]
        amount = k.amount + 100 if altered else k.amount
        stored = [r for r in self.kit.refunds() if r.idempotency_key == k.key]
        if not stored:
            # Its first attempt certainly had no effect (5xx): the key is free again.
            self._refund(k.payment_id, amount, k.key)
            return
        [first] = stored
        before = row_counts(self.kit)
        gateway_before = self.sandbox.refunds()
        expected: type[Exception] | None = None
        # Compared with what the key was stored for: a key freed by a 5xx may have been used
        # again with the altered amount, which then replays.
        if amount != first.amount.amount:
            expected = IdempotencyConflict
        elif first.status is S.FAILED:
            # Released by recovery before it was sent (a crash at "reserved"): RefundReleased.
            released = first.failure_code == "not_submitted"
            expected = RefundReleased if released else GatewayDeclined
        elif first.status in (S.RESERVED, S.SUBMITTED) and (
            self.clock.now - first.updated_at < self.kit.in_flight_timeout
        ):
            expected = RequestInProgress
        got: Refund | Exception
        try:
            got = self.kit.refund(k.payment_id, Money(amount, pay.currency), idempotency_key=k.key)
        except (IdempotencyConflict, GatewayDeclined, RefundReleased, RequestInProgress) as exc:
            got = exc
        if isinstance(got, Exception):
            assert type(got) is expected, f"{type(got).__name__}, expected {expected}"
        else:
            assert expected is None, f"replayed, expected {expected}"
            assert (got.id, got.status) == (first.id, first.status)
        # A replay or a refusal writes nothing and calls no gateway.
        assert row_counts(self.kit) == before
        assert self.sandbox.refunds() == gateway_before

    @rule(pid=payments, units=hs.integers(1, 30), cents=hs.sampled_from(sorted(OUTCOMES)),
          point=hs.sampled_from(CRASH_POINTS))  # fmt: skip
    def crash_during_refund(self, pid: str, units: int, cents: int, point: str) -> None:
        """R-2.2: the worker dies at a crash point; a new kit opens the same store."""

        def die(name: str) -> None:
            if name == point:
                raise Crash(name)

        pay = self.model[pid]
        refunds_before = {r.id for r in self.kit.refunds(pid)}
        self.kit.runtime.checkpoint = die
        with contextlib.suppress(Crash, GatewayDeclined, GatewayUnavailable, RefundNotAllowed):
            self.kit.refund(pid, Money(units * 100 + cents, pay.currency))
        self.kit.close()
        self.kit = self._open()
        self._forget_doubts(pay)
        for r in self.kit.refunds(pid):
            if r.id not in refunds_before:
                self._track(pay, r, r.amount.amount, expected=None)

    @rule(force=hs.booleans())
    def recover(self, force: bool) -> None:
        self.kit.recover(force=force)
        for pay in self.model.values():
            self._forget_doubts(pay)

    @rule(step=hs.sampled_from([1, 20, 150, 301, 3_600, 25 * 3_600]))
    def advance_clock(self, step: int) -> None:
        """R-7.4: time moves (past the webhook tolerance and the 24 h key window too)."""
        self.clock.advance(seconds=step)

    @rule()
    def gateway_settles_pending(self) -> None:
        """The sandbox settles pending refunds; their webhooks wait to be delivered."""
        now = int(self.clock.now.timestamp())
        for headers, body in self.sandbox.settle_pending():
            self.deliveries.append(Delivery(headers, body, now))

    @rule(data=hs.data())
    def gateway_reverses(self, data: hs.DataObject) -> None:
        done = [r for r in self.sandbox.refunds() if r["status"] == "succeeded"]
        if not done:
            return
        row = data.draw(hs.sampled_from(done))
        headers, body = self.sandbox.reverse(row["gateway_refund_id"])
        self.deliveries.append(Delivery(headers, body, int(self.clock.now.timestamp())))

    @precondition(lambda self: bool(self.deliveries))
    @rule(data=hs.data(), keep=hs.booleans())
    def deliver_webhook(self, data: hs.DataObject, keep: bool) -> None:
        """Any queued webhook, in any order; ``keep`` leaves it queued to be delivered again."""
        i = data.draw(hs.integers(0, len(self.deliveries) - 1))
        d = self.deliveries[i] if keep else self.deliveries.pop(i)
        late = int(self.clock.now.timestamp()) - d.made_at_s > WEBHOOK_TOLERANCE_SECONDS
        before = row_counts(self.kit)
        try:
            self.kit.handle_gateway_webhook("sandbox", d.headers, d.body)
        except WebhookVerificationError:
            assert late, "a fresh, signed webhook must verify"
            assert row_counts(self.kit) == before
            return
        assert not late, "a webhook older than the tolerance must be refused"
        for pay in self.model.values():
            self._forget_doubts(pay, succeeded=True)

    @rule(pid=payments, units=hs.integers(1, 20), pending=hs.booleans())
    def dashboard_refund(self, pid: str, units: int, pending: bool) -> None:
        """Someone refunds in the gateway's dashboard, not through the kit (drift)."""
        pay = self.model[pid]
        status: Literal["succeeded", "pending"] = "pending" if pending else "succeeded"
        with contextlib.suppress(GatewayDeclined):  # over the gateway's own cap
            self.sandbox.dashboard_refund(
                f"sbx_ch_{pid}", Money(units * 100, pay.currency), status=status
            )
            pay.outside = True

    @rule(data=hs.data(), say=hs.sampled_from(["succeeded", "failed"]))
    def person_resolves(self, data: hs.DataObject, say: str) -> None:
        """A person decides a refund in manual review, whatever they say: when the gateway
        says otherwise nothing is written, and the invariants then check that no decision
        released money the gateway paid out or booked money it never did."""
        # In the model's order (ids are random, so the store's order is not reproducible).
        statuses = {r.id: r for r in self.kit.refunds()}
        review = [
            statuses[m.refund_id]
            for pay in self.model.values()
            for m in pay.refunds
            if statuses[m.refund_id].status is S.MANUAL_REVIEW
        ]
        if not review:
            return
        r = data.draw(hs.sampled_from(review))
        before = row_counts(self.kit)
        try:
            self.kit.resolve(r.id, say, actor="person", note="state machine")
        except GatewayDisagrees:
            assert row_counts(self.kit) == before, "a refused decision wrote"
            return
        except GatewayError:
            return  # the gateway could not be asked: without force, nothing is decided
        self.by_id[r.id].expected = None  # the invariants check it against the gateway

    @rule()
    def reconcile(self) -> None:
        """Drift reconciliation: dashboard refunds are imported (or sent to a person when the
        local holds leave no room); nothing the kit made is missing or doubled."""
        report = self.kit.reconcile()
        codes = {f.code for f in report.findings}
        assert not codes & {"unknown_at_gateway", "duplicate_at_gateway"}, report
        over_cap = {f.gateway_refund_id for f in report.findings if f.code == "over_cap"}
        for f in report.by_action("imported"):
            assert self.model[f.payment_id].outside, f
        for row in self.sandbox.refunds():
            if row["refund_id"] == "" and row["status"] in ("succeeded", "pending"):
                gid = row["gateway_refund_id"]
                known = [r for r in self.kit.refunds() if r.gateway_refund_id == gid]
                assert known or gid in over_cap, (
                    f"dashboard refund {gid} neither imported nor reported"
                )
        for pay in self.model.values():
            for r in self.kit.refunds(pay.payment_id):
                if r.id not in self.by_id:
                    assert r.reason == "external", r
                    self._track(pay, r, r.amount.amount, expected=None)
            self._forget_doubts(pay, succeeded=True)

    # --- model helpers -----------------------------------------------------------------------

    def _refund(self, pid: str, amount: int, key: str | None) -> None:
        pay = self.model[pid]
        held = pay.known_held()
        doubt = (
            held is None
            or pay.outside
            or any(r.expected in (S.UNKNOWN, S.RESERVED, S.SUBMITTED) for r in pay.refunds)
        )
        before = row_counts(self.kit)
        outcome = OUTCOMES[amount % 100]
        try:
            got = self.kit.refund(pid, Money(amount, pay.currency), idempotency_key=key)
        except RefundNotAllowed:
            # Refused by the cap: the model agrees, and nothing was written.
            if not doubt:
                assert held is not None
                assert held + amount > pay.amount, "refused although the cap allows it"
                assert row_counts(self.kit) == before
            self._forget_doubts(pay)
            return
        except (GatewayDeclined, GatewayUnavailable) as exc:
            self._refused(pay, exc, amount, None if doubt else held)
            return
        if not doubt:
            assert held is not None
            assert held + amount <= pay.amount, "the cap let an over-refund through"
            assert got.status is outcome, f"{amount}: {got.status}, expected {outcome}"
        self._forget_doubts(pay)
        self._track(pay, got, amount, expected=got.status if not doubt else None)

    def _refused(
        self,
        pay: ModelPayment,
        exc: GatewayDeclined | GatewayUnavailable,
        amount: int,
        held: int | None,
    ) -> None:
        """A definite gateway refusal: the refund is kept as failed, and nothing is held."""
        refund = exc.refund
        assert refund is not None
        if held is not None:
            assert held + amount <= pay.amount, "the cap let an over-refund through"
            outcome = OUTCOMES[amount % 100]
            assert outcome is type(exc), f"{amount}: {type(exc).__name__}, not {outcome}"
        self._forget_doubts(pay)
        self._track(pay, refund, amount, expected=S.FAILED)

    def _track(self, pay: ModelPayment, refund: Refund, amount: int, expected: S | None) -> None:
        if refund.id in self.by_id:
            return
        m = ModelRefund(refund.id, pay.payment_id, amount, amount % 100, expected)
        pay.refunds.append(m)
        self.by_id[refund.id] = m

    def _forget_doubts(self, pay: ModelPayment, *, succeeded: bool = False) -> None:
        """Recovery, webhooks and crashes may settle any refund in flight (and a reversal a
        succeeded one): the model stops predicting those, and the invariants check them
        against the gateway's books instead."""
        for r in pay.refunds:
            if r.expected is not None and (
                r.expected.in_flight or (succeeded and r.expected is S.SUCCEEDED)
            ):
                r.expected = None

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def caps_hold_and_totals_add_up(self) -> None:
        """R-3: held = Σ holding refunds ≤ captured; refunded = Σ succeeded; model agrees."""
        for pay in self.model.values():
            p = self.kit.payment(pay.payment_id)
            refunds = self.kit.refunds(pay.payment_id)
            held = sum(r.amount.amount for r in refunds if r.status.holds_balance)
            ok = sum(r.amount.amount for r in refunds if r.status is S.SUCCEEDED)
            assert p.held is not None
            assert p.refunded is not None
            assert p.held.amount == held, f"held {p.held} but refunds hold {held}"
            assert held <= pay.amount, "over-refund"
            assert p.refunded.amount == ok, f"refunded {p.refunded} but refunds succeeded {ok}"
            model_held = pay.known_held()
            if model_held is not None:
                assert held == model_held, f"model holds {model_held}, store {held}"

    @invariant()
    def local_state_equals_the_model(self) -> None:
        for r in self.kit.refunds():
            m = self.by_id.get(r.id)
            assert m is not None, f"a refund the model never saw: {r}"
            assert r.amount.amount == m.amount, f"{r.id}: {r.amount}, model {m.amount}"
            if m.expected is not None:
                assert r.status is m.expected, f"{r.id} is {r.status}, model {m.expected}"

    @invariant()
    def one_gateway_refund_per_refund_and_books_agree(self) -> None:
        """R-2.2: exactly once at the gateway; where the gateway holds money, so do we."""
        rows = [r for r in self.sandbox.refunds() if not r["declined"]]
        # Dashboard refunds carry no refund id ("").
        per_id = Counter(r["refund_id"] for r in rows if r["refund_id"])
        assert all(n == 1 for n in per_id.values()), f"refund made twice: {per_id}"
        at_gateway = {r["refund_id"]: r for r in rows if r["refund_id"]}
        by_gateway_id = {r["gateway_refund_id"]: r for r in rows}
        for r in self.kit.refunds():
            g = at_gateway.get(r.id) or by_gateway_id.get(r.gateway_refund_id)
            money_out = g is not None and g["status"] in ("succeeded", "pending")
            if money_out:
                assert r.status.holds_balance, f"{r.id} is {r.status}, the gateway has {g}"
            if r.status is S.SUCCEEDED:
                assert g is not None, f"{r.id} succeeded locally, unknown at the gateway"
                assert g["status"] in ("succeeded", "reversed"), f"{r.id} succeeded, gateway: {g}"
                assert g["amount"] == r.amount.amount, f"{r.id}: {r.amount}, gateway: {g}"
            if r.status is S.FAILED:
                assert not money_out, f"{r.id} failed locally, the gateway refunded it"
        for pay in self.model.values():
            charge = f"sbx_ch_{pay.payment_id}"
            out = sum(
                r["amount"]
                for r in rows
                if r["charge_id"] == charge and r["status"] in ("succeeded", "pending")
            )
            assert out <= pay.amount, f"the gateway paid out {out} of {pay.amount}"

    @invariant()
    def events_unique_journal_balanced_no_card_numbers(self) -> None:
        """R-2.2/R-4: unique event ids, one charge.refunded per refund; R-5.4 canary."""
        events = self.kit.events()
        assert len({e.id for e in events}) == len(events), "an event id twice"
        announced = Counter(e.data["refund"]["id"] for e in events if e.type == "charge.refunded")
        assert all(n == 1 for n in announced.values()), f"charge.refunded twice: {announced}"
        lines = self.kit.journal()
        assert is_balanced(lines), "the journal is not balanced"
        # canary: the card a payment carries and every free-text field.
        texts = [json.dumps(e.data.get("card")) for e in events]
        texts += [json.dumps(p.card.to_dict() if p.card else None) for p in self.kit.payments()]
        texts += [r.failure_message or "" for r in self.kit.refunds()]
        assert not [t for t in texts if find_pans(t)], "a card number in a card or free text"

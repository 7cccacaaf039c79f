"""R-7.1: the refund state machine in CI, and proof that it catches planted bugs."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from refundkit import RefundStatus, _reconcile, _store
from refundkit._engine import Runtime, outcomes, review
from refundkit._engine.transitions import Transition
from refundkit._gateway import GatewayRefund
from refundkit._model import Refund
from refundkit._reconcile import Comparison

from . import _pg as pgtest
from .state_machine import RefundMachine

#: R-7.1 asks for at least 200 examples of at least 50 steps in CI; a nightly job sets more
#: through REFUNDKIT_STATEFUL_EXAMPLES.
EXAMPLES = int(os.environ.get("REFUNDKIT_STATEFUL_EXAMPLES", "200"))
CI = settings(
    max_examples=EXAMPLES,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestRefundMachine = RefundMachine.TestCase
TestRefundMachine.settings = CI

#: The same machine on PostgreSQL: fewer examples (each step is a few loopback round trips);
#: the SQLite run above carries R-7.1's 200 x 50.
PG_EXAMPLES = int(os.environ.get("REFUNDKIT_STATEFUL_PG_EXAMPLES", "40"))


@pytest.mark.postgresql_only
def test_r7_1_the_machine_on_postgresql(db_url: str) -> None:
    """R-7.1 on the PostgreSQL store: the same rules and invariants, tables emptied per
    example."""

    class OnPostgreSQL(RefundMachine):
        def new_store(self) -> str:
            pgtest.empty(db_url)
            return db_url

    run_state_machine_as_test(
        OnPostgreSQL,
        settings=settings(CI, max_examples=PG_EXAMPLES, database=None),
    )


def _catches(*errors: type[Exception]) -> str:
    """Run a short, derandomized machine; it must fail with one of ``errors``."""
    quick = settings(
        max_examples=150,
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        # Finding the failure is the point here; shrinking it would only cost time.
        phases=[Phase.generate],
    )
    with pytest.raises(errors) as failure:
        run_state_machine_as_test(RefundMachine, settings=quick)
    return str(failure.value)


def test_the_machine_catches_a_refund_that_skips_the_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutation: the reserve step never holds the amount, so the cap cannot see it."""
    monkeypatch.setattr(_store, "add_held", lambda *_a, **_k: None)
    # Whichever comes first: the held invariant, or the store's CHECK (refunded <= held) when
    # an unheld refund is released or succeeds.
    assert _catches(AssertionError, sa.exc.IntegrityError, sqlite3.IntegrityError)


def test_the_machine_catches_a_timeout_taken_for_a_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutation: a timeout releases the hold as if nothing was refunded (R-2.3 broken)."""

    def released(_rt: Runtime, why: str) -> Transition:
        return Transition(RefundStatus.FAILED, failure_message=why)

    monkeypatch.setattr(outcomes, "unknown", released)
    assert _catches(AssertionError)


def test_the_machine_drives_reconciliation_into_a_double_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutation: reconciliation forgets the refunds it imported and imports them again. The
    store's UNIQUE(gateway, gateway_refund_id) refuses the second import: the machine reaches
    that path (dashboard refunds, then reconciling twice)."""
    monkeypatch.setattr(_store, "refund_by_gateway_id", lambda *_a, **_k: None)
    real = _reconcile.compare

    def forgetful(local: Sequence[Refund], remote: Sequence[GatewayRefund]) -> Comparison:
        return real([r for r in local if r.reason != _reconcile.EXTERNAL_REASON], remote)

    monkeypatch.setattr(_reconcile, "compare", forgetful)
    assert "UNIQUE" in _catches(sa.exc.IntegrityError, sqlite3.IntegrityError)


def test_the_machine_catches_a_decision_taken_without_asking_the_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutation: a person's decision on a refund in manual review is booked without asking
    the gateway, so "failed" can release a refund the gateway paid out."""
    monkeypatch.setattr(review, "gateway_view", lambda *_a, **_k: (False, None))
    assert _catches(AssertionError)

"""The refund status vocabulary in ``_model.py``: which moves ``TRANSITIONS`` allows and which
statuses ``IN_FLIGHT_STATUSES`` names, each stated as the rule it follows.

The store applies a move only from a source listed here (a conditional update), so an entry
missing from the table silently drops an outcome (a webhook's "succeeded" for a pending refund,
say) and an extra one books a move that must never happen. ``tools/mutate.py`` removes each
entry in turn; every removal breaks one of the rules below."""

from __future__ import annotations

import pytest

from refundkit import RefundStatus
from refundkit._model import IN_FLIGHT, IN_FLIGHT_STATUSES, TRANSITIONS

S = RefundStatus
#: The statuses whose outcome is open: the refund, recovery or a webhook still has to say.
OPEN = {S.RESERVED, S.SUBMITTED, S.UNKNOWN, S.PENDING}


def sources(target: RefundStatus) -> set[RefundStatus]:
    return set(TRANSITIONS[target])


def test_the_in_flight_statuses_are_those_neither_final_nor_with_a_person() -> None:
    """The ``RefundStatus`` docstring's partition: in flight, with a person, or final.
    Recovery looks only at these (a partial index), so one missing is never recovered."""
    assert set(IN_FLIGHT_STATUSES) == {s.value for s in OPEN}
    assert {s for s in RefundStatus if not s.final and s is not S.MANUAL_REVIEW} == OPEN
    assert IN_FLIGHT == OPEN
    assert all(s.in_flight for s in OPEN)
    assert not any(s.in_flight for s in set(RefundStatus) - OPEN)


def test_the_in_flight_index_text_follows_the_order_migration_0001_shipped() -> None:
    """Databases made by migration 0001 have a partial index with this exact WHERE text
    (``_schema.IN_FLIGHT_WHERE`` builds it from ``IN_FLIGHT_STATUSES``); another order or set
    needs a migration of its own."""
    from refundkit._schema import IN_FLIGHT_WHERE

    assert IN_FLIGHT_WHERE == "status IN ('reserved', 'submitted', 'unknown', 'pending')"
    assert IN_FLIGHT_STATUSES == ("reserved", "submitted", "unknown", "pending")


def test_a_refund_moves_to_every_status_but_reserved_and_never_back_to_it() -> None:
    assert set(TRANSITIONS) == set(RefundStatus) - {S.RESERVED}


def test_only_a_reserved_refund_is_submitted() -> None:
    assert sources(S.SUBMITTED) == {S.RESERVED}


@pytest.mark.parametrize("target", [S.SUCCEEDED, S.FAILED])
def test_every_refund_whose_outcome_is_open_can_end_succeeded_or_failed(
    target: RefundStatus,
) -> None:
    """The reply, recovery, a webhook or reconciliation may settle any refund in flight, and
    a person any refund in manual review (``kit.resolve``)."""
    assert sources(target) == OPEN | {S.MANUAL_REVIEW}


def test_recovery_may_give_up_on_any_refund_in_flight() -> None:
    assert sources(S.MANUAL_REVIEW) == OPEN


def test_the_gateway_may_report_pending_for_any_other_refund_in_flight() -> None:
    assert sources(S.PENDING) == OPEN - {S.PENDING}


def test_only_a_refund_the_gateway_has_not_answered_becomes_unknown() -> None:
    """A pending refund was accepted by the gateway: a lost lookup leaves it pending."""
    assert sources(S.UNKNOWN) == {S.RESERVED, S.SUBMITTED}


def test_a_final_refund_moves_only_from_succeeded_to_reversed() -> None:
    assert sources(S.REVERSED) == {S.SUCCEEDED}
    finals = {s for s in RefundStatus if s.final}
    assert [(t, f) for t, froms in TRANSITIONS.items() for f in froms if f in finals] == [
        (S.REVERSED, S.SUCCEEDED)
    ]


def test_every_source_of_a_target_holds_the_same_balance() -> None:
    """The table's promise: the bookkeeping of a move depends only on its target."""
    for target, froms in TRANSITIONS.items():
        assert len({s.holds_balance for s in froms}) == 1, target

"""Invariants the property tests check after every step, computed here independently of the
code they check (the ledger's own balance check is not used), and two ways to make a kit refuse
every refund, which the property tests must notice."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from refundkit import (
    JournalLine,
    Limit,
    Money,
    PolicyContext,
    Refund,
    RefundKit,
    RefundNotAllowed,
    RefundStatus,
    hookimpl,
)
from refundkit._engine import refunds as refund_service

#: The journals a refund in each status has (docs/accounting.md); any other status has none.
JOURNALS = {RefundStatus.SUCCEEDED: ["refund"], RefundStatus.REVERSED: ["refund", "reversal"]}


def check_journals(refund: Refund, lines: Sequence[JournalLine]) -> None:
    """Exactly the journals the refund's status calls for (one for a succeeded refund), each
    one debit and one credit of the refund's amount."""
    journals: dict[tuple[str, str], list[JournalLine]] = {}
    for line in lines:
        journals.setdefault((line.journal_id, line.kind), []).append(line)
    assert sorted(kind for _, kind in journals) == JOURNALS.get(refund.status, []), refund
    for entry in journals.values():
        assert sorted(line.side for line in entry) == ["credit", "debit"], entry
        assert {line.amount for line in entry} == {refund.amount}, entry


def check_every_journal(kit: RefundKit, payment_id: str | None = None) -> None:
    for refund in kit.refunds(payment_id):
        check_journals(refund, kit.journal(refund.id))


# --- a kit that refuses every refund ------------------------------------------------------------


class RefuseEverything:
    """A policy rule that allows nothing: every quote is 0 and every refund refused."""

    @staticmethod
    def rule(ctx: PolicyContext) -> Sequence[Limit]:
        zero = Money.zero(ctx.payment.amount.currency)
        return [Limit("refuse_everything", zero, "Nothing may be refunded.")]

    @hookimpl
    def refundkit_policy_rules(self) -> Sequence[object]:
        return [self.rule]


def _refuse(*args: object) -> None:
    raise RefundNotAllowed("refused by the test", [])


def refuse_by_rule(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    return [RefuseEverything()]


def refuse_in_the_amount_check(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    monkeypatch.setattr(refund_service, "check_amount", _refuse)
    return []

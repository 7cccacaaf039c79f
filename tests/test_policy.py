"""Policy limits: each built-in rule, its stable code and its sentence; plugin rules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from refundkit import (
    Destination,
    GatewayUnavailable,
    Limit,
    Money,
    PolicyConfig,
    PolicyContext,
    RefundKit,
    RefundNotAllowed,
    RefundStatus,
    hookimpl,
)
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, record, row_counts, usd


def open_kit(tmp_path: Path, clock: FakeClock, **options: object) -> RefundKit:
    return RefundKit.open(
        f"sqlite:///{tmp_path / 'p.db'}",
        autoload=False,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


def test_refund_window_from_configuration(tmp_path: Path, clock: FakeClock) -> None:
    kit = open_kit(tmp_path, clock, policy=PolicyConfig(refund_window_days=30))
    record(kit)
    clock.advance(days=30)
    assert kit.quote("pay_1").refundable
    clock.advance(seconds=1)
    q = kit.quote("pay_1")
    assert not q.refundable
    assert [(lim.code, lim.amount) for lim in q.limits] == [("refund_window", usd("0.00"))]
    assert q.limits[0].message == "The refund window of 30 days ended on 2026-12-22."
    with pytest.raises(RefundNotAllowed) as info:
        kit.refund("pay_1")
    assert info.value.limits[0].code == "refund_window"
    kit.close()


def test_max_refunds_per_payment(tmp_path: Path, clock: FakeClock) -> None:
    kit = open_kit(tmp_path, clock, policy=PolicyConfig(max_refunds_per_payment=2))
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    kit.refund("pay_1", usd("1.00"))
    before = row_counts(kit)
    with pytest.raises(RefundNotAllowed) as info:
        kit.refund("pay_1", usd("1.00"))
    assert [lim.code for lim in info.value.limits] == ["max_refunds"]
    assert "already has 2 refunds" in str(info.value)
    assert row_counts(kit) == before
    kit.close()


def test_failed_refunds_do_not_count_towards_max_refunds(tmp_path: Path, clock: FakeClock) -> None:
    kit = open_kit(tmp_path, clock, policy=PolicyConfig(max_refunds_per_payment=1))
    record(kit)
    sandbox = kit.gateway("sandbox")
    assert isinstance(sandbox, SandboxGateway)
    sandbox.script("decline")
    with pytest.raises(Exception, match="declined"):
        kit.refund("pay_1", usd("1.00"))
    assert kit.refund("pay_1", usd("1.00")).status is RefundStatus.SUCCEEDED
    kit.close()


def test_disputed_payment_is_not_refundable(kit: RefundKit) -> None:
    record(kit, disputed=True)
    q = kit.quote("pay_1")
    assert not q.refundable
    assert [lim.code for lim in q.limits] == ["disputed"]
    assert q.max_amount == usd("0.00")


def test_unsettled_payment_only_voids_in_full(kit: RefundKit) -> None:
    record(kit, settled=False)
    q = kit.quote("pay_1")
    assert q.refundable
    assert q.full_only
    assert q.default_amount == usd("50.00")
    assert [lim.code for lim in q.limits] == ["unsettled"]
    before = row_counts(kit)
    with pytest.raises(RefundNotAllowed) as info:
        kit.refund("pay_1", usd("10.00"))
    assert "only a void of the whole 50.00 USD" in str(info.value)
    assert row_counts(kit) == before
    assert kit.refund("pay_1").status is RefundStatus.SUCCEEDED  # the void of the whole charge


def test_a_payment_that_settled_since_it_was_recorded_quotes_and_refunds_in_part(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """The "not settled yet" limit is never a stale answer: a payment recorded unsettled is
    asked about at its gateway by the quote and by a refund, and the answer is stored."""
    record(kit, settled=False)
    assert [lim.code for lim in kit.quote("pay_1").limits] == ["unsettled"]  # still unsettled
    sandbox.set_settled("sbx_ch_pay_1")
    q = kit.quote("pay_1")
    assert (q.limits, q.full_only, q.max_amount) == ((), False, usd("50.00"))
    assert kit.payment("pay_1").settled  # stored: the next quote asks nobody
    assert kit.refund("pay_1", usd("10.00")).status is RefundStatus.SUCCEEDED


def test_a_refund_asks_the_gateway_about_an_unsettled_payment_first(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    record(kit, settled=False)
    sandbox.set_settled("sbx_ch_pay_1")  # no quote in between
    assert kit.refund("pay_1", usd("10.00")).status is RefundStatus.SUCCEEDED
    assert kit.quote("pay_1").max_amount == usd("40.00")


def test_when_the_gateway_cannot_say_the_stored_unsettled_answer_stands(
    kit: RefundKit,
    sandbox: SandboxGateway,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record(kit, settled=False)
    sandbox.set_settled("sbx_ch_pay_1")

    def down(gateway_payment_id: str) -> None:
        raise GatewayUnavailable("sandbox: 503")

    monkeypatch.setattr(sandbox, "fetch_payment", down)
    assert [lim.code for lim in kit.quote("pay_1").limits] == ["unsettled"]
    before = row_counts(kit)
    with pytest.raises(RefundNotAllowed):
        kit.refund("pay_1", usd("10.00"))
    assert row_counts(kit) == before
    assert "could not ask its gateway about settlement" in caplog.text


def test_a_settled_payment_is_not_asked_about_again(
    kit: RefundKit, sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(kit)

    def forbidden(gateway_payment_id: str) -> None:
        raise AssertionError("a settled payment's quote or refund must not call the gateway")

    monkeypatch.setattr(sandbox, "fetch_payment", forbidden)
    kit.quote("pay_1")
    kit.refund("pay_1", usd("1.00"))


def test_currency_mismatch_is_refused(kit: RefundKit) -> None:
    record(kit)
    with pytest.raises(Exception, match="payment was in USD") as info:
        kit.refund("pay_1", Money(100, "EUR"))
    assert getattr(info.value, "code", None) == "currency_mismatch"


def test_customer_balance_limit_names_what_was_spent(kit: RefundKit) -> None:
    record(kit, destination=Destination.CUSTOMER_BALANCE)
    kit.redeem_balance("cus_1", usd("20.00"), reference="inv_7")
    q = kit.quote("pay_1")
    assert q.max_amount == usd("30.00")
    assert [lim.code for lim in q.limits] == ["customer_balance"]
    assert q.limits[0].message == (
        "Only 30.00 USD of this top-up is still in the customer's balance; "
        "20.00 USD was spent on inv_7."
    )
    kit.refund("pay_1", usd("10.00"))
    kit.refund("pay_1", usd("20.00"))
    with pytest.raises(RefundNotAllowed):
        kit.refund("pay_1", usd("0.01"))
    assert kit.balance("cus_1").totals == {"USD": usd("0.00")}


def test_balance_refund_never_exceeds_the_charge_even_with_more_balance(kit: RefundKit) -> None:
    record(kit, destination=Destination.CUSTOMER_BALANCE)
    record(kit, "pay_2", "30.00", destination=Destination.CUSTOMER_BALANCE)
    assert kit.balance("cus_1").totals == {"USD": usd("80.00")}
    q = kit.quote("pay_1")
    assert q.max_amount == usd("50.00")
    with pytest.raises(RefundNotAllowed) as info:
        kit.refund("pay_1", usd("60.00"))
    assert info.value.code == "insufficient_refundable_balance"


class CapAtTen:
    """A plugin that adds a policy rule through the refundkit_policy_rules hook."""

    @staticmethod
    def rule(ctx: PolicyContext) -> Sequence[Limit]:
        ten = Money(1000, ctx.payment.amount.currency)
        return [Limit("support_cap", ten, "Support may refund at most 10.00 USD here.")]

    @hookimpl
    def refundkit_policy_rules(self) -> Sequence[object]:
        return [self.rule]


def test_plugin_policy_rule_binds_like_a_builtin(tmp_path: Path, clock: FakeClock) -> None:
    kit = open_kit(tmp_path, clock, plugins=[CapAtTen()])
    record(kit)
    q = kit.quote("pay_1")
    assert q.max_amount == usd("10.00")
    assert [lim.code for lim in q.limits] == ["support_cap"]
    with pytest.raises(RefundNotAllowed) as info:
        kit.refund("pay_1", usd("10.01"))
    assert "Support may refund at most" in str(info.value)
    assert kit.refund("pay_1").amount == usd("10.00")
    kit.close()


def test_quote_explains_itself_in_plain_words(kit: RefundKit) -> None:
    record(kit)
    kit.refund("pay_1", usd("20.00"))
    assert kit.quote("pay_1").explain() == (
        "Refundable: up to 30.00 USD. 20.00 USD of this 50.00 USD payment is already "
        "refunded or in flight; at most 30.00 USD remains."
    )

"""Issue 15 for Braintree: every ``braintree.Transaction.Status`` is mapped (the walk reads the
SDK's own list), the four statuses that were not are applied by a kit as they should, and a
5xx is held whatever its body says (R-2.4)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from _braintree_build_statuses import SERVER_ERROR_PLAN, SERVER_ERRORS, STATUS_PLANS
from _braintree_support import BRAINTREE_VCR, TEST_CONFIG, normalise_kit_ids
from refundkit_braintree import STATUS_TABLE, BraintreeGateway, StatusOutcome, server_error_body
from refundkit_braintree._gateway import import_braintree

from refundkit import GatewayError, Money, Refund, RefundKit, RefundStatus
from refundkit._gateway import DEFINITE_REFUSALS  # tests may reach in; plugins may not


def sdk_statuses() -> dict[str, str]:
    """``braintree.Transaction.Status``: constant name → status string."""
    status = import_braintree().Transaction.Status
    return {k: v for k, v in vars(status).items() if not k.startswith("_") and isinstance(v, str)}


def test_the_sdk_list_is_read() -> None:
    assert len(sdk_statuses()) >= 14
    assert "settlement_confirmed" in sdk_statuses().values()


@pytest.mark.parametrize("name", sorted(sdk_statuses()))
def test_every_transaction_status_of_the_sdk_is_mapped(name: str) -> None:
    """A status a new SDK adds fails here until STATUS_TABLE says what it means for a
    credit."""
    status = sdk_statuses()[name]
    assert STATUS_TABLE.get(status) in get_args(StatusOutcome), status
    assert STATUS_TABLE[status] != "unknown"


def test_the_table_holds_nothing_the_sdk_does_not_list() -> None:
    assert set(STATUS_TABLE) == set(sdk_statuses().values())
    assert BraintreeGateway.STATUS_TABLE is STATUS_TABLE
    # A credit may still be authorizing: the gateway says its outcome can come later.
    assert BraintreeGateway.capabilities.async_outcome


# --- through a kit ------------------------------------------------------------------------------

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> list[datetime]:
    return [T0]


@pytest.fixture
def kit(tmp_path: Path, clock: list[datetime]) -> Iterator[RefundKit]:
    opened = RefundKit.open(
        f"sqlite:///{tmp_path / 'kit.db'}",
        autoload=False,
        plugins=[__import__("refundkit_braintree")],
        gateways={"braintree": dict(TEST_CONFIG)},
        clock=lambda: clock[0],
        retry_backoff=0,
        submit_retries=0,  # a refusal would be final at once: nothing hides it
    )
    yield opened
    opened.close()


def _refund_or_refusal(kit: RefundKit, amount: Money) -> Refund | None:
    """The refund a kit made, also when a refusal was raised with it."""
    try:
        return kit.refund("pay_1", amount)
    except GatewayError as exc:
        return exc.refund


#: What the kit must make of a credit answered in each of the four statuses: the refund's
#: status, the amount still refundable on the 40.00 sale, and the events.
EXPECTED = {
    "settlement_confirmed": (RefundStatus.SUCCEEDED, 3000, ["charge.refunded"]),
    "settlement_failed": (RefundStatus.FAILED, 4000, ["refund.failed"]),
    "authorizing": (RefundStatus.PENDING, 3000, ["refund.pending"]),
    "authorization_expired": (RefundStatus.FAILED, 4000, ["refund.failed"]),
}


@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_a_credit_in_each_new_status_is_applied_as_it_means(
    kit: RefundKit, clock: list[datetime], status: str
) -> None:
    """Issue 15: settlement_confirmed is a success; settlement_failed and
    authorization_expired mean no money went back (failed, released); authorizing is not
    decided yet (pending, held), and recovery's lookup later finds it submitted."""
    plan = STATUS_PLANS[status]
    with BRAINTREE_VCR.use_cassette(
        f"credit_{status}.yaml", before_record_request=normalise_kit_ids
    ) as cass:
        kit.record_payment(
            id="pay_1",
            customer_id="cus_1",
            amount=plan.amount,
            gateway="braintree",
            gateway_payment_id=plan.sale_id,
        )
        refund = _refund_or_refusal(kit, plan.refund_amount)
        assert refund is not None
        expected, left, events = EXPECTED[status]
        assert refund.status is expected
        assert kit.quote("pay_1").max_amount == Money(left, "USD")
        assert [e.type for e in kit.events()] == events
        if status == "authorizing":
            clock[0] += timedelta(hours=1)
            (found,) = kit.recover(force=True).resolved
            assert found.status is RefundStatus.SUCCEEDED
            assert [e.type for e in kit.events()] == [*events, "charge.refunded"]
        assert cass.all_played


@pytest.mark.parametrize("name", sorted(SERVER_ERRORS))
def test_a_5xx_leaves_the_refund_unknown_and_held(kit: RefundKit, name: str) -> None:
    """R-2.4: a 500 whose body carries validation code 91506, or a 503 (which used to read as
    'unavailable', a definite refusal), may hide an applied credit: unknown, amount held."""
    plan = SERVER_ERROR_PLAN
    with BRAINTREE_VCR.use_cassette(f"{name}.yaml", before_record_request=normalise_kit_ids) as c:
        kit.record_payment(
            id="pay_1",
            customer_id="cus_1",
            amount=plan.amount,
            gateway="braintree",
            gateway_payment_id=plan.sale_id,
        )
        refund = _refund_or_refusal(kit, plan.refund_amount)
        assert c.all_played
    assert refund is not None
    assert refund.status is RefundStatus.UNKNOWN
    assert kit.quote("pay_1").max_amount == Money(3000, "USD")
    assert kit.journal(refund.id) == []
    assert [e.type for e in kit.events()] == []


@pytest.mark.parametrize("name", ["ServerError", "ServiceUnavailableError", "GatewayTimeoutError"])
def test_every_5xx_exception_is_held(name: str) -> None:
    from refundkit_braintree import _errors

    error = _errors.from_exception(getattr(import_braintree().exceptions, name)())
    assert not isinstance(error, DEFINITE_REFUSALS)


def test_server_error_body() -> None:
    assert server_error_body(503) == b""
    assert b"<code>91506</code>" in server_error_body(500, "91506")
    with pytest.raises(ValueError, match="5xx"):
        server_error_body(422, "91506")

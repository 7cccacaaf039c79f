"""Issue 14, points 9 and 10: bad input anywhere is a typed ``RefundkitError`` with a stable
code, and nothing is written; a refused payment tells its gateway nothing.

Each case here raised an untyped error (or returned the wrong thing) before: ``RefundKit.open``
on a bad path, an unreachable server or a locked file; ``refunds(status="bogus")``;
``events(limit="x")`` and ``limit=-1``; ``execute("plan")``; ``webhooks.verify(None, ...)``;
a top-up refused for room after its charge was registered at the gateway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from refundkit import (
    Destination,
    GatewayPaymentNotFound,
    InvalidMoney,
    Money,
    PaymentExists,
    RefundKit,
    RefundkitError,
)
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import record, row_counts, usd

E = TypeVar("E", bound=RefundkitError)
BALANCE = Destination.CUSTOMER_BALANCE
MAX = 2**63 - 1


def one_line(exc: RefundkitError) -> None:
    text = str(exc)
    assert text
    assert text.splitlines() == [text], text


@pytest.fixture
def gateway_calls(sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every call the kit makes on its sandbox gateway that tells it something."""
    counts: Counter[str] = Counter()
    for name in ("register_payment", "refund"):
        original: Callable[..., Any] = getattr(sandbox, name)

        def spy(*a: Any, _name: str = name, _fn: Callable[..., Any] = original, **kw: Any) -> Any:
            counts[_name] += 1
            return _fn(*a, **kw)

        monkeypatch.setattr(sandbox, name, spy)
    return counts


def refused(kit: RefundKit, error: type[E], call: Callable[[], object]) -> E:
    """``call`` raises ``error``, one line, and no table gained or lost a row."""
    before = row_counts(kit)
    with pytest.raises(error) as info:
        call()
    one_line(info.value)
    assert row_counts(kit) == before, "a refused call wrote something"
    return info.value


# --- point 10: a refused payment tells its gateway nothing -------------------------------------


def test_a_top_up_refused_for_room_registers_no_charge_at_the_gateway(
    kit: RefundKit, sandbox: SandboxGateway, gateway_calls: Counter[str]
) -> None:
    """The balance-room check used to run after ``register_payment``: the refused top-up left
    a charge at the gateway. Now every refusal comes first."""
    kit.record_payment(
        id="pay_1", customer_id="cus_1", amount=Money(MAX, "USD"), gateway="sandbox",
        gateway_payment_id="sbx_1", destination=BALANCE,
    )  # fmt: skip
    gateway_calls.clear()
    refused(kit, InvalidMoney, lambda: kit.record_payment(
        id="pay_2", customer_id="cus_1", amount=Money(1, "USD"), gateway="sandbox",
        gateway_payment_id="sbx_2", destination=BALANCE,
    ))  # fmt: skip
    assert gateway_calls == Counter()
    with pytest.raises(GatewayPaymentNotFound):
        sandbox.fetch_payment("sbx_2")


def test_a_gateway_payment_recorded_under_another_id_is_refused_before_the_gateway(
    kit: RefundKit, gateway_calls: Counter[str]
) -> None:
    record(kit, "pay_1")
    gateway_calls.clear()
    err = refused(kit, PaymentExists, lambda: kit.record_payment(
        id="pay_other", customer_id="cus_1", amount=usd("50.00"), gateway="sandbox",
        gateway_payment_id="sbx_ch_pay_1",
    ))  # fmt: skip
    assert "another payment id" in str(err)
    assert gateway_calls == Counter()

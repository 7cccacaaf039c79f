"""Shared by the dashboard's route tests and browser tests: users, settings, seeded payments."""

from __future__ import annotations

import functools
import re

from refundkit import Card, Destination, Money, RefundKit
from refundkit.dashboard import DashboardSettings, User, hash_password

#: name -> (role, password)
USERS = {
    "ann": ("billing_admin", "ann-password-1"),
    "bea": ("billing_admin", "bea-password-2"),
    "sam": ("support", "sam-password-3"),
    "vic": ("viewer", "vic-password-4"),
}
SUPPORT_LIMIT = Money.parse("20.00", "USD")

INVOICE_PAYMENT = "pay_inv_1"
BALANCE_PAYMENT = "pay_bal_1"
CUSTOMER = "cus_ada"


@functools.cache
def settings() -> DashboardSettings:
    """Hashed once per test session (argon2 is slow on purpose)."""
    users = {n: User(n, role, hash_password(pw)) for n, (role, pw) in USERS.items()}
    return DashboardSettings(
        secret_key="k" * 48, users=users, support_limits={"USD": SUPPORT_LIMIT}
    )


def seed(kit: RefundKit) -> None:
    """An invoice payment and a customer-balance top-up (15.00 of it spent) of one customer."""
    kit.record_payment(
        id=INVOICE_PAYMENT,
        customer_id=CUSTOMER,
        amount=Money.parse("120.00", "USD"),
        gateway="sandbox",
        gateway_payment_id="sbx_ch_inv_1",
        destination=Destination.INVOICE,
        invoice_id="inv_1001",
        card=Card(brand="visa", last4="4242", exp_month=12, exp_year=2030),
    )
    kit.record_payment(
        id=BALANCE_PAYMENT,
        customer_id=CUSTOMER,
        amount=Money.parse("50.00", "USD"),
        gateway="sandbox",
        gateway_payment_id="sbx_ch_bal_1",
        destination=Destination.CUSTOMER_BALANCE,
        card=Card(brand="mastercard", last4="4444", exp_month=3, exp_year=2029),
    )
    kit.redeem_balance(CUSTOMER, Money.parse("15.00", "USD"), reference="inv_1003")


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)

"""Customer-balance values: lots with their funding payments, a customer's balance, an invoice's
refundable balance. Values only; the store reads them and the services compute them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from ._model import Payment
from ._money import Money


@attrs.frozen
class BalanceLot:
    """A piece of customer balance with its provenance: the payment that funded it."""

    id: str
    kind: str  # "top_up" or "credit"
    amount: Money
    remaining: Money
    funding_payment_id: str | None
    created_at: datetime

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
    """A customer's balance per currency, lot by lot with the payments that funded it."""

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

    @classmethod
    def of(cls, invoice_id: str, payments: tuple[Payment, ...]) -> InvoiceBalance:
        """The invoice's balance: the sums over its payments (one currency)."""
        zero = Money.zero(payments[0].amount.currency)

        def total(values: list[Money]) -> Money:
            return sum(values, zero)

        return cls(
            invoice_id=invoice_id,
            total=total([p.amount for p in payments]),
            refundable=total([p.refundable for p in payments]),
            refunded=total([p.refunded or zero for p in payments]),
            credited=total([p.credited or zero for p in payments]),
            payments=payments,
        )

"""The sandbox gateway's own conformance harness: scripted outcomes on fresh charges."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from .._gateway import GatewayRefundResult
from .._model import Card, Destination, Payment
from .._money import Money
from ..gateways.sandbox import SandboxGateway
from .conformance import SCENARIOS, ConformanceHarness, Scenario, WebhookDelivery, tamper_webhook

#: Per scenario: (currency, payment amount, refund amount, scripted outcome or None).
#: The outcome is scripted for the scenario's charge only, so magic cents never decide.
_PLAN: Final[Mapping[str, tuple[str, int, int, str | None]]] = {
    "full_refund": ("USD", 5000, 5000, "succeed"),
    "partial_refund": ("EUR", 5000, 1250, "succeed"),
    # "succeed" is scripted so that only the charge's balance can refuse it.
    "over_refund": ("JPY", 5000, 5001, "succeed"),
    "idempotent_retry": ("USD", 5000, 1500, "succeed"),
    "unknown_then_lookup": ("KWD", 25000, 10000, "timeout_after"),
    "webhook_succeeded": ("USD", 3000, 1000, "pending_succeed"),
    "webhook_failed": ("GBP", 3000, 1000, "pending_fail"),
    "card_masking": ("USD", 1000, 1000, None),
}
assert set(_PLAN) == set(SCENARIOS)

#: The card of every conformance charge: a test Visa, with its BIN so first6 is exercised.
CONFORMANCE_CARD: Final = Card(
    brand="visa", last4="4242", exp_month=12, exp_year=2030, first6="424242"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SandboxHarness(ConformanceHarness):
    """Runs the conformance suite against ``SandboxGateway`` in ``directory`` (created if missing).

    Each scenario registers a fresh charge (``register_payment``) and scripts its outcome on
    that charge: ``timeout_after`` for ``unknown_then_lookup``, ``pending_succeed`` and
    ``pending_fail`` for the webhook scenarios, whose webhook comes from ``settle_pending``.
    ``gateway_class`` takes a ``SandboxGateway`` subclass (e.g. a deliberately broken one).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        gateway_class: type[SandboxGateway] = SandboxGateway,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        os.makedirs(directory, exist_ok=True)
        config: dict[str, Any] = {
            "path": os.path.join(os.fspath(directory), "conformance-sandbox.db")
        }
        if clock is not None:
            config["clock"] = clock
        self._clock = clock or _utcnow
        self._gateway = gateway_class(config)

    @property
    def gateway(self) -> SandboxGateway:
        return self._gateway

    @contextlib.contextmanager
    def scenario(self, name: str) -> Iterator[Scenario]:
        try:
            currency, amount, refund_amount, outcome = _PLAN[name]
        except KeyError:
            raise ValueError(f"unknown conformance scenario {name!r}") from None
        token = secrets.token_hex(6)
        charge = f"sbx_ch_{name}_{token}"
        payment = Payment(
            id=f"pay_{name}_{token}",
            customer_id="cus_conformance",
            amount=Money(amount, currency),
            gateway=self._gateway.name,
            gateway_payment_id=charge,
            destination=Destination.INVOICE,
            captured_at=self._clock(),
            card=CONFORMANCE_CARD,
        )
        self._gateway.register_payment(payment)
        if outcome is not None:
            self._gateway.script(outcome, charge=charge)
        yield Scenario(
            gateway_payment_id=charge,
            payment_id=payment.id,
            amount=payment.amount,
            refund_amount=Money(refund_amount, currency),
            refund_id=f"rf_{name}_{token}",
            idempotency_key=f"conformance-{name}-{token}",
        )

    def webhooks(
        self, scenario: Scenario, result: GatewayRefundResult
    ) -> tuple[WebhookDelivery, WebhookDelivery]:
        """Settle the pending refund; its webhook, and that webhook with one byte changed."""
        if result.gateway_refund_id is None:
            raise ValueError(f"no gateway refund id to settle in {result!r}")
        deliveries = self._gateway.settle_pending(result.gateway_refund_id)
        if len(deliveries) != 1:
            raise AssertionError(
                f"settling refund {result.gateway_refund_id!r} sent {len(deliveries)} webhooks,"
                f" expected 1 (was it pending? {result!r})"
            )
        return deliveries[0], tamper_webhook(deliveries[0])

    def close(self) -> None:
        self._gateway.close()

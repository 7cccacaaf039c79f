"""The sandbox gateway's own conformance harness: scripted outcomes on fresh charges, and the
sandbox's declarations for the gateway-truth scenarios (its status table, its error bodies,
HTTP error answers scripted on a fresh charge, and refunds' lives announced by webhook)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from .._gateway import GatewayRefundRequest, GatewayRefundResult
from .._model import Card, Destination, Payment
from .._money import Money
from ..gateways.sandbox import ERROR_CODES, STATUSES, SandboxGateway
from ._truth import Report, StatusTable, WebhookHistory
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

#: Refunds' lives for the webhook-orders scenario: (scripted outcome, what happens next:
#: "settle" the pending refund, then "reverse" it or "fail" it after its success).
_LIVES: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "succeeded": ("pending_succeed", ("settle",)),
    "failed": ("pending_fail", ("settle",)),
    "succeeded_then_reversed": ("pending_succeed", ("settle", "reverse")),
    "succeeded_then_failed": ("pending_succeed", ("settle", "fail")),
}

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

    def _charge(self, name: str, amount: Money) -> tuple[str, str]:
        """A fresh charge of ``amount`` at the sandbox: (charge id, token)."""
        token = secrets.token_hex(6)
        payment = Payment(
            id=f"pay_{name}_{token}",
            customer_id="cus_conformance",
            amount=amount,
            gateway=self._gateway.name,
            gateway_payment_id=f"sbx_ch_{name}_{token}",
            destination=Destination.INVOICE,
            captured_at=self._clock(),
            card=CONFORMANCE_CARD,
        )
        self._gateway.register_payment(payment)
        return payment.gateway_payment_id, token

    def _request(self, name: str, amount: Money) -> GatewayRefundRequest:
        charge, token = self._charge(name, amount)
        return GatewayRefundRequest(
            refund_id=f"rf_{name}_{token}",
            payment_id=f"pay_{name}_{token}",
            gateway_payment_id=charge,
            amount=amount,
            idempotency_key=f"conformance-{name}-{token}",
        )

    # --- gateway truth -------------------------------------------------------------------

    error_codes: Collection[str] = ERROR_CODES

    def status_table(self) -> StatusTable:
        """What the sandbox's books hold a refund in, and its gateway class's table."""
        return StatusTable(statuses=STATUSES, table=type(self._gateway).REFUND_STATUSES)

    def error_body(self, code: str, message: str) -> bytes:
        return SandboxGateway.error_body(code, message)

    @contextlib.contextmanager
    def server_error(self, status: int, body: bytes) -> Iterator[GatewayRefundRequest]:
        """A fresh charge whose next refund is made, then answered ``status`` with ``body``
        (the worst case: a kit that released it would let the money go twice)."""
        request = self._request("server_error", Money(1000, "USD"))
        self._gateway.script_http_error(
            status, body, applied=True, charge=request.gateway_payment_id
        )
        yield request

    @contextlib.contextmanager
    def webhook_histories(self) -> Iterator[Sequence[WebhookHistory]]:
        """Each life in ``_LIVES`` on its own refund: its pending webhook (``announce``), then
        the one ``settle_pending`` sends, then the one ``reverse`` or ``fail_after_success``
        sends."""
        yield [self._history(name, *life) for name, life in _LIVES.items()]

    def _history(self, name: str, outcome: str, steps: Sequence[str]) -> WebhookHistory:
        request = self._request(f"history_{name}", Money(1000, "USD"))
        self._gateway.script(outcome, charge=request.gateway_payment_id)
        made = self._gateway.refund(request)
        gateway_refund_id = made.gateway_refund_id
        if made.status != "pending" or gateway_refund_id is None:
            raise AssertionError(f"harness error: the {outcome} refund is {made!r}")
        reports = [Report(self._gateway.announce(gateway_refund_id), "pending")]
        for step in steps:
            if step == "settle":
                [delivery] = self._gateway.settle_pending(gateway_refund_id)
            elif step == "reverse":
                delivery = self._gateway.reverse(gateway_refund_id)
            else:
                delivery = self._gateway.fail_after_success(gateway_refund_id)
            status = self._gateway.lookup_refund(request)
            assert status is not None
            reports.append(Report(delivery, status.status))
        return WebhookHistory(name, request.amount, gateway_refund_id, request.refund_id, reports)

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

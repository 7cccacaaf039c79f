"""The gateway pool: one configured instance per gateway name, made on first use, and the
request a recorded refund sends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import _store as st
from .._gateway import Gateway, GatewayRefundRequest
from .._model import Payment, Refund
from .._plugins import PluginManager


class GatewayPool:
    """Gateway instances by name, configured from the kit's ``gateways`` mapping."""

    def __init__(
        self,
        plugins: PluginManager,
        config: Mapping[str, Mapping[str, Any]] | None,
        store: st.Store,
    ) -> None:
        self._plugins = plugins
        self._config = {k: dict(v) for k, v in (config or {}).items()}
        self._store = store
        self._made: dict[str, Gateway] = {}

    def get(self, name: str, clock: Callable[[], datetime]) -> Gateway:
        """The configured gateway instance (created on first use, on the kit's clock)."""
        gw = self._made.get(name)
        if gw is None:
            cls = self._plugins.gateways.get(name)
            gw = cls(self._defaults(name, clock) | self._config.get(name, {}))
            self._made[name] = gw
        return gw

    def configured(self, name: str) -> bool:
        """Whether the kit was given a configuration for ``name`` (``[gateways.<name>]``)."""
        return name in self._config

    def _defaults(self, name: str, clock: Callable[[], datetime]) -> dict[str, Any]:
        if name != "sandbox":
            return {}
        # The sandbox keeps its state next to the store, like a remote gateway would elsewhere.
        store = self._store
        db = store.url.database if store.is_sqlite else None
        path = (
            ":memory:"
            if not db or db == ":memory:"
            else str(Path(db).with_suffix("")) + (".sandbox.db")
        )
        return {"path": path, "clock": clock}

    def close(self) -> None:
        for gw in self._made.values():
            gw.close()
        self._made.clear()


def refund_request(refund: Refund, payment: Payment, void: bool) -> GatewayRefundRequest:
    """What the gateway is sent for ``refund`` (the same on every retry and re-send)."""
    return GatewayRefundRequest(
        refund_id=refund.id,
        payment_id=payment.id,
        gateway_payment_id=payment.gateway_payment_id,
        amount=refund.amount,
        idempotency_key=refund.gateway_idempotency_key,
        reason=refund.reason,
        void=void,
    )

"""What every service shares: the store, the plugins, the gateway pool, the policy, the clock,
the retry settings and the crash-point hook. The facade makes one; services take it first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from .. import _store as st
from .._gateway import Gateway
from .._plugins import PluginManager
from .._policy import PolicyConfig
from .gateways import GatewayPool

if TYPE_CHECKING:
    from ..hookspecs import PolicyRule


def _no_checkpoint(_name: str) -> None:
    return None


def _steps(schedule: Sequence[timedelta]) -> tuple[timedelta, ...]:
    return tuple(schedule)


@attrs.define(eq=False)
class Runtime:
    store: st.Store
    plugins: PluginManager
    gateways: GatewayPool
    policy: PolicyConfig
    clock: Callable[[], datetime]
    submit_retries: int
    retry_backoff: float
    in_flight_timeout: timedelta
    retry_schedule: tuple[timedelta, ...] = attrs.field(converter=_steps)
    #: How many due refunds one recovery worker claims at a time.
    recovery_batch: int = 20
    #: Named crash points for tests (R-2.2): called with "reserved", "submitted",
    #: "gateway_returned", "confirmed" (before the outbox relay) and "published" (the relay
    #: handed events to listeners and has not marked them dispatched yet).
    checkpoint: Callable[[str], None] = _no_checkpoint
    rules: Sequence[PolicyRule] = attrs.field(init=False)
    listeners: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.rules = self.plugins.policy_rules()
        self.listeners = self.plugins.has_event_listeners()

    def gateway(self, name: str) -> Gateway:
        return self.gateways.get(name, self.clock)

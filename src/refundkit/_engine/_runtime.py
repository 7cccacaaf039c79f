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
    #: handed events to listeners and has not marked them dispatched yet); also "decided" (a
    #: person's decision checked, not yet written), where race tests pause.
    checkpoint: Callable[[str], None] = _no_checkpoint
    #: The clock an in-flight refund is stamped with and recovery judges it stale by: None is
    #: the database's own (DESIGN "Fencing": never a comparison of two machines' clocks).
    #: Tests whose fake ``clock`` stands for time passing everywhere set it to that clock.
    db_clock: Callable[[], datetime] | None = None
    rules: Sequence[PolicyRule] = attrs.field(init=False)
    listeners: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.rules = self.plugins.policy_rules()
        self.listeners = self.plugins.has_event_listeners()

    def db_stamp(self) -> datetime | None:
        """What an in-flight refund's ``updated_at`` is written as (None: the database's now,
        taken by the statement itself, so the hot path makes no extra round trip)."""
        return self.db_clock() if self.db_clock is not None else None

    def db_now(self, tx: st.Tx) -> datetime:
        """The database's now, read in ``tx``."""
        return self.db_clock() if self.db_clock is not None else st.db_now(tx)

    def in_flight_stale(self, updated_at: datetime, db_now: datetime) -> bool:
        """Was an in-flight refund last touched longer than ``in_flight_timeout`` ago, by the
        database's clock? Its worker is then taken for dead (and fenced off: docs/workers.md)."""
        return db_now - updated_at >= self.in_flight_timeout

    def gateway(self, name: str) -> Gateway:
        return self.gateways.get(name, self.clock)

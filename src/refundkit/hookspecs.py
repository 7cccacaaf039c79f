"""The hooks refundkit plugins implement. This module is the plugin author's reference.

A plugin is a module (or object) with functions marked ``@refundkit.hookimpl`` whose names are
hook names below. Distributions announce plugins under the ``refundkit`` entry-point group::

    [project.entry-points.refundkit]
    stripe = "refundkit_stripe"

The entry-point name is also what ``REFUNDKIT_DISABLED_PLUGINS`` takes to block a plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._model import Limit
    from ._policy import PolicyContext
    from ._registry import GatewayRegistry

hookspec = pluggy.HookspecMarker("refundkit")
hookimpl = pluggy.HookimplMarker("refundkit")

#: A policy rule: given the facts about one payment, the limits it imposes (may be empty).
PolicyRule = Callable[["PolicyContext"], "Sequence[Limit]"]


@hookspec(historic=True)
def refundkit_register_gateways(register: GatewayRegistry) -> None:
    """Announce gateway classes by calling ``register(GatewayClass)``.

    :param register: the kit's gateway registry; it refuses a second gateway with a name
        already taken.

    .. versionadded:: 0.1
    """


@hookspec
def refundkit_policy_rules() -> Sequence[PolicyRule]:
    """Return extra policy rules. Each rule takes a ``PolicyContext`` and returns the
    ``Limit`` objects that bind (an empty sequence when the rule does not restrict).

    A limit's ``amount`` is the most that rule allows; ``Money.zero`` blocks the refund.
    Rules are pure: no I/O, no clock other than ``context.now``.

    .. versionadded:: 0.1
    """
    return ()


@hookspec
def refundkit_on_event(event: dict[str, Any]) -> None:
    """Receive every event (``charge.refunded``, ``refund.pending``, ``refund.failed``,
    ``refund.reversed``, ``refund.external``) after the transaction that wrote it committed.

    Delivery is at least once: dedupe by ``event["id"]``. An exception raised here is logged
    and the event is offered again on the next dispatch; it never undoes the refund.

    :param event: the event exactly as stored in the outbox (``id``, ``type``, ``created``,
        ``data``).

    .. versionadded:: 0.1
    """

"""What a gateway's answer means for a refund: one table from outcome to ``Transition``.

A result moves the refund to the status the gateway reports (an amount other than the one
asked goes to a person); ``reversed`` for a refund not yet succeeded proves it was made and
came back, so both moves are booked. A failed call releases the money only when the answer
proves nothing was refunded (``DEFINITE_REFUSALS``, R-2.4); anything else holds the refund as
``unknown`` for recovery to look up (``releases`` says which, for any plugin).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .._errors import GatewayRateLimited, GatewayTimeout, GatewayUnavailable, RefundkitError
from .._gateway import DEFINITE_REFUSALS, GatewayRefundResult
from .._model import TRANSITIONS, Payment, Refund, RefundStatus
from ._runtime import Runtime
from .transitions import Transition, apply

S = RefundStatus


def of_result(refund: Refund, result: GatewayRefundResult) -> Transition:
    """The move a gateway's report of ``refund`` asks for."""
    if result.amount is not None and result.amount != refund.amount:
        # The gateway refunded something else than we asked: a person must look (DESIGN).
        return Transition(
            S.MANUAL_REVIEW,
            gateway_refund_id=result.gateway_refund_id,
            failure_code="amount_mismatch",
            failure_message=f"gateway reported {result.amount}, we asked {refund.amount}",
        )
    return Transition(
        S(result.status),
        gateway_refund_id=result.gateway_refund_id,
        failure_code=result.failure_code,
        failure_message=result.failure_message,
        # The gateway says it failed: after a success that is a reversal.
        reverses=True,
    )


def apply_result(
    rt: Runtime, refund: Refund, payment: Payment, result: GatewayRefundResult
) -> Refund:
    """Book what the gateway reports ``refund`` is now, through the one bookkeeping path."""
    move = of_result(refund, result)
    if move.to is S.REVERSED and refund.status in TRANSITIONS[S.SUCCEEDED]:
        # A reversal that overtook its success (or reached a refund held unknown): the
        # refund was made and the money came back. Book both, as delivered in order, so every
        # order of the gateway's reports ends the same.
        made = attrs.evolve(move, to=S.SUCCEEDED, failure_code=None, failure_message=None)
        refund = apply(rt, refund, payment, made)
    return apply(rt, refund, payment, move)


def unknown(rt: Runtime, why: str) -> Transition:
    """Held: the gateway may or may not have refunded; recovery looks it up on schedule."""
    first = rt.clock() + rt.retry_schedule[0] if rt.retry_schedule else None
    return Transition(S.UNKNOWN, failure_code="timeout", failure_message=why, next_attempt_at=first)


_Kinds = type[Exception] | tuple[type[Exception], ...]
_Outcome = Callable[[Runtime, Exception, bool], Transition]


def _refused(rt: Runtime, exc: Exception, keep_key: bool) -> Transition:
    # Certainly not refunded: the reservation is released.
    return Transition(
        S.FAILED,
        failure_code=getattr(exc, "gateway_code", None) or getattr(exc, "code", None),
        failure_message=str(exc),
        # Nothing reached the gateway's books: the caller may retry with the same key (not a
        # plan's leg: executing a plan again must change nothing).
        forget_key=not keep_key and isinstance(exc, GatewayRateLimited | GatewayUnavailable),
    )


def _held(rt: Runtime, exc: Exception, keep_key: bool) -> Transition:
    return unknown(rt, str(exc))


def _plugin_bug(rt: Runtime, exc: Exception, keep_key: bool) -> Transition:
    # We cannot know whether the refund happened, so it is held as unknown.
    return unknown(rt, f"{type(exc).__name__}: {exc}")


#: A failed gateway call, first match wins. Any other error (a plain GatewayError included)
#: may hide an applied refund, so it is held.
ON_ERROR: tuple[
    tuple[
        type[Exception] | tuple[type[Exception], ...],
        Callable[[Runtime, Exception, bool], Transition],
    ],
    ...,
] = (
    (GatewayTimeout, _held),
    (DEFINITE_REFUSALS, _refused),
    (RefundkitError, _held),
    (Exception, _plugin_bug),
)


def _on_error(exc: Exception) -> _Outcome:
    for kinds, outcome in ON_ERROR:
        if isinstance(exc, kinds):
            return outcome
    raise AssertionError("unreachable: Exception matches every error")  # pragma: no cover


def of_error(rt: Runtime, exc: Exception, *, keep_key: bool) -> Transition:
    """The move a failed gateway call asks for (``ON_ERROR``)."""
    return _on_error(exc)(rt, exc, keep_key)


def releases(exc: Exception) -> bool:
    """Does this error from a refund call release the refund's amount (a definite refusal)?

    The one rule for every plugin: only an answer that proves the gateway did not act
    releases a reservation; the conformance suite asks this of what a plugin raises.
    """
    return _on_error(exc) is _refused

"""The application layer under the ``RefundKit`` facade: one module per use-case family.

Every service is a module of functions that take the shared ``Runtime`` first; none imports
the facade. Reading down the refund path: ``refunds`` (reserve, submit) → ``outcomes`` (what
a gateway's answer means) → ``transitions`` (the one bookkeeping path) → ``outbox``.

- ``payments``: record, read, quote, settlement and disputes from the gateway, invoices
- ``refunds``: the refund flow (three transactions, R-2.1)
- ``recovery``: unknown outcomes looked up on a schedule; ``review``: a person's decision
- ``reconcile``: a gateway's books against ours; ``inbound``: gateway webhooks
- ``balances``: lots, redemptions, credits; ``planning``: plans and their execution
- ``facts``: what the policy reads; ``gateways``: the gateway pool
"""

from ._runtime import Runtime

__all__ = ["Runtime"]

"""The HTTP transport of the Stripe client: requests (which vcrpy replays), explicit timeouts,
and retries that reuse the request's Idempotency-Key.

Imported on first use only: it imports the Stripe SDK.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import stripe

#: Longest wait between two retries, in seconds.
MAX_RETRY_DELAY = 5.0


class RetryingRequestsClient(stripe.RequestsClient):
    """``stripe.RequestsClient`` that also retries a 429 ``lock_timeout``.

    The SDK retries 409 and 5xx (and what ``Stripe-Should-Retry`` asks for) inside one
    ``create`` call, resending the same headers, so the same Idempotency-Key. A 429 whose
    error code is ``lock_timeout`` means another request held the charge: nothing was applied,
    so it is retried the same way. A plain 429 ``rate_limit`` is not retried here; the kit
    backs off (``GatewayRateLimited``). ``retry_delay`` is the first wait (doubling, at most
    ``MAX_RETRY_DELAY``), injectable so tests never sleep.
    """

    def __init__(self, *, timeout: float, retry_delay: float, **kwargs: Any) -> None:
        super().__init__(timeout=timeout, **kwargs)
        self._retry_delay = retry_delay

    def _should_retry(
        self,
        response: tuple[Any, int, Mapping[str, str] | None] | None,
        api_connection_error: stripe.APIConnectionError | None,
        num_retries: int,
        max_network_retries: int | None,
    ) -> bool:
        if (
            response is not None
            and response[1] == 429
            and num_retries < (max_network_retries or 0)
            and error_code(response[0]) == "lock_timeout"
        ):
            return True
        return bool(
            super()._should_retry(response, api_connection_error, num_retries, max_network_retries)
        )

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return float(min(self._retry_delay * 2 ** (num_retries - 1), MAX_RETRY_DELAY))


def error_code(body: Any) -> str | None:
    """``error.code`` of a Stripe error body (bytes or str), or None."""
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None

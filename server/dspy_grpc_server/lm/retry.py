"""When and how long to wait before retrying a failed provider call."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..core.errors import DspyGrpcError, ResourceExhausted, Unavailable


def is_retryable(error: DspyGrpcError) -> bool:
    """Transient provider failures: unreachable / 5xx (:class:`Unavailable`) and rate limits."""

    return isinstance(error, (Unavailable, ResourceExhausted))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter (half fixed, half random), capped; a provider's ``Retry-After`` takes precedence.

    ``max_retries`` is the number of attempts after the first one.
    """

    max_retries: int = 2
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delay_before_retry(self, retry_number: int, error: DspyGrpcError) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based) after ``error``."""

        if error.retry_after is not None:
            return max(0.0, error.retry_after)
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (retry_number - 1)))
        return ceiling / 2 + random.uniform(0.0, ceiling / 2)

"""When and how long to wait before retrying a failed provider call."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..core.errors import DeadlineExceeded, DspyGrpcError, ProviderError, ResourceExhausted, Unavailable

#: Reasons that say "this deployment cannot take calls now" without it having been called.
REFUSALS = ("CIRCUIT_OPEN", "LM_CAPACITY_EXHAUSTED", "WORKER_UNAVAILABLE")


def is_retryable(error: DspyGrpcError) -> bool:
    """Transient provider failures worth another attempt on the same deployment: unreachable / 5xx
    (:class:`Unavailable`), provider rate limits (429) and provider timeouts. Refusals by our own
    breaker or limiter are not (the router moves on to another deployment instead)."""

    if error.reason in REFUSALS:
        return False
    if isinstance(error, DeadlineExceeded):
        return error.reason == "PROVIDER_TIMEOUT"
    return isinstance(error, (Unavailable, ResourceExhausted))


def can_fail_over(error: DspyGrpcError) -> bool:
    """Whether another deployment (or a fallback model) might answer where this one failed: every
    provider-side failure except a request the provider rejected as invalid (HTTP 400 and the like),
    which any deployment would reject too."""

    if isinstance(error, ProviderError):
        return error.reason != "PROVIDER_REJECTED"
    if error.reason == "PROVIDER_NOT_CONFIGURED":
        return True
    return is_retryable(error) or error.reason in REFUSALS


def counts_against_breaker(error: DspyGrpcError) -> bool:
    """Failures that say the deployment is unhealthy: unreachable, 5xx, timeouts, garbage answers."""

    if error.reason in REFUSALS:
        return False
    if isinstance(error, DeadlineExceeded):
        return error.reason == "PROVIDER_TIMEOUT"
    return isinstance(error, Unavailable) or error.reason == "PROVIDER_BAD_RESPONSE"


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

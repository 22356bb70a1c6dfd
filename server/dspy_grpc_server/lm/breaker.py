"""A circuit breaker: stop calling a deployment that keeps failing, and probe it again later.

States: ``closed`` (calls flow; consecutive failures are counted) -> ``open`` after
``failure_threshold`` consecutive failures (calls are refused at once) -> ``half_open`` once
``reset_timeout_s`` has passed (exactly one probe call is let through) -> ``closed`` when the probe
succeeds, ``open`` again when it fails. A threshold of 0 disables the breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, failure_threshold: int, reset_timeout_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_out = False
        #: How many times the breaker opened.
        self.times_opened = 0

    @property
    def state(self) -> str:
        if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
            return HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_after(self) -> float:
        """Seconds until a probe call will be allowed (0 when calls are allowed)."""

        if self._state != OPEN:
            return 0.0
        return max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))

    def would_allow(self) -> bool:
        """Whether :meth:`allow` would let a call through now (without taking the probe)."""

        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self._probe_out)

    def allow(self) -> bool:
        """Take permission for one call. In half-open state only one probe is out at a time."""

        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._probe_out:
            self._state = HALF_OPEN
            self._probe_out = True
            return True
        return False

    def record_success(self) -> None:
        self._state = CLOSED
        self._failures = 0
        self._probe_out = False

    def record_failure(self) -> None:
        self._probe_out = False
        self._failures += 1
        if self.failure_threshold and (self._state == HALF_OPEN or self._failures >= self.failure_threshold):
            if self._state != OPEN:
                self.times_opened += 1
            self._state = OPEN
            self._opened_at = self._clock()

    def release(self) -> None:
        """A permitted call ended without telling success or failure (e.g. it was cancelled)."""

        self._probe_out = False

"""Per-deployment limits: requests per minute, tokens per minute, calls in flight, and a cool-down
after the provider itself said "429, retry after N seconds".

With Redis configured (:mod:`.shared_limits`) the same limits are counted in Redis for all replicas
together; otherwise each replica counts its own.

Requests and tokens are token buckets refilled continuously (a full minute's worth at most). Token
use is charged with an estimate when a call starts and corrected with the real usage when it ends,
so the bucket may go into debt. Waiting for capacity never outlasts the caller's deadline: when the
wait would, the call is refused at once with ``RESOURCE_EXHAUSTED`` and a retry delay.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import ResourceExhausted
from .deadline import Deadline
from .shared_limits import SLOT_MARGIN_S, SharedLimits

#: How often a call waiting for a shared in-flight slot asks Redis again (seconds).
SHARED_SLOT_POLL_S = 0.02


@dataclass(frozen=True)
class Headroom:
    """What a deployment could take right now (``None`` = unlimited)."""

    requests: int | None
    tokens: int | None
    in_flight: int
    max_in_flight: int | None
    cooldown_s: float


class _Bucket:
    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = float(per_minute)
        self._clock = clock
        self._at = clock()

    def refill(self) -> float:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
        self._at = now
        return self.level

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` (capped at the capacity) is available."""

        missing = min(amount, self.capacity) - self.refill()
        return 0.0 if missing <= 0 else missing / self.rate


class Lease:
    """Capacity taken for one call; :meth:`release` exactly once with the real token count."""

    def __init__(self, limiter: RateLimiter, estimated_tokens: int, slot: str | None = None) -> None:
        self._limiter = limiter
        self._estimated = estimated_tokens
        self._slot = slot
        self._released = False

    def release(self, actual_tokens: int | None = None) -> None:
        if self._released:
            return
        self._released = True
        self._limiter._release(self._estimated, self._estimated if actual_tokens is None else actual_tokens,
                               self._slot)


class RateLimiter:
    def __init__(self, *, rpm: int = 0, tpm: int = 0, max_in_flight: int = 0, name: str = "",
                 clock: Callable[[], float] = time.monotonic, shared: SharedLimits | None = None) -> None:
        self.name = name
        #: When set, rpm/tpm and max_in_flight are counted in Redis, across every replica.
        self.shared = shared if (rpm or tpm or max_in_flight) else None
        self._rpm, self._tpm = rpm, tpm
        self._clock = clock
        self._requests = _Bucket(rpm, clock) if rpm else None
        self._tokens = _Bucket(tpm, clock) if tpm else None
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._cooldown_until = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    # ------------------------------------------------------------------ state

    def cooldown(self, seconds: float) -> None:
        """Take no calls for ``seconds`` (the provider asked us to back off)."""

        self._cooldown_until = max(self._cooldown_until, self._clock() + seconds)

    def wait_time(self, estimated_tokens: int = 0) -> float:
        """Seconds until rate limits and cool-down allow one more call (in-flight not included)."""

        waits = [max(0.0, self._cooldown_until - self._clock())]
        if self._requests is not None:
            waits.append(self._requests.wait_for(1))
        if self._tokens is not None:
            waits.append(self._tokens.wait_for(max(1, estimated_tokens)))
        return max(waits)

    def has_slot(self) -> bool:
        return not self.max_in_flight or self.in_flight < self.max_in_flight

    def available_now(self, estimated_tokens: int = 0) -> bool:
        return self.has_slot() and self.wait_time(estimated_tokens) == 0.0

    def headroom(self) -> Headroom:
        return Headroom(
            requests=int(self._requests.refill()) if self._requests else None,
            tokens=int(self._tokens.refill()) if self._tokens else None,
            in_flight=self.in_flight,
            max_in_flight=self.max_in_flight or None,
            cooldown_s=max(0.0, self._cooldown_until - self._clock()),
        )

    # ------------------------------------------------------------------ acquiring

    def _exhausted(self, what: str, retry_after: float) -> ResourceExhausted:
        return ResourceExhausted(
            f"deployment {self.name}: {what}; capacity returns in about {retry_after:.2g}s, "
            "after the request's deadline",
            reason="LM_CAPACITY_EXHAUSTED",
            metadata={"deployment": self.name, "limit": what.split(" ")[0]},
            retry_after=retry_after,
        )

    async def acquire(self, deadline: Deadline, estimated_tokens: int = 0) -> Lease:
        """Wait for capacity (never past ``deadline``) and take it."""

        if self.shared is not None:
            return await self._acquire_shared(self.shared, deadline, estimated_tokens)
        while True:
            wait = self.wait_time(estimated_tokens)
            if wait > 0:
                if wait >= deadline.remaining():
                    limit = "cool-down after a provider rate limit" if self._cooldown_until > self._clock() \
                        else "rate limit (rpm/tpm) reached"
                    raise self._exhausted(limit, wait)
                await asyncio.sleep(wait)
                continue
            if not self.has_slot():
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    async with asyncio.timeout(deadline.remaining()):
                        await waiter
                except BaseException as error:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                    elif waiter.done() and not waiter.cancelled():
                        self._wake_next()  # we were woken but leave: pass the free slot on
                    if isinstance(error, TimeoutError):
                        raise self._exhausted(f"max_in_flight={self.max_in_flight} calls in flight", 1.0) from None
                    raise
                continue
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= estimated_tokens
            self.in_flight += 1
            return Lease(self, estimated_tokens)

    async def _acquire_shared(self, shared: SharedLimits, deadline: Deadline, estimated_tokens: int) -> Lease:
        """:meth:`acquire` against the limits every replica shares in Redis."""

        slot = None
        if self.max_in_flight:
            while True:
                slot = await shared.enter(self.name, cap=self.max_in_flight,
                                          hold_s=deadline.remaining() + SLOT_MARGIN_S)
                if slot is not None:
                    break
                if deadline.remaining() <= SHARED_SLOT_POLL_S:
                    raise self._exhausted(f"max_in_flight={self.max_in_flight} calls in flight (all replicas)", 1.0)
                await asyncio.sleep(SHARED_SLOT_POLL_S)
        try:
            while True:
                wait = max(0.0, self._cooldown_until - self._clock())
                if not wait and (self._rpm or self._tpm):
                    wait = await shared.take(self.name, rpm=self._rpm, tpm=self._tpm, tokens=estimated_tokens)
                if wait <= 0:
                    break
                if wait >= deadline.remaining():
                    limit = "cool-down after a provider rate limit" if self._cooldown_until > self._clock() \
                        else "rate limit (rpm/tpm) reached"
                    raise self._exhausted(limit, wait)
                await asyncio.sleep(wait)
        except BaseException:
            if slot is not None:
                shared.leave(self.name, slot, 0, tpm=0)
            raise
        self.in_flight += 1
        return Lease(self, estimated_tokens, slot)

    def _release(self, estimated: int, actual: int, slot: str | None = None) -> None:
        self.in_flight -= 1
        if self.shared is not None:
            self.shared.leave(self.name, slot, actual - estimated, tpm=self._tpm)
            return
        if self._tokens is not None:
            self._tokens.refill()
            self._tokens.level -= actual - estimated
        self._wake_next()

    def _wake_next(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

"""Live traffic goes first: the live calls in flight in this process, and how many program runs at
once a job may have meanwhile.

Jobs and live calls (Predict, StreamPredict, BatchPredict, Run, LM Complete) share one event loop,
so a job running many programs at once takes CPU from the live calls' latency. While any live call
is in flight -- and for ``quiet_s`` after the last one ends, so that callers calling back to back
keep the priority -- each job's slot pool (:class:`~.runner.PrioritySlots`) hands out at most
``threads_while_live`` slots (never fewer than one: jobs always progress); then the job's full
``num_threads`` again. Runs already under way finish; only new ones wait. What a job computes does
not depend on this, only how many of its runs overlap.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class _Pool(Protocol):
    def fill(self) -> None: ...


class LiveTraffic:
    """The live calls in flight; job slot pools listen to learn when they may grow again."""

    def __init__(self, *, threads_while_live: int = 1, quiet_s: float = 0.2) -> None:
        self.threads_while_live = max(1, threads_while_live)
        self.quiet_s = max(0.0, quiet_s)
        #: Live calls under way now.
        self.in_flight = 0
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._pools: weakref.WeakSet[_Pool] = weakref.WeakSet()

    @contextmanager
    def call(self) -> Iterator[None]:
        """Counts one live call for as long as it runs."""

        self.in_flight += 1
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._went_quiet()

    def busy(self) -> bool:
        """Whether jobs give way now: a live call is in flight or ended less than ``quiet_s`` ago."""

        return self.in_flight > 0 or self._quiet_timer is not None

    def limit(self, num_threads: int) -> int:
        """How many slots a job with ``num_threads`` may hold now."""

        return min(num_threads, self.threads_while_live) if self.busy() else num_threads

    def listen(self, pool: _Pool) -> None:
        """``pool.fill()`` is called when jobs may use all their threads again (held weakly)."""

        self._pools.add(pool)

    def _went_quiet(self) -> None:
        if self.quiet_s == 0:
            self._wake()
            return
        self._quiet_timer = asyncio.get_running_loop().call_later(self.quiet_s, self._quiet_for_long_enough)

    def _quiet_for_long_enough(self) -> None:
        self._quiet_timer = None
        self._wake()

    def _wake(self) -> None:
        for pool in list(self._pools):
            pool.fill()

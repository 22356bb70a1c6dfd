"""Live traffic goes first: the live calls in flight in this process, and how many program runs at
once a job may have meanwhile.

Jobs and live calls (Predict, StreamPredict, BatchPredict, Run, LM Complete) share one event loop,
so a job running many programs at once takes CPU from the live calls' latency. While any live call
is in flight -- and for ``quiet_s`` after the last one ends, so that callers calling back to back
keep the priority -- each job's slot pool (:class:`~.runner.PrioritySlots`) hands out at most
``threads_while_live`` slots (never fewer than one: jobs always progress); then the job's full
``num_threads`` again. Runs already under way finish; only new ones wait. What a job computes does
not depend on this, only how many of its runs overlap.

When jobs run in a job-runner process (``jobs.runner``), the serving processes of the host publish
whether they are busy on a :class:`LiveBoard` -- a few bytes of memory shared by the processes the
``serve`` parent forks -- and the runner's pools give way while any of them is, as in one process.
"""

from __future__ import annotations

import asyncio
import math
import mmap
import struct
import time
import weakref
from typing import Protocol


class _Pool(Protocol):
    def fill(self) -> None: ...


_CELL = struct.Struct("d")

#: How often a job runner looks whether the serving processes went quiet (seconds).
BOARD_POLL_S = 0.05


class LiveBoard:
    """Shared memory (made before forking) with one cell per serving process: until when (on the
    host's monotonic clock) that process has live calls -- infinity while any is in flight.
    Each serving process writes only its own cell, and only when it turns busy or quiet."""

    def __init__(self, processes: int) -> None:
        self._memory = mmap.mmap(-1, _CELL.size * processes)  # anonymous and shared with forked children
        self._cells = processes

    def publish(self, cell: int, busy_until: float) -> None:
        _CELL.pack_into(self._memory, cell * _CELL.size, busy_until)

    def busy(self) -> bool:
        now = time.monotonic()
        return any(_CELL.unpack_from(self._memory, i * _CELL.size)[0] > now for i in range(self._cells))


class LiveTraffic:
    """The live calls in flight; job slot pools listen to learn when they may grow again.

    With a ``board``: a serving process (``cell`` set) publishes there whether it is busy; a job
    runner (``cell`` None) also counts the serving processes' live calls as its own."""

    def __init__(self, *, threads_while_live: int = 1, quiet_s: float = 0.2, board: LiveBoard | None = None,
                 cell: int | None = None) -> None:
        self.threads_while_live = max(1, threads_while_live)
        self.quiet_s = max(0.0, quiet_s)
        self._board = board
        self._cell = cell
        self._board_watch: asyncio.TimerHandle | None = None
        #: Live calls under way now.
        self.in_flight = 0
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._pools: weakref.WeakSet[_Pool] = weakref.WeakSet()

    def call(self) -> LiveTraffic:
        """Counts one live call for as long as it runs: ``with live.call(): ...`` (the counter is
        the context manager itself -- no object per call)."""

        return self

    def __enter__(self) -> None:
        self.in_flight += 1
        if self.in_flight == 1 and self._board is not None and self._cell is not None:
            self._board.publish(self._cell, math.inf)
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None

    def __exit__(self, *exc_info: object) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._went_quiet()

    def busy(self) -> bool:
        """Whether jobs give way now: a live call is in flight or ended less than ``quiet_s`` ago."""

        if self.in_flight > 0 or self._quiet_timer is not None:
            return True
        if self._board is not None and self._cell is None and self._board.busy():
            self._watch_board()
            return True
        return False

    def limit(self, num_threads: int) -> int:
        """How many slots a job with ``num_threads`` may hold now."""

        return min(num_threads, self.threads_while_live) if self.busy() else num_threads

    def listen(self, pool: _Pool) -> None:
        """``pool.fill()`` is called when jobs may use all their threads again (held weakly)."""

        self._pools.add(pool)

    def _watch_board(self) -> None:
        """(Job runner) look again soon, and let the pools grow once the serving processes are quiet."""

        if self._board_watch is None:
            self._board_watch = asyncio.get_running_loop().call_later(BOARD_POLL_S, self._look_at_board)

    def _look_at_board(self) -> None:
        self._board_watch = None
        if self.busy():  # watches on
            return
        self._wake()

    def _went_quiet(self) -> None:
        if self._board is not None and self._cell is not None:
            self._board.publish(self._cell, time.monotonic() + self.quiet_s)
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

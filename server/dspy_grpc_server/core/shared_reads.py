"""Concurrent reads of the same thing share one read.

A cache that expires (what a replica knows about a program, a program's quarantined inputs, the
stored budgets) would otherwise send every call arriving while it is being refreshed to the store:
at 64 calls in flight that is 64 identical queries per expiry. :class:`SharedReads` lets the first
caller read and the others await its result.

Invalidation: callers pass the epoch their cache is at (bumped by each invalidation). A read begun
at an older epoch is never joined, so nobody gets an answer read before a change they were told of.

Pure asyncio, no I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedReads(Generic[K, V]):
    def __init__(self) -> None:
        self._reads: dict[K, tuple[int, asyncio.Future[V]]] = {}

    async def read(self, key: K, epoch: int, load: Callable[[], Awaitable[V]]) -> V:
        """``load()``'s result, shared with every caller that asks for ``key`` at ``epoch`` while it
        runs. A caller that is cancelled does not cancel the read for the others."""

        current = self._reads.get(key)
        if current is None or current[0] != epoch:
            future: asyncio.Future[V] = asyncio.ensure_future(load())
            current = self._reads[key] = (epoch, future)
            future.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(current[1])

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        current = self._reads.get(key)
        if current is not None and current[1] is done:
            del self._reads[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have been cancelled

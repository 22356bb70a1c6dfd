"""The event loop a serving process runs on: uvloop's (libuv) where it is installed -- a declared
dependency everywhere but Windows -- else asyncio's own.

At 1,000 calls in flight on one core (``make bench-load``, 1000 / 500 ms) uvloop served about 10%
more calls per second at a little less CPU per call than asyncio's selector loop; grpc.aio,
aiohttp, aiosqlite and asyncpg all run on it. Short commands (``keys``, ``migrate``) keep asyncio's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_serving(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new serving event loop (as :func:`asyncio.run` does)."""

    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms uvloop is not built for
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)

"""SharedReads: concurrent reads of one key share one load; invalidation (a new epoch) is never
answered with a load begun before it; a cancelled caller does not cancel the others' read."""

from __future__ import annotations

import asyncio

import pytest

from dspy_grpc_server.core.shared_reads import SharedReads

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Loader:
    def __init__(self) -> None:
        self.loads = 0
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.loads += 1
        number = self.loads
        await self.release.wait()
        return number


async def test_concurrent_callers_share_one_load() -> None:
    reads: SharedReads[str, int] = SharedReads()
    load = Loader()
    callers = [asyncio.ensure_future(reads.read("a", 0, load)) for _ in range(50)]
    await asyncio.sleep(0)
    load.release.set()
    assert await asyncio.gather(*callers) == [1] * 50
    assert load.loads == 1
    # Once finished, the next read loads again (freshness is the caller's cache's business).
    assert await reads.read("a", 0, load) == 2


async def test_other_keys_and_newer_epochs_do_not_join() -> None:
    reads: SharedReads[str, int] = SharedReads()
    load = Loader()
    first = asyncio.ensure_future(reads.read("a", 0, load))
    other_key = asyncio.ensure_future(reads.read("b", 0, load))
    after_invalidation = asyncio.ensure_future(reads.read("a", 1, load))
    await asyncio.sleep(0)
    load.release.set()
    assert sorted(await asyncio.gather(first, other_key, after_invalidation)) == [1, 2, 3]
    assert load.loads == 3


async def test_a_cancelled_caller_leaves_the_read_to_the_others_and_errors_reach_everyone() -> None:
    reads: SharedReads[str, int] = SharedReads()
    load = Loader()
    impatient = asyncio.ensure_future(reads.read("a", 0, load))
    patient = asyncio.ensure_future(reads.read("a", 0, load))
    await asyncio.sleep(0)
    impatient.cancel()
    await asyncio.sleep(0)
    load.release.set()
    assert await patient == 1
    assert impatient.cancelled()

    async def failing() -> int:
        await asyncio.sleep(0.01)
        raise LookupError("gone")

    callers = [asyncio.ensure_future(reads.read("b", 0, failing)) for _ in range(3)]
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(result, LookupError) for result in results)

"""Job leases in the store, on SQLite and on a real PostgreSQL server: one claim wins, a stale
holder's writes are refused, an expired lease is taken over, poison jobs are quarantined."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dspy_grpc_server.core.errors import FailedPrecondition
from dspy_grpc_server.store import Database
from dspy_grpc_server.store.jobs import (
    CANCELLED,
    FAILED,
    JOB_QUARANTINED,
    RUNNING,
    SUCCEEDED,
    Claimable,
    JobRecord,
    JobStore,
    Lease,
    LeaseLost,
)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    if request.param == "sqlite":
        database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    else:
        database = await Database.open(request.getfixturevalue("postgres_url"))
    try:
        yield JobStore(database)
    finally:
        await database.close()


async def claim(store: JobStore, owner: str, *, lease_s: float = 30.0, deaths: int = 2) -> Lease | JobRecord | None:
    """Claim the one job, live lease or not (what a restarted single-process server does)."""
    [job] = await store.claimable(include_live=True)
    return await store.claim(job, owner=owner, lease_s=lease_s, max_owner_deaths=deaths, include_live=True)


async def test_one_claim_wins_and_only_its_holder_writes(store: JobStore) -> None:
    await store.create("evaluation", "e1", {}, {})
    [job] = await store.claimable()
    outcomes = await asyncio.gather(*(store.claim(job, owner=f"r{i}", lease_s=30, max_owner_deaths=2)
                                      for i in range(4)))
    leases = [o for o in outcomes if isinstance(o, Lease)]
    assert len(leases) == 1 and outcomes.count(None) == 3
    lease = leases[0]
    assert await store.claimable() == []  # a live lease: nobody else may take it
    await store.put_results(lease, "eval", {0: {"score": 1.0}, 1: {"score": 0.0}})
    await store.put_results(lease, "eval", {1: {"score": 0.5}, 2: {"score": 1.0}})  # first write wins
    rows = await store.results_since("evaluation", "e1", "eval", 0)
    assert [(seq, index, data["score"]) for seq, index, data in rows] == [(1, 0, 1.0), (2, 1, 0.0), (3, 2, 1.0)]
    assert await store.results_since("evaluation", "e1", "eval", 2) == [rows[2]]
    stale = Lease(lease.kind, lease.job_id, lease.owner, lease.fence - 1)
    for write in (store.save_progress(stale, {"phase": "x"}), store.put_results(stale, "eval", {9: {}}),
                  store.put_candidate(stale, 0, {}), store.put_lm_calls(stale, {"k": {}}),
                  store.finish(stale, to=SUCCEEDED, result={})):
        with pytest.raises(LeaseLost):
            await write
    await store.finish(lease, to=SUCCEEDED, result={"score": 1.0})
    record = await store.get("evaluation", "e1")
    assert record.state == SUCCEEDED and record.owner is None and record.result == {"score": 1.0}
    assert await store.last_result_seq("evaluation", "e1") == 3


async def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off(store: JobStore) -> None:
    await store.create("optimization", "o1", {}, {})
    first = await claim(store, "a", lease_s=0.5)
    assert isinstance(first, Lease)
    assert await store.renew(first, 0.5)
    await asyncio.sleep(0.6)
    [job] = await store.claimable()
    second = await store.claim(job, owner="b", lease_s=30, max_owner_deaths=2)
    assert isinstance(second, Lease) and second.fence == first.fence + 1
    assert not await store.renew(first, 30)
    with pytest.raises(LeaseLost):
        await store.save_progress(first, {})
    record = await store.get("optimization", "o1")
    assert record.owner == "b" and record.owner_deaths == 1 and record.state == RUNNING
    # A graceful stop gives the job back at once and does not count as a death.
    await store.release(second)
    [job] = await store.claimable()
    third = await store.claim(job, owner="c", lease_s=30, max_owner_deaths=2)
    assert isinstance(third, Lease)
    assert (await store.get("optimization", "o1")).owner_deaths == 0


async def test_a_job_whose_owner_keeps_dying_is_quarantined_and_can_be_retried(store: JobStore) -> None:
    await store.create("evaluation", "poison", {}, {})
    assert isinstance(await claim(store, "a"), Lease)
    assert isinstance(await claim(store, "b"), Lease)  # a died: first death, resumed
    quarantined = await claim(store, "c")  # b died too: second death in a row
    assert isinstance(quarantined, JobRecord)
    assert quarantined.state == FAILED and quarantined.error["reason"] == JOB_QUARANTINED
    assert quarantined.owner_deaths == 2
    listed, token = await store.quarantined(page_size=10)
    assert [r.job_id for r in listed] == ["poison"] and token == ""
    retried = await store.retry("evaluation", "poison")
    assert retried.state == "QUEUED" and retried.owner_deaths == 0
    assert isinstance(await claim(store, "d"), Lease)
    with pytest.raises(FailedPrecondition):
        await store.retry("evaluation", "poison")


async def test_cancel_ends_the_lease_of_whoever_holds_it(store: JobStore) -> None:
    await store.create("evaluation", "c1", {}, {})
    lease = await claim(store, "a")
    assert isinstance(lease, Lease)
    assert await store.cancel("evaluation", "c1")
    assert not await store.renew(lease, 30)
    with pytest.raises(LeaseLost):
        await store.put_results(lease, "eval", {0: {}})
    assert (await store.get("evaluation", "c1")).state == CANCELLED
    assert not await store.cancel("evaluation", "c1")
    assert await store.claimable() == []

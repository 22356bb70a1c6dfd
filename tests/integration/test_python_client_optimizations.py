"""The Python client's optimization-job helpers (start_gepa, start_simba, watch/wait/cancel, candidates),
async and blocking (in a worker thread), against a real server on loopback, with the mock LM answering
as tests/mocklm/reflection.py scripts it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from dspy_grpc import AsyncClient, Client, InvalidArgumentError, Optimization, OptimizationCandidate
from tests.integration.job_helpers import create_dataset, create_program, exact_match
from tests.mocklm import arithmetic, reflection

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ROWS = arithmetic.examples(8)


@pytest_asyncio.fixture(loop_scope="session")
async def client(server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as c:
        yield c


@pytest.fixture
async def names(channel, mock_lm) -> tuple[str, str]:
    """A fresh program and dataset (the arithmetic rows), with the reflection-scripted mock LM."""

    reflection.install(mock_lm)
    run = f"pyopt-{uuid.uuid4().hex[:8]}"
    await create_dataset(channel, run, ROWS)
    await create_program(channel, run)
    return run, run


async def test_start_gepa_and_follow_it_to_a_better_instruction(client: AsyncClient, names) -> None:
    program, dataset = names
    job = await client.start_gepa(program, dataset, reflection_lm="mock", max_metric_calls=40, metric=exact_match(),
                                  num_threads=2, optimization_id=f"{program}-gepa")
    assert isinstance(job, Optimization)
    assert job.name == f"optimizations/{program}-gepa" and job.optimizer == "gepa"
    assert job.state in ("queued", "running") and job.program == f"programs/{program}"

    seen = [update async for update in client.watch_optimization(job.optimization_id)]
    last = seen[-1]
    assert last.state == "succeeded" and last.done, (last.error_code, last.error_message)
    assert all(not update.done for update in seen[:-1])
    budgets = {update.progress.metric_calls_budget for update in seen} - {0}
    assert budgets == {40}
    used = [update.progress.metric_calls_used for update in seen]
    assert used == sorted(used) and last.progress.metric_calls_used >= 40
    assert last.best_score == 100.0 and last.best_candidate == 2
    assert last.raw.gepa.reflection_lm.model == "mock"

    revision = await client.get_program(last.program_revision)
    assert revision.module.predict.predictor.signature.instructions == reflection.GOOD_INSTRUCTION

    candidates = [c async for c in client.list_optimization_candidates(job.name, page_size=1)]
    assert all(isinstance(c, OptimizationCandidate) for c in candidates)
    seed, first, second = candidates[:3]
    assert (seed.index, seed.label, seed.parents) == (0, "seed", ())
    assert seed.instance_scores == (0.0,) * len(ROWS)
    assert first.parents == (0,) and first.changed_predictors == ("self",)
    assert second.parents == (1,) and second.score == 100.0


async def test_start_simba_and_wait_for_it(client: AsyncClient, names) -> None:
    program, dataset = names
    job = await client.start_simba(f"programs/{program}", f"datasets/{dataset}", metric={"exact_match": {}},
                                   bsize=2, num_candidates=2, max_steps=1, num_threads=2)
    assert job.optimizer == "simba" and job.optimization_id
    done = await client.wait_optimization(job.name)
    assert done.state == "succeeded", (done.error_code, done.error_message)
    assert done.program_revision.startswith(f"programs/{program}@") and done.best_score is not None
    assert done.progress.lm_calls_done > 0
    again = await client.get_optimization(job.optimization_id)
    assert again.state == "succeeded" and again.program_revision == done.program_revision
    labels = [c.label async for c in client.list_optimization_candidates(job.name)]
    assert labels[0] == "baseline"


async def test_bad_settings_are_refused(client: AsyncClient, names) -> None:
    program, dataset = names
    with pytest.raises(ValueError, match="exactly one of auto"):
        await client.start_gepa(program, dataset, reflection_lm="mock", metric=exact_match())
    with pytest.raises(InvalidArgumentError) as refused:
        await client.start_gepa(program, dataset, reflection_lm="mock", auto="extreme", metric=exact_match())
    assert "optimization.gepa.auto" in str(refused.value)
    with pytest.raises(InvalidArgumentError) as refused:
        await client.start_simba(program, dataset, metric=exact_match(), bsize=1000)
    assert "optimization.simba.bsize" in str(refused.value)


async def test_the_blocking_client_starts_follows_and_cancels_jobs(server, names, mock_lm) -> None:
    program, dataset = names
    mock_lm.latency_s = 0.02  # the SIMBA job below is still running when it is cancelled

    def scenario() -> None:
        with Client(f"127.0.0.1:{server.port}", timeout=20) as sync:
            job = sync.start_gepa(program, dataset, reflection_lm={"model": "mock"}, max_metric_calls=20,
                                  metric=exact_match(), num_threads=4)
            updates = list(sync.watch_optimization(job.name, timeout=120))
            assert updates[-1].state == "succeeded" and updates[-1].progress.metric_calls_budget == 20
            assert [c.index for c in sync.list_optimization_candidates(job.name)][:2] == [0, 1]

            long = sync.start_simba(program, dataset, metric=exact_match(), bsize=4, num_candidates=3, max_steps=20,
                                    num_threads=2)
            for update in sync.watch_optimization(long.name, timeout=120):
                if update.progress.lm_calls_done > 0:
                    break
            sync.cancel_optimization(long.optimization_id)
            assert sync.wait_optimization(long.name, timeout=120).state == "cancelled"
            assert sync.get_optimization(long.name).done

    await asyncio.to_thread(scenario)

"""Several replicas on one PostgreSQL database, the mock LM behind them (issue #12): jobs are leased to
one replica, taken over when it dies (kill -9) or stops (rolling restart), cancelled and watched
through any replica -- each LM call made once (plus the calls in flight when an owner died)."""

from __future__ import annotations

import asyncio
import json
import re
import signal

import grpc
import pytest
from dspy_grpc.v1 import evaluation_pb2, evaluation_pb2_grpc, job_pb2, optimization_pb2, optimization_pb2_grpc
from dspy_grpc.v1 import program_pb2, program_pb2_grpc
from google.protobuf import json_format

from tests.integration.job_helpers import (
    create_dataset,
    create_evaluation,
    create_optimization,
    create_program,
    exact_match,
    wait_evaluation,
    wait_optimization,
)
from tests.integration.replicas import FAST_LEASES, Replica, evaluation, start_replica, wait_for
from tests.mocklm import arithmetic

# Each test starts several server processes: on a loaded machine that alone can take a minute.
pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(300)]

THREADS = 2
#: Identical requests of two jobs must both reach the mock (the LM calls are what is counted).
NO_CACHE = FAST_LEASES + "\n[cache]\nenabled = false\n"
DEMO = {"question": arithmetic.question(1, 2), "answer": "3"}


def lm_calls(mock_lm) -> list[str]:
    return [json.dumps(r.json, sort_keys=True) for r in mock_lm.requests if r.path.endswith("/chat/completions")]


async def results(channel, name: str) -> list[tuple[int, float, str]]:
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    out, token = [], ""
    while True:
        page = await stub.ListEvaluationResults(
            evaluation_pb2.ListEvaluationResultsRequest(parent=name, page_size=100, page_token=token))
        out += [(r.example_index, r.score, json.dumps(json_format.MessageToDict(r.prediction), sort_keys=True))
                for r in page.results]
        token = page.next_page_token
        if not token:
            return out


async def watch_results(channel, name: str, started: asyncio.Event | None = None) -> list[int]:
    """Every example index WatchEvaluation delivers, in delivery order, until the job finishes
    (``started`` is set once the first message, the state when watching began, has arrived)."""

    seen = []
    stream = evaluation_pb2_grpc.EvaluationServiceStub(channel).WatchEvaluation(
        evaluation_pb2.WatchEvaluationRequest(name=name))
    async for message in stream:
        seen += [r.example_index for r in message.results]
        if started is not None:
            started.set()
    return seen


def claimant(replicas: list[Replica], job: str) -> tuple[Replica | None, int]:
    """The replica whose job runner last claimed ``job`` (the highest fence in the logs), and that fence."""

    best: tuple[Replica | None, int] = (None, 0)
    for replica in replicas:
        for fence in re.findall(rf"running {re.escape(job)} \(fence (\d+)\)", replica.log.read_text()):
            if int(fence) > best[1]:
                best = (replica, int(fence))
    return best


async def test_a_killed_owner_s_job_is_finished_by_another_replica_and_watched_there(tmp_path, mock_lm, postgres_url):
    arithmetic.install(mock_lm)
    a = await start_replica(tmp_path / "a", mock_lm.base_url, postgres_url, extra=NO_CACHE)
    b = await start_replica(tmp_path / "b", mock_lm.base_url, postgres_url, extra=NO_CACHE)
    try:
        async with grpc.aio.insecure_channel(a.target) as on_a, grpc.aio.insecure_channel(b.target) as on_b:
            await create_dataset(on_a, "sums", arithmetic.examples(24))
            await create_program(on_a, "adder", demos=[DEMO])
            body = {"program": "programs/adder", "dataset": "datasets/sums", "metric": exact_match(),
                    "num_threads": THREADS}
            reference = await create_evaluation(on_a, body, evaluation_id="reference")
            done = await wait_evaluation(on_a, reference.name)
            assert done.state == job_pb2.JOB_STATE_SUCCEEDED
            expected = await results(on_a, reference.name)
            reference_calls = len(lm_calls(mock_lm))
            mock_lm.requests.clear()

            mock_lm.latency_s = 0.15
            # The LM is held back until B's watcher is in place: Watch streams results finished after
            # its first message, and this test wants all of them through B.
            mock_lm.gate = asyncio.Event()
            job = await create_evaluation(on_a, body, evaluation_id="killed")
            # Whichever replica's job runner claims it owns it: that one is killed, the other watches.
            owner, _ = await wait_for(lambda: asyncio.sleep(0, claimant([a, b], job.name)),
                                      lambda found: found[0] is not None)
            on_other = on_b if owner is a else on_a
            watching = asyncio.Event()
            watcher = asyncio.ensure_future(watch_results(on_other, job.name, watching))
            await asyncio.wait_for(watching.wait(), 30)
            mock_lm.gate.set()
            await wait_for(lambda: evaluation(on_other, job.name), lambda j: j.progress.examples_done >= 4)
            await owner.stop(signal.SIGKILL)
            before_kill = lm_calls(mock_lm)

            finished = await wait_evaluation(on_other, job.name, timeout=120)
            assert finished.state == job_pb2.JOB_STATE_SUCCEEDED, finished.error
            assert finished.score == done.score
            assert await results(on_other, job.name) == expected
            # Watch through the other: every result exactly once, although the job moved over to it.
            seen = await asyncio.wait_for(watcher, 30)
            assert sorted(seen) == list(range(24))
            # Only the calls in flight on A when it died were made again.
            after = lm_calls(mock_lm)[len(before_kill):]
            assert len(set(before_kill) & set(after)) <= THREADS
            assert len(before_kill) + len(after) <= reference_calls + THREADS
    finally:
        await a.stop(signal.SIGKILL)
        await b.stop(signal.SIGKILL)


async def test_cancel_through_another_replica_stops_the_owner_s_lm_calls(tmp_path, mock_lm, postgres_url):
    arithmetic.install(mock_lm)
    mock_lm.latency_s = 0.3
    a = await start_replica(tmp_path / "a", mock_lm.base_url, postgres_url, extra=NO_CACHE)
    b = await start_replica(tmp_path / "b", mock_lm.base_url, postgres_url, extra=NO_CACHE)
    try:
        async with grpc.aio.insecure_channel(a.target) as on_a, grpc.aio.insecure_channel(b.target) as on_b:
            await create_dataset(on_a, "sums", arithmetic.examples(60))
            await create_program(on_a, "adder", demos=[DEMO])
            job = await create_evaluation(on_a, {"program": "programs/adder", "dataset": "datasets/sums",
                                                 "metric": exact_match(), "num_threads": THREADS})
            await wait_for(lambda: evaluation(on_b, job.name), lambda j: j.progress.examples_done >= 2)
            cancelled = await evaluation_pb2_grpc.EvaluationServiceStub(on_b).CancelEvaluation(
                evaluation_pb2.CancelEvaluationRequest(name=job.name))
            assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
            # A hears of it within about a second (LISTEN/NOTIFY; its heartbeat at worst) and stops
            # calling the LM; at 0.3 s a call, it would otherwise make ~13 more calls in two seconds.
            await asyncio.sleep(1.5)
            settled = len(lm_calls(mock_lm))
            await asyncio.sleep(2.0)
            assert len(lm_calls(mock_lm)) == settled
            assert settled < 60
            on_a_now = await evaluation(on_a, job.name)
            assert on_a_now.state == job_pb2.JOB_STATE_CANCELLED
            assert len(await results(on_a, job.name)) < 60
    finally:
        await a.stop()
        await b.stop()


OPTIMIZATION = {
    "dataset": "datasets/train", "metric": exact_match(), "num_threads": THREADS,
    "random_search": {"num_candidate_programs": 2, "max_bootstrapped_demos": 2, "max_labeled_demos": 2},
}


async def revisions(channel, program: str) -> list[str]:
    listed = await program_pb2_grpc.ProgramServiceStub(channel).ListProgramRevisions(
        program_pb2.ListProgramRevisionsRequest(name=f"programs/{program}"))
    return [r.revision_id for r in listed.programs]


async def candidates(channel, name: str) -> list[dict]:
    listed = await optimization_pb2_grpc.OptimizationServiceStub(channel).ListOptimizationCandidates(
        optimization_pb2.ListOptimizationCandidatesRequest(parent=name))
    return [json_format.MessageToDict(c) for c in listed.candidates]


async def test_a_rolling_restart_of_every_replica_runs_the_optimization_once(tmp_path, mock_lm, postgres_url):
    arithmetic.install(mock_lm)
    mock_lm.latency_s = 0.03
    # The two replicas the rollout replaces, and the two that replace them (started up-front: a
    # process takes seconds to start on a loaded machine, longer than the job lasts).
    a, b, new_a, new_b = [await start_replica(tmp_path / name, mock_lm.base_url, postgres_url, extra=NO_CACHE)
                          for name in ("a", "b", "new_a", "new_b")]
    replicas = [a, b, new_a, new_b]
    try:
        async with grpc.aio.insecure_channel(a.target) as channel:
            await create_dataset(channel, "train", arithmetic.examples(10))
            await create_program(channel, "reference")
            await create_program(channel, "adder")
            reference = await create_optimization(channel, {"program": "programs/reference", **OPTIMIZATION},
                                                  optimization_id="reference")
            expected = await wait_optimization(channel, reference.name)
            assert expected.state == job_pb2.JOB_STATE_SUCCEEDED
            expected_candidates = await candidates(channel, reference.name)
        reference_calls = len(lm_calls(mock_lm))
        mock_lm.requests.clear()

        mock_lm.latency_s = 0.25
        async with grpc.aio.insecure_channel(b.target) as channel:
            job = await create_optimization(channel, {"program": "programs/adder", **OPTIMIZATION},
                                            optimization_id="rolled")
        # Each replica's job runner claims jobs at its scan, so any of the four may own it: stop the
        # owner, twice, watching through a replica that stays.
        restarts, fence, live = 0, 0, list(replicas)
        for _ in range(2):
            owner, fence = await wait_for(lambda: asyncio.sleep(0, claimant(live, "optimizations/rolled")),
                                          lambda found: found[1] > fence)
            async with grpc.aio.insecure_channel(next(r for r in live if r is not owner).target) as channel:
                stub = optimization_pb2_grpc.OptimizationServiceStub(channel)
                await wait_for(lambda: stub.GetOptimization(optimization_pb2.GetOptimizationRequest(name=job.name)),
                               lambda j: j.progress.lm_calls_done >= 6 * (restarts + 1)
                               or j.state != job_pb2.JOB_STATE_RUNNING)
                state = await stub.GetOptimization(optimization_pb2.GetOptimizationRequest(name=job.name))
            if state.state != job_pb2.JOB_STATE_RUNNING:
                break
            restarts += 1
            await owner.stop(signal.SIGTERM)  # hands the job over at once
            live.remove(owner)
        async with grpc.aio.insecure_channel(live[0].target) as channel:
            finished = await wait_optimization(channel, job.name, timeout=120)
            assert finished.state == job_pb2.JOB_STATE_SUCCEEDED, finished.error
            assert restarts == 2, "the job should have outlived two owners"
            assert finished.result.best_score == expected.result.best_score
            assert await revisions(channel, "adder") == ["r0002", "r0001"]  # one result revision
            got = await candidates(channel, job.name)
        assert [(c.get("index"), c.get("score"), c.get("module")) for c in got] == [
            (c.get("index"), c.get("score"), c.get("module")) for c in expected_candidates]
        # One run's calls, plus at most, at each handover, the calls in flight and the one each slot
        # may have begun sending as the job was handed back (its cancellation lands at the next await,
        # after an HTTP request on a pooled connection has gone out): 58 of 57 seen before with THREADS
        # only. A job redone from the start would add another run's calls (53).
        assert len(lm_calls(mock_lm)) <= reference_calls + restarts * 2 * THREADS
    finally:
        for replica in replicas:
            await replica.stop()


async def test_a_paused_owner_that_lost_its_lease_cannot_overwrite_the_new_owner(tmp_path, mock_lm, postgres_url):
    """SIGSTOP the owner for longer than its lease (a GC pause, a partition): another replica takes the
    job over; when the old owner wakes up, its writes are refused (fencing) and it stops."""

    arithmetic.install(mock_lm)
    a = await start_replica(tmp_path / "a", mock_lm.base_url, postgres_url, extra=NO_CACHE)
    b = await start_replica(tmp_path / "b", mock_lm.base_url, postgres_url, extra=NO_CACHE)
    try:
        async with grpc.aio.insecure_channel(a.target) as on_a, grpc.aio.insecure_channel(b.target) as on_b:
            await create_dataset(on_a, "sums", arithmetic.examples(16))
            await create_program(on_a, "adder", demos=[DEMO])
            body = {"program": "programs/adder", "dataset": "datasets/sums", "metric": exact_match(),
                    "num_threads": THREADS}
            reference = await wait_evaluation(on_a, (await create_evaluation(on_a, body, "reference")).name)
            assert reference.state == job_pb2.JOB_STATE_SUCCEEDED
            expected = await results(on_a, reference.name)
            reference_calls = len(lm_calls(mock_lm))
            mock_lm.requests.clear()

            mock_lm.latency_s = 0.2
            job = await create_evaluation(on_a, body, evaluation_id="paused")
            await wait_for(lambda: evaluation(on_b, job.name), lambda j: j.progress.examples_done >= 2)
            # Whichever replica's job runner claimed it first owns it: pause that one.
            owner, other = (a, b) if "running evaluations/paused" in a.log.read_text() else (b, a)
            async with grpc.aio.insecure_channel(other.target) as on_other:
                at_pause = await evaluation(on_other, job.name)
                owner.signal_all(signal.SIGSTOP)  # the serving process and the job runner
                try:
                    # The other claims the job once the owner's lease (2 s) expires and goes on with it.
                    await wait_for(lambda: evaluation(on_other, job.name),
                                   lambda j: j.progress.examples_done >= at_pause.progress.examples_done + 4)
                finally:
                    owner.signal_all(signal.SIGCONT)
                finished = await wait_evaluation(on_other, job.name, timeout=120)
                assert finished.state == job_pb2.JOB_STATE_SUCCEEDED, finished.error
                assert await results(on_other, job.name) == expected
            # The owner, awake again, was refused and stopped; it still serves.
            async with grpc.aio.insecure_channel(owner.target) as on_owner:
                assert (await evaluation(on_owner, job.name)).state == job_pb2.JOB_STATE_SUCCEEDED
            await wait_for(lambda: asyncio.sleep(0, owner.log.read_text()),
                           lambda text: "lease lost" in text or "write was refused" in text)
            # At most the calls in flight on the owner when it paused (and finished on waking) were made twice.
            assert len(lm_calls(mock_lm)) <= reference_calls + 2 * THREADS
    finally:
        a.signal_all(signal.SIGCONT)
        b.signal_all(signal.SIGCONT)
        await a.stop()
        await b.stop()

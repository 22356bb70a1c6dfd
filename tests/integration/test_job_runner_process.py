"""Jobs in a job-runner process (``jobs.runner = "process"``): ``dspy-grpc serve`` on SQLite forks a
serving process and a job runner; jobs created through the server run in the runner, are watched and
cancelled through the server (everything goes through the store), and a runner killed with SIGKILL
is restarted and resumes the job -- while Predict keeps answering."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import pytest
from dspy_grpc.v1 import evaluation_pb2, evaluation_pb2_grpc, inference_pb2, inference_pb2_grpc, job_pb2
from google.protobuf import struct_pb2

from tests.integration.job_helpers import create_dataset, create_evaluation, create_program, exact_match, wait_evaluation
from tests.integration.replicas import FAST_LEASES, Replica, evaluation, start_replica, wait_for
from tests.mocklm import arithmetic

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(300)]

PROCESS_RUNNER = FAST_LEASES + 'runner = "process"\n\n[cache]\nenabled = false\n'
DEMO = {"question": arithmetic.question(1, 2), "answer": "3"}


def children(replica: Replica) -> list[int]:
    pid = replica.process.pid
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def job_runner(replica: Replica) -> int:
    """The job runner's pid: the child that runs at a lower CPU priority (``jobs.runner_nice``) than the
    others (whatever niceness the tests themselves run at)."""

    niceness = {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in children(replica)}
    nicest = max(niceness.values())
    runners = [pid for pid, nice in niceness.items() if nice == nicest]
    assert len(runners) == 1 and nicest > min(niceness.values()), niceness
    return runners[0]


async def predict(channel, a: int, b: int) -> str:
    inputs = struct_pb2.Struct()
    inputs.update({"question": arithmetic.question(a, b)})
    reply = await inference_pb2_grpc.InferenceServiceStub(channel).Predict(
        inference_pb2.PredictRequest(program="programs/adder", inputs=inputs), timeout=30)
    return reply.prediction.outputs["answer"]


async def start(tmp_path: Path, mock_lm) -> Replica:
    replica = await start_replica(tmp_path, mock_lm.base_url, f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}",
                                  extra=PROCESS_RUNNER)
    assert len(children(replica)) == 2  # the serving process and the job runner
    return replica


async def test_a_job_runs_in_the_runner_and_is_watched_and_cancelled_through_the_server(tmp_path, mock_lm):
    arithmetic.install(mock_lm)
    mock_lm.latency_s = 0.05
    replica = await start(tmp_path, mock_lm)
    try:
        async with grpc.aio.insecure_channel(replica.target) as channel:
            await create_dataset(channel, "sums", arithmetic.examples(12))
            await create_program(channel, "adder", demos=[DEMO])
            body = {"program": "programs/adder", "dataset": "datasets/sums", "metric": exact_match(),
                    "num_threads": 2}
            job = await create_evaluation(channel, body, evaluation_id="watched")
            seen, states = [], []
            stream = evaluation_pb2_grpc.EvaluationServiceStub(channel).WatchEvaluation(
                evaluation_pb2.WatchEvaluationRequest(name=job.name))
            async for message in stream:
                seen += [r.example_index for r in message.results]
                states.append((message.evaluation.state, message.evaluation.progress.examples_done))
            assert sorted(seen) == list(range(12))  # results streamed from the store, each once
            assert states[-1] == (job_pb2.JOB_STATE_SUCCEEDED, 12)
            finished = await evaluation(channel, job.name)
            assert finished.state == job_pb2.JOB_STATE_SUCCEEDED
            assert finished.score == 100.0

            # Cancel through the server: the runner hears of it at its next heartbeat and stops calling the LM.
            mock_lm.latency_s = 0.3
            await create_dataset(channel, "long", arithmetic.examples(60, start=100))
            long = await create_evaluation(channel, {**body, "dataset": "datasets/long"}, evaluation_id="cancelled")
            await wait_for(lambda: evaluation(channel, long.name), lambda j: j.progress.examples_done >= 2)
            cancelled = await evaluation_pb2_grpc.EvaluationServiceStub(channel).CancelEvaluation(
                evaluation_pb2.CancelEvaluationRequest(name=long.name))
            assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
            await asyncio.sleep(1.5)  # a heartbeat (0.25 s) and the calls then in flight (0.3 s)
            settled = len(mock_lm.requests)
            await asyncio.sleep(1.5)
            assert len(mock_lm.requests) == settled
            after = await evaluation(channel, long.name)
            assert after.state == job_pb2.JOB_STATE_CANCELLED
            assert after.progress.examples_done < 60
    finally:
        await replica.stop()
    assert replica.process.returncode == 0


async def test_a_killed_runner_is_restarted_and_resumes_while_predict_keeps_answering(tmp_path, mock_lm):
    arithmetic.install(mock_lm)
    mock_lm.latency_s = 0.1
    replica = await start(tmp_path, mock_lm)
    try:
        async with grpc.aio.insecure_channel(replica.target) as channel:
            await create_dataset(channel, "sums", arithmetic.examples(40))
            await create_program(channel, "adder", demos=[DEMO])
            job = await create_evaluation(channel, {"program": "programs/adder", "dataset": "datasets/sums",
                                                    "metric": exact_match(), "num_threads": 2},
                                          evaluation_id="survivor")
            await wait_for(lambda: evaluation(channel, job.name), lambda j: j.progress.examples_done >= 4)
            runner = job_runner(replica)
            os.kill(runner, signal.SIGKILL)
            # Live calls do not depend on the runner.
            answers = await asyncio.gather(*(predict(channel, a, a + 1) for a in range(5)))
            assert answers == [str(2 * a + 1) for a in range(5)]

            finished = await wait_evaluation(channel, job.name, timeout=180)
            assert finished.state == job_pb2.JOB_STATE_SUCCEEDED, finished.error
            assert finished.progress.examples_done == 40
            assert finished.score == 100.0
            assert job_runner(replica) != runner  # the parent started a new runner, which resumed the job
            assert await predict(channel, 20, 22) == "42"
    finally:
        await replica.stop()
    assert replica.process.returncode == 0


#: Polls far apart (a minute): only the processes' own change feed (store.changes.HostChangeFeed)
#: can start, report and cancel a job within the test's time.
SLOW_POLLS = ('[jobs]\nlease_s = 120.0\nheartbeat_s = 60.0\nscan_interval_s = 60.0\nwatch_poll_s = 60.0\n'
              'runner = "process"\n\n[cache]\nenabled = false\n')


async def test_the_serving_process_and_the_runner_tell_each_other_of_new_jobs_progress_and_cancels(tmp_path, mock_lm):
    arithmetic.install(mock_lm)
    mock_lm.latency_s = 0.05
    replica = await start_replica(tmp_path, mock_lm.base_url, f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}",
                                  extra=SLOW_POLLS)
    try:
        async with grpc.aio.insecure_channel(replica.target) as channel:
            await create_dataset(channel, "sums", arithmetic.examples(8))
            await create_program(channel, "adder", demos=[DEMO])
            body = {"program": "programs/adder", "dataset": "datasets/sums", "metric": exact_match(),
                    "num_threads": 2}
            job = await create_evaluation(channel, body, evaluation_id="told")
            seen, last = [], None
            stream = evaluation_pb2_grpc.EvaluationServiceStub(channel).WatchEvaluation(
                evaluation_pb2.WatchEvaluationRequest(name=job.name), timeout=30)
            async for message in stream:  # the runner's scan and the watcher's poll are a minute away
                seen += [r.example_index for r in message.results]
                last = message.evaluation
            assert sorted(seen) == list(range(8))
            assert last.state == job_pb2.JOB_STATE_SUCCEEDED and last.score == 100.0

            mock_lm.latency_s = 0.3
            await create_dataset(channel, "long", arithmetic.examples(60, start=100))
            long = await create_evaluation(channel, {**body, "dataset": "datasets/long"}, evaluation_id="stopped")
            await wait_for(lambda: evaluation(channel, long.name), lambda j: j.progress.examples_done >= 2, timeout=30)
            await evaluation_pb2_grpc.EvaluationServiceStub(channel).CancelEvaluation(
                evaluation_pb2.CancelEvaluationRequest(name=long.name))
            await asyncio.sleep(2.0)  # the calls in flight at the cancel (0.3 s each) end; the heartbeat is a minute away
            settled = len(mock_lm.requests)
            await asyncio.sleep(1.5)
            assert len(mock_lm.requests) == settled
            assert (await evaluation(channel, long.name)).progress.examples_done < 60
    finally:
        await replica.stop()
    assert replica.process.returncode == 0

"""Live calls go first: while live calls are in flight, a running job runs only ``jobs.threads_while_live``
programs at once (the mock LM counts the completions in flight), still progresses, and takes its
``num_threads`` back once the live calls are done. Config bounds of the two [jobs] keys."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest
from dspy_grpc.v1 import evaluation_pb2, evaluation_pb2_grpc, inference_pb2, inference_pb2_grpc, job_pb2, lm_pb2, lm_pb2_grpc
from google.protobuf import json_format

from dspy_grpc_server.app.config import Config
from dspy_grpc_server.core.errors import InvalidArgument
from tests.integration.job_helpers import create_dataset, create_evaluation, create_program, wait_evaluation
from tests.mocklm import arithmetic
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: What the held live calls ask (no example of the job's dataset asks it).
LIVE_MARK = "What is 1000 plus"


async def until(condition, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


def live_predict(channel, index: int):
    request = json_format.ParseDict({"program": "programs/live-adder",
                                     "inputs": {"question": f"{LIVE_MARK} {index}?"}}, inference_pb2.PredictRequest())
    return inference_pb2_grpc.InferenceServiceStub(channel).Predict(request)


def live_complete(channel, index: int):
    request = json_format.ParseDict({"model": "mock", "messages": [
        {"role": "user", "content": f"{LIVE_MARK} {index}?"}]}, lm_pb2.CompleteRequest())
    return lm_pb2_grpc.LMServiceStub(channel).Complete(request)


@pytest.mark.parametrize("live_call", [live_predict, live_complete], ids=["Predict", "LM.Complete"])
async def test_a_job_gives_way_to_live_calls_then_takes_its_threads_back(server_factory, mock_lm, live_call):
    arithmetic.install(mock_lm)
    mock_lm.latency_s = 0.01
    release = asyncio.Event()
    mock_lm.add_rule(LIVE_MARK, MockReply(text=arithmetic.reply_text, hold=release))
    running = await server_factory(job_threads_while_live=1, job_live_quiet_s=0.0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await create_dataset(channel, "live-first", arithmetic.examples(80))
        await create_program(channel, "live-adder")

        live = [asyncio.ensure_future(live_call(channel, index)) for index in (1, 2)]
        await until(lambda: mock_lm.completions_in_flight == 2, "both live calls reach the LM")
        mock_lm.max_completions_in_flight = mock_lm.completions_in_flight
        created = await create_evaluation(channel, {
            "program": "programs/live-adder", "dataset": "datasets/live-first",
            "metric": {"exact_match": {}}, "num_threads": 8,
        })

        # The job progresses while the live calls are held, one program at a time.
        jobs = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        get = evaluation_pb2.GetEvaluationRequest(name=created.name)
        while (job := await jobs.GetEvaluation(get)).progress.examples_done < 6:
            assert job.state not in (job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED), job.error
            await asyncio.sleep(0.01)
        assert not any(call.done() for call in live)
        assert mock_lm.max_completions_in_flight == 2 + 1  # the two live calls and one job run at a time

        release.set()
        answered = await asyncio.gather(*live)
        assert len(answered) == 2
        mock_lm.max_completions_in_flight = 0
        done = await wait_evaluation(channel, created.name)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED and done.progress.examples_done == 80
        assert job.progress.examples_done < 80  # work was left when the live calls ended
        # Without live calls the job runs several programs at once again.
        assert mock_lm.max_completions_in_flight > 1


@pytest.mark.parametrize(("overrides", "field"), [
    ({"job_threads_while_live": 0}, "jobs.threads_while_live"),
    ({"job_threads_while_live": 257}, "jobs.threads_while_live"),
    ({"job_live_quiet_s": -0.1}, "jobs.live_quiet_s"),
    ({"job_live_quiet_s": 10.5}, "jobs.live_quiet_s"),
])
async def test_the_live_traffic_settings_are_bounded(overrides, field):
    with pytest.raises(InvalidArgument, match=field):
        dataclasses.replace(Config(), **overrides).validate()

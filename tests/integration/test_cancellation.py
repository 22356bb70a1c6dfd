"""Cancelling any stream -- a server stream, a client stream, a bidi Run -- leaves no unretrieved task
and no error log line on the server (its log is captured: the server runs in this process)."""

from __future__ import annotations

import asyncio
import gc
import logging

import grpc
import pytest
from dspy_grpc.v1 import dataset_pb2, inference_pb2, inference_pb2_grpc, lm_pb2, lm_pb2_grpc
from google.protobuf import json_format

from tests.integration.test_modules import chat, predictor
from tests.integration.test_streaming import WEATHER_REACT, run_start, stream_request
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

COT = {"chainOfThought": {"predictor": predictor("question -> answer")}}


@pytest.fixture
def server_log(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


async def settle() -> None:
    """Let the server finish tearing the call down, and collect what it dropped (unretrieved task
    exceptions are reported when the task is garbage collected)."""

    for _ in range(5):
        await asyncio.sleep(0.2)
        gc.collect()


def assert_quiet(caplog) -> None:
    bad = [f"{r.name}: {r.getMessage()}" for r in caplog.records
           if r.levelno >= logging.WARNING or "never retrieved" in r.getMessage() or "ContextVar" in r.getMessage()]
    assert not bad, bad


async def test_cancelling_a_stream_predict_logs_nothing(channel, mock_lm, server_log):
    mock_lm.enqueue(MockReply(text=chat(reasoning="r", answer="slow"), delay_s=1.0))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    call = stub.StreamPredict(stream_request({"module": COT, "inputs": {"question": "q"}, "lm": {"model": "mock"}}),
                              timeout=20)
    async for _ in call:
        break
    await asyncio.sleep(0.2)
    call.cancel()
    await settle()
    assert_quiet(server_log)


async def test_cancelling_a_stream_complete_mid_stream_logs_nothing(channel, mock_lm, server_log):
    mock_lm.enqueue(MockReply(text=" ".join(f"word{i}" for i in range(200)), chunk_delay_s=0.01))
    stub = lm_pb2_grpc.LMServiceStub(channel)
    request = json_format.ParseDict({"model": "mock", "messages": [{"role": "user", "content": "hi"}],
                                     "options": {"cache": "CACHE_POLICY_BYPASS"}}, lm_pb2.StreamCompleteRequest())
    call = stub.StreamComplete(request, timeout=20)
    received = 0
    async for _ in call:
        received += 1
        if received == 3:
            break
    call.cancel()
    await settle()
    assert_quiet(server_log)


@pytest.mark.parametrize("after", [0, 1, 5, 50])
async def test_cancelling_a_batch_predict_while_results_stream_logs_nothing(channel, server_log, after):
    request = json_format.ParseDict({
        "module": {"predict": {"predictor": {"signature": {"text": "question -> answer"},
                                              "lm": {"dummy": {"auto": True}}}}},
        "inputs": [{"question": f"q{i}"} for i in range(300)], "maxConcurrency": 64,
    }, inference_pb2.BatchPredictRequest())
    call = inference_pb2_grpc.InferenceServiceStub(channel).BatchPredict(request, timeout=20)
    received = 0
    async for _ in call:
        received += 1
        if received >= after:
            break
    call.cancel()
    await settle()
    assert_quiet(server_log)


async def test_cancelling_a_run_waiting_for_a_tool_logs_nothing(channel, mock_lm, server_log):
    mock_lm.enqueue(chat(next_thought="Ask.", next_tool_name="get_weather", next_tool_args={"city": "Rome"}))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    never = asyncio.Event()

    async def messages():
        yield run_start(WEATHER_REACT, {"city": "Rome"})
        await never.wait()

    call = stub.Run(messages(), timeout=20)
    async for event in call:
        if event.WhichOneof("event") == "tool_call":
            break
    call.cancel()
    never.set()  # the client's own request stream ends too (its consumer task is not the server's)
    await settle()
    assert_quiet(server_log)


async def test_cancelling_an_append_examples_stream_logs_nothing(channel, server_log):
    from dspy_grpc.v1 import dataset_pb2_grpc

    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    await stub.CreateDataset(dataset_pb2.CreateDatasetRequest(dataset_id="cancel-append",
                                                              dataset=dataset_pb2.Dataset(input_keys=["question"])))
    never = asyncio.Event()

    async def messages():
        yield dataset_pb2.AppendExamplesRequest(dataset="datasets/cancel-append", request_id="r1")
        await never.wait()

    call = stub.AppendExamples(messages(), timeout=20)
    await asyncio.sleep(0.3)
    call.cancel()
    never.set()
    await settle()
    assert_quiet(server_log)


async def test_a_deadline_ending_a_run_logs_no_error(channel, mock_lm, server_log):
    mock_lm.enqueue(chat(next_thought="Ask.", next_tool_name="get_weather", next_tool_args={"city": "Rome"}))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    never = asyncio.Event()

    async def messages():
        yield run_start(WEATHER_REACT, {"city": "Rome"})
        await never.wait()

    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in stub.Run(messages(), timeout=1.0):
            pass
    never.set()
    await settle()
    assert_quiet(server_log)


async def test_a_run_refused_at_its_start_leaves_no_reader_behind(channel, server_log):
    never = asyncio.Event()

    async def messages():
        start = inference_pb2.RunStart(request=inference_pb2.PredictRequest(program="not a program name"))
        yield inference_pb2.RunRequest(start=start)
        await never.wait()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in inference_pb2_grpc.InferenceServiceStub(channel).Run(messages(), timeout=10):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await asyncio.sleep(0.5)
    never.set()
    await settle()
    assert_quiet(server_log)

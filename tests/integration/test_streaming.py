"""StreamPredict, BatchPredict and Run (tools executed by the caller) through gRPC."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc
from google.protobuf import duration_pb2, json_format, struct_pb2

from tests.integration.grpc_helpers import error_details
from tests.integration.test_modules import chat, predictor
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

MOCK = {"model": "mock"}
COT = {"chainOfThought": {"predictor": predictor("question -> answer")}}


def stream_request(body: dict) -> inference_pb2.StreamPredictRequest:
    return json_format.ParseDict(body, inference_pb2.StreamPredictRequest())


async def collect(call) -> list[inference_pb2.PredictEvent]:
    return [event async for event in call]


def deltas(events, field: str) -> list[inference_pb2.FieldDelta]:
    return [e.field_delta for e in events if e.WhichOneof("event") == "field_delta" and e.field_delta.field == field]


@pytest.mark.parametrize("adapter", ["ADAPTER_KIND_CHAT", "ADAPTER_KIND_JSON"])
async def test_stream_predict_sends_field_deltas_before_the_final_prediction(channel, mock_lm, adapter):
    module = {"chainOfThought": {"predictor": predictor("question -> answer", adapter=adapter)}}
    # Word by word with a pause: deltas that queue up while the server writes are sent as one.
    mock_lm.enqueue(MockReply(chunk_delay_s=0.005))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    events = await collect(stub.StreamPredict(stream_request(
        {"module": module, "inputs": {"question": f"Stream me ({adapter}) word by word"}, "lm": MOCK}), timeout=20))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "module_started" and kinds[-1] == "prediction" and kinds[-2] == "module_finished"
    final = json_format.MessageToDict(events[-1].prediction.outputs)
    for field in ("reasoning", "answer"):
        pieces = deltas(events, field)
        assert len(pieces) > 3, f"{field} arrived in {len(pieces)} pieces"
        assert all(p.predictor == "predict" for p in pieces)
        assert "".join(p.text for p in pieces) == final[field]
        assert pieces[-1].last and not any(p.last for p in pieces[:-1])
    assert kinds.index("field_delta") < kinds.index("prediction")
    assert mock_lm.last_request.json["stream"] is True


async def test_a_cached_answer_streams_no_deltas_only_the_prediction(channel, mock_lm):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    body = {"module": COT, "inputs": {"question": "Cache this one"}, "lm": MOCK, "includeTrace": True}
    first = await collect(stub.StreamPredict(stream_request(body), timeout=20))
    second = await collect(stub.StreamPredict(stream_request(body), timeout=20))
    assert deltas(first, "answer")
    assert not [e for e in second if e.WhichOneof("event") == "field_delta"]
    assert second[-1].prediction.outputs == first[-1].prediction.outputs
    assert second[-1].prediction.trace[0].cache_hit
    assert len(mock_lm.completion_requests) == 1


async def test_stream_predict_reports_tool_calls(channel, mock_lm):
    mock_lm.enqueue(
        chat(next_thought="Add.", next_tool_name="calculator", next_tool_args={"expression": "1+1"}),
        chat(next_thought="Done.", next_tool_name="finish", next_tool_args={}),
        chat(reasoning="It is 2.", answer="2"),
    )
    module = {"react": {"predictor": predictor("question -> answer"),
                        "tools": [{"name": "calculator", "builtin": "calculator"}]}}
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    events = await collect(stub.StreamPredict(stream_request({"module": module, "inputs": {"question": "1+1"},
                                                              "lm": MOCK}), timeout=20))
    started = [e.tool_call_started for e in events if e.WhichOneof("event") == "tool_call_started"]
    finished = [e.tool_call_finished for e in events if e.WhichOneof("event") == "tool_call_finished"]
    assert [s.tool for s in started] == ["calculator", "finish"]
    assert json_format.MessageToDict(started[0].args) == {"expression": "1+1"}
    assert finished[0].call_id == started[0].call_id and finished[0].observation.number_value == 2
    assert json_format.MessageToDict(finished[0].args) == {"expression": "1+1"}
    modules = [(e.module_started.module, e.module_started.kind) for e in events
               if e.WhichOneof("event") == "module_started"]
    assert modules == [("", "react")]
    assert deltas(events, "next_thought")[0].predictor == "react"


async def test_cancelling_a_stream_stops_the_work_upstream(channel, mock_lm):
    graph = {"graph": {
        "steps": [
            {"name": "first", "module": {"predict": {"predictor": predictor("question -> answer")}},
             "inputs": {"question": "inputs.question"}},
            {"name": "second", "module": {"predict": {"predictor": predictor("answer -> summary")}},
             "inputs": {"answer": "first.answer"}},
        ],
        "outputs": {"summary": "second.summary"},
    }}
    mock_lm.enqueue(MockReply(text=chat(answer="slow"), delay_s=1.0))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    call = stub.StreamPredict(stream_request({"module": graph, "inputs": {"question": "q"}, "lm": MOCK}), timeout=20)
    async for event in call:
        if event.WhichOneof("event") == "module_started" and event.module_started.module == "first":
            break
    await asyncio.sleep(0.2)  # the first LM request is in flight
    assert len(mock_lm.completion_requests) == 1
    call.cancel()
    await asyncio.sleep(1.5)  # long enough for the slow reply and a second step, had the run gone on
    assert len(mock_lm.completion_requests) == 1
    assert call.cancelled()


async def test_batch_predict_streams_each_result_with_its_index(channel, mock_lm):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = json_format.ParseDict({
        "module": {"predict": {"predictor": predictor("question -> answer")}},
        "inputs": [{"question": "a"}, {"nope": "b"}, {"question": "c"}],
        "lm": MOCK, "maxConcurrency": 2,
    }, inference_pb2.BatchPredictRequest())
    results = {r.index: r async for r in stub.BatchPredict(request, timeout=20)}
    assert sorted(results) == [0, 1, 2]
    assert results[0].prediction.outputs["answer"] == "mock answer for: a"
    assert results[2].prediction.outputs["answer"] == "mock answer for: c"
    error = results[1].error
    assert error.code == "INVALID_ARGUMENT" and error.reason == "INVALID_ARGUMENT"
    assert {v.field for v in error.field_violations} == {"inputs.question", "inputs.nope"}


async def test_batch_predict_with_a_bad_target_fails_the_stream(channel):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = inference_pb2.BatchPredictRequest(program="programs/missing", inputs=[struct_pb2.Struct()])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.BatchPredict(request, timeout=10):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


# --------------------------------------------------------------------------- Run: caller tools

WEATHER_REACT = {"react": {"predictor": predictor("city -> report"), "tools": [{
    "name": "get_weather", "description": "The weather in a city.",
    "argsJsonSchema": json.dumps({"city": {"type": "string"}}),
}]}}


def run_start(module: dict, inputs: dict, *, tools=("get_weather",), tool_timeout_s: float | None = None):
    start = inference_pb2.RunStart(
        request=json_format.ParseDict({"module": module, "inputs": inputs, "lm": MOCK}, inference_pb2.PredictRequest()),
        tools=list(tools),
    )
    if tool_timeout_s is not None:
        start.tool_timeout.CopyFrom(duration_pb2.Duration(nanos=int(tool_timeout_s * 1e9)))
    return inference_pb2.RunRequest(start=start)


async def test_react_uses_a_tool_implemented_by_the_caller(channel, mock_lm):
    mock_lm.enqueue(
        chat(next_thought="Ask the tool.", next_tool_name="get_weather", next_tool_args={"city": "Oslo"}),
        chat(next_thought="Got it.", next_tool_name="finish", next_tool_args={}),
        chat(reasoning="The tool said so.", report="Snow in Oslo"),
    )
    answers: asyncio.Queue = asyncio.Queue()
    calls = []

    async def messages():
        yield run_start(WEATHER_REACT, {"city": "Oslo"})
        while True:
            yield await answers.get()

    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    final = None
    async for event in stub.Run(messages(), timeout=20):
        kind = event.WhichOneof("event")
        if kind == "tool_call":
            calls.append(event.tool_call)
            args = json_format.MessageToDict(event.tool_call.args)
            output = struct_pb2.Value(string_value=f"snow in {args['city']}, -3 degrees")
            answers.put_nowait(inference_pb2.RunRequest(
                tool_result=inference_pb2.ToolResult(call_id=event.tool_call.call_id, output=output)))
        elif kind == "prediction":
            final = event.prediction
    assert [c.tool for c in calls] == ["get_weather"]
    outputs = json_format.MessageToDict(final.outputs)
    assert outputs["report"] == "Snow in Oslo"
    assert outputs["trajectory"]["observation_0"] == "snow in Oslo, -3 degrees"
    assert "[[ ## observation_0 ## ]]\nsnow in Oslo, -3 degrees" in mock_lm.completion_requests[1].last_user_text
    assert "get_weather, whose description is <desc>The weather in a city.</desc>. It takes arguments " \
           "{'city': {'type': 'string'}}." in mock_lm.completion_requests[0].messages[0]["content"]


async def test_a_tool_error_from_the_caller_is_an_observation(channel, mock_lm):
    mock_lm.enqueue(
        chat(next_thought="Ask.", next_tool_name="get_weather", next_tool_args={"city": "Atlantis"}),
        chat(next_thought="Give up.", next_tool_name="finish", next_tool_args={}),
        chat(reasoning="r", report="unknown"),
    )
    answers: asyncio.Queue = asyncio.Queue()

    async def messages():
        yield run_start(WEATHER_REACT, {"city": "Atlantis"})
        while True:
            yield await answers.get()

    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    final = None
    async for event in stub.Run(messages(), timeout=20):
        if event.WhichOneof("event") == "tool_call":
            answers.put_nowait(inference_pb2.RunRequest(tool_result=inference_pb2.ToolResult(
                call_id=event.tool_call.call_id, error="no such city")))
        elif event.WhichOneof("event") == "prediction":
            final = event.prediction
    observation = json_format.MessageToDict(final.outputs)["trajectory"]["observation_0"]
    assert observation == "Execution error in get_weather: no such city"


async def _never_answer(stub, start, timeout):
    async def messages():
        yield start
        await asyncio.sleep(30)  # never answers, never closes

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Run(messages(), timeout=timeout):
            pass
    return caught.value


async def test_a_caller_that_never_answers_ends_with_deadline_exceeded(channel, mock_lm):
    mock_lm.enqueue(chat(next_thought="Ask.", next_tool_name="get_weather", next_tool_args={"city": "Rome"}))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    error = await _never_answer(stub, run_start(WEATHER_REACT, {"city": "Rome"}), timeout=1.5)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(mock_lm.completion_requests) == 1


async def test_a_tool_timeout_ends_the_run_with_deadline_exceeded(channel, mock_lm):
    mock_lm.enqueue(chat(next_thought="Ask.", next_tool_name="get_weather", next_tool_args={"city": "Rome"}))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    error = await _never_answer(stub, run_start(WEATHER_REACT, {"city": "Rome"}, tool_timeout_s=0.3), timeout=10)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_details(error)["reason"] == "TOOL_TIMEOUT"


async def test_run_fails_when_the_caller_does_not_declare_a_needed_tool(channel, mock_lm):
    async def messages():
        yield run_start(WEATHER_REACT, {"city": "Rome"}, tools=())

    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Run(messages(), timeout=10):
            pass
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)["metadata"]["tools"] == "get_weather"

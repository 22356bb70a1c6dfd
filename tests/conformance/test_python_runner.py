"""The conformance scenarios through the Python client (``dspy_grpc``).

Predict goes through ``Client.predict`` (typed Prediction, typed errors); the other RPCs through the
generated stubs the client ships, with errors turned into the client's typed exceptions. Run's
caller tools are Python functions here.
"""

from __future__ import annotations

import json

import queue
from collections.abc import Iterable, Iterator
from typing import Any

import grpc
import pytest
from dspy_grpc import Client, DspyGrpcError
from dspy_grpc.errors import from_rpc_error
from dspy_grpc.v1 import corpus_pb2, corpus_pb2_grpc, inference_pb2, inference_pb2_grpc, program_pb2, program_pb2_grpc
from google.protobuf import json_format, message_factory

from .conftest import run_id
from .scenarios import STREAMING_RPCS, Scenario, error_problems, load, matches

SERVICES = {
    "InferenceService": (inference_pb2, inference_pb2_grpc.InferenceServiceStub),
    "ProgramService": (program_pb2, program_pb2_grpc.ProgramServiceStub),
    "CorpusService": (corpus_pb2, corpus_pb2_grpc.CorpusServiceStub),
}


@pytest.fixture(scope="module")
def client(conformance_address: str) -> Iterator[Client]:
    with Client(conformance_address) as c:
        yield c


@pytest.fixture(scope="module")
def channel(conformance_address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(conformance_address) as chan:
        yield chan


def predict(client: Client, request_json: dict[str, Any]) -> dict[str, Any]:
    request = json_format.ParseDict(request_json, inference_pb2.PredictRequest())
    target = request.program if request.WhichOneof("target") == "program" else request.module
    prediction = client.predict(
        target, json.loads(request.inputs_json) if request.inputs_json else json_format.MessageToDict(request.inputs),
        lm=request.lm if request.HasField("lm") else None,
        include_trace=request.include_trace,
    )
    return json_format.MessageToDict(inference_pb2.PredictResponse(prediction=prediction.raw))


def call_stub(channel: grpc.Channel, rpc: str, request_json: dict[str, Any]) -> dict[str, Any]:
    service, method = rpc.split("/")
    module, stub_class = SERVICES[service]
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[method]
    request = json_format.ParseDict(request_json, message_factory.GetMessageClass(descriptor.input_type)())
    try:
        response = getattr(stub_class(channel), method)(request, timeout=30)
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    return json_format.MessageToDict(response)


def add(a: float, b: float) -> float:
    return a + b


def fail() -> None:
    raise RuntimeError("failed on purpose")


TOOLS = {"add": add, "fail": fail}


def tool_result(call: inference_pb2.ToolCall) -> inference_pb2.RunRequest:
    result = inference_pb2.ToolResult(call_id=call.call_id)
    try:
        output = TOOLS[call.tool](**json_format.MessageToDict(call.args))
        json_format.ParseDict(output, result.output)
    except Exception as error:  # noqa: BLE001 - the agent observes any tool failure
        result.error = str(error)
    return inference_pb2.RunRequest(tool_result=result)


def summarize_stream(events: Iterable[inference_pb2.PredictEvent], answer=None) -> dict[str, Any]:
    """The stream summary of tests/conformance/scenarios.py; ``answer`` replies to Run's tool calls."""

    summary: dict[str, Any] = {"fieldText": {}, "toolCalls": []}
    calls: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event.WhichOneof("event")
        if kind == "field_delta":
            delta = event.field_delta
            summary["fieldText"][delta.field] = summary["fieldText"].get(delta.field, "") + delta.text
        elif kind == "tool_call_started":
            started = event.tool_call_started
            calls[started.call_id] = {"tool": started.tool, "args": json_format.MessageToDict(started.args)}
            summary["toolCalls"].append(calls[started.call_id])
        elif kind == "tool_call_finished":
            finished = event.tool_call_finished
            call = calls.setdefault(finished.call_id, {"tool": finished.tool})
            call["observation"] = json_format.MessageToDict(finished.observation)
            if finished.error:
                call["error"] = finished.error
        elif kind == "tool_call" and answer is not None:
            answer(event.tool_call)
        elif kind == "prediction":
            summary["prediction"] = json_format.MessageToDict(event.prediction)
    return summary


def run_with_tools(channel: grpc.Channel, request_json: dict[str, Any]) -> dict[str, Any]:
    start = json_format.ParseDict(request_json, inference_pb2.RunStart())
    outgoing: queue.Queue[inference_pb2.RunRequest | None] = queue.Queue()
    outgoing.put(inference_pb2.RunRequest(start=start))

    def requests() -> Iterator[inference_pb2.RunRequest]:
        while (message := outgoing.get()) is not None:
            yield message

    call = inference_pb2_grpc.InferenceServiceStub(channel).Run(requests(), timeout=30)
    try:
        return summarize_stream(call, answer=lambda tool_call: outgoing.put(tool_result(tool_call)))
    finally:
        outgoing.put(None)


def call_streaming(channel: grpc.Channel, rpc: str, request_json: dict[str, Any]) -> dict[str, Any]:
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    try:
        if rpc == "CorpusService/AppendDocuments":
            request = json_format.ParseDict(request_json, corpus_pb2.AppendDocumentsRequest())
            response = corpus_pb2_grpc.CorpusServiceStub(channel).AppendDocuments(iter([request]), timeout=30)
            return json_format.MessageToDict(response)
        if rpc == "InferenceService/Run":
            return run_with_tools(channel, request_json)
        if rpc == "InferenceService/StreamPredict":
            request = json_format.ParseDict(request_json, inference_pb2.StreamPredictRequest())
            return summarize_stream(stub.StreamPredict(request, timeout=30))
        request = json_format.ParseDict(request_json, inference_pb2.BatchPredictRequest())
        items = []
        for item in stub.BatchPredict(request, timeout=30):
            if item.WhichOneof("result") == "prediction":
                items.append({"index": item.index, "prediction": json_format.MessageToDict(item.prediction)})
            else:
                error = item.error
                items.append({"index": item.index, "error": {
                    "code": error.code, "reason": error.reason, "fieldViolations": [v.field for v in error.field_violations],
                }})
        return {"items": sorted(items, key=lambda i: i["index"])}
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error


def run_scenario(scenario: Scenario, client: Client, channel: grpc.Channel) -> list[str]:
    problems: list[str] = []
    for index, step in enumerate(scenario.steps):
        where = f"step {index} ({step['rpc']})"
        expect = step.get("expect", {})
        try:
            if step["rpc"] == "InferenceService/Predict":
                response = predict(client, step["request"])
            elif step["rpc"] in STREAMING_RPCS:
                response = call_streaming(channel, step["rpc"], step["request"])
            else:
                response = call_stub(channel, step["rpc"], step["request"])
        except DspyGrpcError as error:
            if "error" not in expect:
                return problems + [f"{where}: unexpected error {error}"]
            fields = [field for field, _ in error.field_violations]
            problems += [f"{where}: {p}" for p in error_problems(expect["error"], error.code.name, error.reason, fields)]
            continue
        if "error" in expect:
            problems.append(f"{where}: expected {expect['error']}, got a response")
        elif "response" in expect:
            problems += [f"{where}: {p}" for p in matches(expect["response"], response)]
    return problems


@pytest.mark.parametrize("name", [s.name for s in load()])
def test_scenario(name: str, client: Client, channel: grpc.Channel) -> None:
    scenario = next(s for s in load(run_id("py")) if s.name == name)
    assert run_scenario(scenario, client, channel) == []

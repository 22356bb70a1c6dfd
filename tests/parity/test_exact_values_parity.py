"""Values keep their JSON identity end to end: integers stay integers, floats stay floats and object
keys keep their order, in inputs, demos, outputs, untyped fields, dataset examples, traces and ReAct
tool arguments and results. Every prompt is compared byte for byte with what DSPy 3.4.1 renders for the
same Python values; every returned value is compared (with its key order and int/float kind) with what
DSPy parses.
"""

from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

import dspy
import grpc
import pytest
from dspy_grpc.v1 import (
    dataset_pb2,
    dataset_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    module_pb2,
    signature_pb2,
)
from google.protobuf import json_format

from dspy_grpc_server.api.convert import signature_to_proto
from dspy_grpc_server.core.signature import Field, Role, Signature
from dspy_grpc_server.core.types import enum_type, parse_type
from tests.integration.grpc_helpers import error_details

pytestmark = pytest.mark.asyncio(loop_scope="session")

KINDS = {"chat": module_pb2.ADAPTER_KIND_CHAT, "json": module_pb2.ADAPTER_KIND_JSON, "xml": module_pb2.ADAPTER_KIND_XML}
ADAPTERS = {"chat": dspy.ChatAdapter, "json": dspy.JSONAdapter, "xml": dspy.XMLAdapter}


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


NAMES = {"Level": enum_type("Level", [1, 2], ["LOW", "HIGH"])}


def ordered(text: str) -> Any:
    """JSON text as nested (key, value) pair lists: equal only when key order and int/float kinds are too."""

    def kinds(value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(item, tuple) for item in value) and value:
            return [(key, kinds(item)) for key, item in value]
        if isinstance(value, list):
            return [kinds(item) for item in value]
        return (type(value).__name__, value)

    return kinds(json.loads(text, object_pairs_hook=list))


@dataclass
class ExactCase:
    id: str
    fields: list[tuple[str, str, str, Any]]  # name, "in"/"out", our annotation, DSPy's annotation
    inputs: dict[str, Any]  # JSON values, sent exactly; DSPy gets the same Python values
    demo: dict[str, Any]

    def ours(self) -> Signature:
        return Signature(tuple(
            Field(name, Role.INPUT if role == "in" else Role.OUTPUT, parse_type(text, names=NAMES))
            for name, role, text, _ in self.fields)).validate()

    def theirs(self) -> type:
        return dspy.Signature({name: (py, (dspy.InputField if role == "in" else dspy.OutputField)())
                               for name, role, _, py in self.fields})

    def dspy_value(self, name: str, value: Any) -> Any:
        annotation = next(py for n, _, _, py in self.fields if n == name)
        if annotation is dspy.History:
            return dspy.History(messages=value["messages"])
        return Level(value) if annotation is Level else value

    def dspy_values(self, values: dict[str, Any]) -> dict[str, Any]:
        return {key: self.dspy_value(key, value) for key, value in values.items()}


NESTED = {"zeta": 1, "alpha": 2.0, "mid": [3, {"y": 1.5, "b": None, "a": True}], "neg": -7, "big": 2**60}
CASES = [
    ExactCase("untyped_numbers", [("question", "in", "str", str), ("count", "in", "str", str),
                                  ("ratio", "in", "str", str), ("answer", "out", "str", str)],
              {"question": "How many?", "count": 1, "ratio": 2.0},
              {"question": "Before?", "count": 3, "ratio": 0.5, "answer": "7"}),
    ExactCase("any_nested_unsorted", [("data", "in", "Any", Any), ("info", "in", "dict[str, Any]", dict[str, Any]),
                                      ("summary", "out", "dict[str, Any]", dict[str, Any])],
              {"data": NESTED, "info": {"b": 1, "a": 2, "m": 3, "z": 4}},
              {"data": {"q": 1}, "info": {"y": 2.5, "x": 1}, "summary": {"b": 1, "a": 2.0, "list": [1, 2.5]}}),
    ExactCase("typed_numbers_as_given", [("n", "in", "int", int), ("x", "in", "float", float),
                                         ("ids", "in", "list[int]", list[int]), ("total", "out", "float", float)],
              {"n": 4, "x": 3, "ids": ["1", "2", 3]},
              {"n": 1.0, "x": 2, "ids": [5], "total": 10}),
    ExactCase("int_literal_and_enum", [("level", "in", "Level", Level), ("pick", "in", "Literal[1, 2, 3]",
                                                                         Literal[1, 2, 3]),
                                       ("choice", "out", "Literal[1, 2, 3]", Literal[1, 2, 3]),
                                       ("grade", "out", "Level", Level)],
              {"level": 2, "pick": 3}, {"level": 1, "pick": 1, "choice": 2, "grade": 1}),
]
CASES += [
    ExactCase("untyped_json_edge_values", [("blob", "in", "Any", Any), ("note", "in", "str", str),
                                           ("result", "out", "Any", Any)],
              {"blob": {"exp": 1e-05, "neg_zero": -0.0, "big": 12345678901234567890, "t": True, "n": None,
                        "ünï": "çødé «x»", "nested": [[1, 2.0], {"2": "b", "1": "a"}]}, "note": 1.5e300},
              {"blob": [], "note": -3, "result": {"z": [], "a": {}}}),
    ExactCase("optional_and_union_numbers", [("maybe", "in", "Optional[float]", Optional[float]),
                                             ("either", "in", "Union[int, str]", Union[int, str]),
                                             ("scores", "in", "list[Optional[float]]", list[Optional[float]]),
                                             ("best", "out", "dict[str, float]", dict[str, float])],
              {"maybe": 3, "either": 4, "scores": [1, None, 2.5]},
              {"maybe": 1.0, "either": "x", "scores": [], "best": {"b": 1, "a": 0.5}}),
    ExactCase("history_with_numbers", [("question", "in", "str", str), ("history", "in", "History", dspy.History),
                                       ("answer", "out", "int", int)],
              {"question": "And 3 + 4?", "history": {"messages": [
                  {"question": "1 + 1?", "answer": 2}, {"question": "half of 3?", "answer": 1.5}]}},
              {"question": "2 + 2?", "history": {"messages": []}, "answer": 4}),
]
CASE_IDS = [case.id for case in CASES]


def module_for(case: ExactCase, adapter: str, *, demo_json: bool = True) -> module_pb2.ModuleSpec:
    example = signature_pb2.Example()
    if demo_json:
        example.data_json = json.dumps(case.demo)
    else:
        example.data.update(case.demo)
    predictor = module_pb2.PredictorSpec(signature=signature_to_proto(case.ours()), adapter=KINDS[adapter],
                                         demos=[example])
    return module_pb2.ModuleSpec(predict=module_pb2.PredictModule(predictor=predictor))


def wire_messages(response: inference_pb2.RenderPromptResponse) -> list[dict]:
    return [{"role": m.role, "content": m.content} for m in response.messages]


def expected_messages(case: ExactCase, adapter: str) -> list[dict]:
    return ADAPTERS[adapter]().format(case.theirs(), [case.dspy_values(case.demo)], case.dspy_values(case.inputs))


@pytest.mark.parametrize("adapter", sorted(KINDS))
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_exact_inputs_and_demos_render_as_dspy(channel, case, adapter):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.RenderPrompt(inference_pb2.RenderPromptRequest(
        module=module_for(case, adapter), inputs_json=json.dumps(case.inputs)))
    assert wire_messages(response) == expected_messages(case, adapter)
    assert json.loads(response.request_options_json) == json_format.MessageToDict(response.request_options)


async def test_literal_values_given_as_struct_numbers_are_integers(channel):
    """`values` (doubles) without `values_json`: whole numbers are read as integers, as written."""

    case = CASES[CASE_IDS.index("int_literal_and_enum")]
    module = module_for(case, "chat")
    for field in module.predict.predictor.signature.fields:
        del field.type.values_json[:]
        assert field.type.kind not in (signature_pb2.TYPE_KIND_LITERAL, signature_pb2.TYPE_KIND_ENUM) \
            or field.type.values[0].number_value == 1.0
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.RenderPrompt(inference_pb2.RenderPromptRequest(
        module=module, inputs_json=json.dumps(case.inputs)))
    assert wire_messages(response) == expected_messages(case, "chat")
    assert "Literal[1, 2, 3]" in response.messages[0].content


async def test_struct_inputs_are_read_canonically(channel):
    """The convenient Struct form: whole numbers become integers (up to 2**53, beyond which doubles
    are not exact), object keys sorted."""

    case = CASES[CASE_IDS.index("any_nested_unsorted")]
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = inference_pb2.RenderPromptRequest(module=module_for(case, "chat"))
    request.inputs.update(case.inputs)
    response = await stub.RenderPrompt(request)

    def canonical(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: canonical(value[key]) for key in sorted(value)}
        if isinstance(value, list):
            return [canonical(item) for item in value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value) if float(value).is_integer() and abs(value) <= 2**53 else float(value)
        return value

    inputs = canonical(case.inputs)
    expected = dspy.ChatAdapter().format(case.theirs(), [case.demo], inputs)
    assert wire_messages(response) == expected


async def test_bad_json_text_names_its_field(channel):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    case = CASES[0]
    for bad, field in (('{"question": ', "inputs_json"), ("[1, 2]", "inputs_json"), ('{"q": NaN}', "inputs_json")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RenderPrompt(inference_pb2.RenderPromptRequest(module=module_for(case, "chat"),
                                                                      inputs_json=bad))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in error_details(caught.value)["violations"]
    module = module_for(case, "chat")
    module.predict.predictor.demos[0].data_json = "{oops"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RenderPrompt(inference_pb2.RenderPromptRequest(module=module, inputs_json=json.dumps(case.inputs)))
    assert "module.predict.predictor.demos[0].data_json" in error_details(caught.value)["violations"]


# ------------------------------------------------------------------------------------------------ outputs


OUTPUT_CASE = ExactCase("outputs", [("question", "in", "str", str), ("count", "out", "int", int),
                                    ("ratio", "out", "float", float), ("info", "out", "dict[str, Any]", dict[str, Any]),
                                    ("anything", "out", "Any", Any), ("grade", "out", "Level", Level)],
                        {"question": "?"}, {})
ANSWER = {"count": 3, "ratio": 2, "info": {"zeta": 1, "alpha": 2.5, "mid": {"y": 1, "b": 2.0}},
          "anything": [1, 1.0, {"b": 0, "a": -1}], "grade": "HIGH"}


def chat_completion(values: dict[str, Any]) -> str:
    return "".join(f"[[ ## {k} ## ]]\n{v if isinstance(v, str) else json.dumps(v)}\n\n"
                   for k, v in values.items()) + "[[ ## completed ## ]]"


def dspy_outputs_json(completion: str) -> str:
    parsed = dspy.ChatAdapter().parse(OUTPUT_CASE.theirs(), completion)
    return json.dumps({k: v.value if isinstance(v, enum.Enum) else v for k, v in parsed.items()})


async def test_parsed_outputs_keep_integers_floats_and_key_order(channel):
    completion = chat_completion(ANSWER)
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.ParseCompletion(inference_pb2.ParseCompletionRequest(
        module=module_for(OUTPUT_CASE, "chat"), completion=completion))
    assert ordered(response.outputs_json) == ordered(dspy_outputs_json(completion))
    assert json.loads(response.outputs_json)["ratio"] == 2.0 and '"ratio": 2.0' in response.outputs_json


async def test_predicted_outputs_and_trace_are_exact(channel, mock_lm):
    mock_lm.enqueue(chat_completion(ANSWER))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    inputs = {"question": "Count?"}
    response = await stub.Predict(inference_pb2.PredictRequest(
        module=module_for(OUTPUT_CASE, "chat"), inputs_json=json.dumps(inputs), include_trace=True,
        lm=module_pb2.LMSpec(model="mock")), timeout=20)
    prediction = response.prediction
    expected = dspy_outputs_json(chat_completion(ANSWER))
    assert ordered(prediction.outputs_json) == ordered(expected)
    assert ordered(prediction.trace[0].outputs_json) == ordered(expected)
    assert ordered(prediction.trace[0].inputs_json) == ordered(json.dumps(inputs))
    # The convenient form still carries the same values.
    assert json_format.MessageToDict(prediction.outputs) == json.loads(expected)


async def test_dataset_examples_round_trip_exactly(channel):
    stub = dataset_pb2_grpc.DatasetServiceStub(channel)
    await stub.CreateDataset(dataset_pb2.CreateDatasetRequest(dataset_id="exact-values", dataset=dataset_pb2.Dataset()))
    data = [{"question": "q", "answer": 4, "meta": {"z": 1, "a": 1.0}}, {"question": "r", "answer": 2.5}]

    async def messages():
        yield dataset_pb2.AppendExamplesRequest(dataset="datasets/exact-values", request_id="append-1", examples=[
            signature_pb2.Example(data_json=json.dumps(item), input_keys=["question"]) for item in data])

    await stub.AppendExamples(messages())
    listed = await stub.ListExamples(dataset_pb2.ListExamplesRequest(parent="datasets/exact-values"))
    assert [ordered(e.example.data_json) for e in listed.examples] == [ordered(json.dumps(d)) for d in data]


# ------------------------------------------------------------------------------------------------- ReAct


def lookup(zeta: int, alpha: float) -> dict:
    """Looks things up."""
    return {}


REACT_SIGNATURE = Signature((Field("question", Role.INPUT, parse_type("str")),
                             Field("answer", Role.OUTPUT, parse_type("str")))).validate()
TOOL_ARGS = {"zeta": 1, "alpha": 2.5}
TOOL_RESULT = {"temp": 21, "unit": "C", "b": 0.5, "nested": {"y": 1, "x": [2, 2.0]}}


async def test_react_tool_args_and_results_keep_their_identity(channel, mock_lm):
    mock_lm.enqueue(
        chat_completion({"next_thought": "Look it up.", "next_tool_name": "lookup", "next_tool_args": TOOL_ARGS}),
        chat_completion({"next_thought": "Done.", "next_tool_name": "finish", "next_tool_args": {}}),
        chat_completion({"reasoning": "r", "answer": "a"}),
    )
    schema = dspy.Tool(lookup).args
    react = module_pb2.ReActModule(
        predictor=module_pb2.PredictorSpec(signature=signature_to_proto(REACT_SIGNATURE)),
        tools=[module_pb2.ToolSpec(name="lookup", description="Looks things up.", args_json_schema=json.dumps(schema))])
    start = inference_pb2.RunStart(request=inference_pb2.PredictRequest(
        module=module_pb2.ModuleSpec(react=react), inputs_json='{"question": "q"}',
        lm=module_pb2.LMSpec(model="mock")), tools=["lookup"])
    answers: asyncio.Queue = asyncio.Queue()

    async def messages():
        yield inference_pb2.RunRequest(start=start)
        while True:
            yield await answers.get()

    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    started = finished = call = None
    async for event in stub.Run(messages(), timeout=20):
        kind = event.WhichOneof("event")
        if kind == "tool_call":
            call = event.tool_call
            answers.put_nowait(inference_pb2.RunRequest(tool_result=inference_pb2.ToolResult(
                call_id=call.call_id, output_json=json.dumps(TOOL_RESULT))))
        elif kind == "tool_call_started" and started is None:
            started = event.tool_call_started
        elif kind == "tool_call_finished" and finished is None:
            finished = event.tool_call_finished
    assert ordered(call.args_json) == ordered(json.dumps(TOOL_ARGS))
    assert ordered(started.args_json) == ordered(json.dumps(TOOL_ARGS))
    assert ordered(finished.observation_json) == ordered(json.dumps(TOOL_RESULT))

    trajectory = {"thought_0": "Look it up.", "tool_name_0": "lookup", "tool_args_0": TOOL_ARGS,
                  "observation_0": TOOL_RESULT}
    rendered = dspy.ChatAdapter().format_user_message_content(
        dspy.Signature(f"{', '.join(trajectory)} -> x"), trajectory)
    assert f"[[ ## trajectory ## ]]\n{rendered}" in mock_lm.completion_requests[1].last_user_text


# ------------------------------------------------------------------------------ across server processes


async def _serve(tmp_path, hash_seed: str):
    import os
    import sys

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dspy_grpc_server", "serve", "--port", "0",
        "--database-url", f"sqlite+aiosqlite:///{tmp_path / f'db-{hash_seed}.sqlite'}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
    )
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line, "server exited before listening"
        if line.startswith("dspy-grpc listening on"):
            return process, int(line.rsplit(":", 1)[1])


async def _render_both_ways(port: int) -> list[tuple[list, str]]:
    case = CASES[CASE_IDS.index("any_nested_unsorted")]
    struct_request = inference_pb2.RenderPromptRequest(module=module_for(case, "json", demo_json=False))
    struct_request.inputs.update(case.inputs)
    exact_request = inference_pb2.RenderPromptRequest(module=module_for(case, "json"),
                                                      inputs_json=json.dumps(case.inputs))
    parse_request = inference_pb2.ParseCompletionRequest(module=module_for(OUTPUT_CASE, "chat"),
                                                         completion=chat_completion(ANSWER))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        out = []
        for request in (struct_request, exact_request):
            response = await stub.RenderPrompt(request, timeout=30)
            out.append(([{"role": m.role, "content": m.content} for m in response.messages],
                        response.request_options_json))
        parsed = await stub.ParseCompletion(parse_request, timeout=30)
        out.append(([], parsed.outputs_json))
        return out


async def test_the_same_request_renders_the_same_bytes_in_processes_with_different_hash_seeds(tmp_path):
    results = []
    for seed in ("1", "4242"):
        process, port = await _serve(tmp_path, seed)
        try:
            results.append(await _render_both_ways(port))
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)
    assert results[0] == results[1]
    case = CASES[CASE_IDS.index("any_nested_unsorted")]
    assert results[0][1][0] == expected_messages(case, "json")


# ------------------------------------------------------------------------------------ the Python client


async def test_the_python_client_keeps_key_order_integers_and_floats(server, mock_lm):
    import dspy_grpc

    class Describe(dspy_grpc.Signature):
        data: Any = dspy_grpc.InputField()
        count: str = dspy_grpc.InputField()
        summary: dict[str, Any] = dspy_grpc.OutputField()

    theirs = dspy.Signature({"data": (Any, dspy.InputField()), "count": (str, dspy.InputField()),
                             "summary": (dict[str, Any], dspy.OutputField())}, Describe.__doc__ or None)
    inputs = {"data": NESTED, "count": 1}
    demo = {"data": {"y": 2.0, "x": 1}, "count": 2.5, "summary": {"b": 1, "a": 1.0}}
    async with dspy_grpc.AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as client:
        for adapter in sorted(ADAPTERS):
            rendered = await dspy_grpc.Predict(Describe, client=client, adapter=adapter, demos=[demo]).arender(**inputs)
            reference = dspy.Predict(theirs).signature
            assert rendered.messages == ADAPTERS[adapter]().format(reference, [demo], inputs)
        answer = {"summary": {"zeta": 1, "alpha": 1.0, "mid": [2, 2.5]}}
        completion = chat_completion(answer)
        parsed = await dspy_grpc.Predict(Describe, client=client).aparse(completion)
        assert ordered(json.dumps(parsed)) == ordered(json.dumps(dict(dspy.ChatAdapter().parse(theirs, completion))))

        seen = []

        def lookup(zeta: int, alpha: float) -> dict:
            """Looks things up."""
            seen.append((zeta, alpha))
            return TOOL_RESULT

        mock_lm.enqueue(
            chat_completion({"next_thought": "Look it up.", "next_tool_name": "lookup", "next_tool_args": TOOL_ARGS}),
            chat_completion({"next_thought": "Done.", "next_tool_name": "finish", "next_tool_args": {}}),
            chat_completion({"reasoning": "r", "answer": "a"}),
        )
        agent = dspy_grpc.ReAct("question -> answer", tools=[lookup], client=client, lm="mock")
        prediction = await agent.acall(question="q")
    assert seen == [(1, 2.5)] and [type(v) for v in seen[0]] == [int, float]
    assert ordered(json.dumps(prediction.trajectory["tool_args_0"])) == ordered(json.dumps(TOOL_ARGS))
    assert ordered(json.dumps(prediction.trajectory["observation_0"])) == ordered(json.dumps(TOOL_RESULT))
    trajectory = {"thought_0": "Look it up.", "tool_name_0": "lookup", "tool_args_0": TOOL_ARGS,
                  "observation_0": TOOL_RESULT}
    rendered = dspy.ChatAdapter().format_user_message_content(
        dspy.Signature(f"{', '.join(trajectory)} -> x"), trajectory)
    assert f"[[ ## trajectory ## ]]\n{rendered}" in mock_lm.completion_requests[1].last_user_text


# ------------------------------------------------------------------------------- deliberate differences


@pytest.mark.parametrize("inputs, field", [
    ({"n": 4, "x": 3}, "inputs.ids"),  # missing
    ({"n": "four", "x": 3, "ids": [1]}, "inputs.n"),  # not an int, even in pydantic's lax mode
    ({"n": 4, "x": 3, "ids": ["one"]}, "inputs.ids"),
])
async def test_missing_or_mistyped_inputs_are_refused_where_dspy_only_renders_them(channel, inputs, field):
    case = CASES[CASE_IDS.index("typed_numbers_as_given")]
    ADAPTERS["chat"]().format(case.theirs(), [], inputs)  # DSPy renders these (it at most warns)
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RenderPrompt(inference_pb2.RenderPromptRequest(module=module_for(case, "chat"),
                                                                  inputs_json=json.dumps(inputs)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(caught.value)["violations"]

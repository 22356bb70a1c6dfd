"""Type features beyond the corpus, through gRPC and the Python client, against DSPy 3.4.1: output
field defaults, `tuple[T, ...]`, `datetime` / `date`, `None | T` in written order, a bare `Code`,
pydantic field aliases, a recursive object schema with the XML adapter, and ChainOfThought over a
signature that already has `reasoning`.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator
from typing import Optional

import dspy
import pydantic
import pytest
import pytest_asyncio
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, module_pb2, signature_pb2

import dspy_grpc

ASYNC = pytest.mark.asyncio(loop_scope="session")
ADAPTERS = {"chat": dspy.ChatAdapter, "json": dspy.JSONAdapter, "xml": dspy.XMLAdapter}


@pytest_asyncio.fixture(loop_scope="session")
async def client(server) -> AsyncIterator[dspy_grpc.AsyncClient]:
    async with dspy_grpc.AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as c:
        yield c


def _pair(fields: list[tuple[str, str, object, dict]], instructions: str = "Do it.") -> tuple[type, type]:
    """The same class-based signature written with our client and with DSPy."""

    def build(base: type, input_field, output_field) -> type:
        namespace: dict = {"__doc__": instructions, "__annotations__": {}}
        for name, role, annotation, kwargs in fields:
            namespace["__annotations__"][name] = annotation
            namespace[name] = (input_field if role == "in" else output_field)(**kwargs)
        return type(base)("Task", (base,), namespace)

    return (build(dspy_grpc.Signature, dspy_grpc.InputField, dspy_grpc.OutputField),
            build(dspy.Signature, dspy.InputField, dspy.OutputField))


FEATURES = [
    ("when", "in", datetime.datetime, {}),
    ("days", "in", tuple[int, ...], {}),
    ("day", "out", datetime.date, {}),
    ("counts", "out", tuple[int, ...], {}),
    ("maybe", "out", None | int, {}),
    ("k", "out", int, {"default": 5}),
]
INPUTS = {"when": datetime.datetime(2024, 1, 2, 3, 4, 5), "days": (1, 2)}
DEMO = {**INPUTS, "day": datetime.date(2024, 1, 1), "counts": (3,), "maybe": None, "k": 7}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@ASYNC
async def test_new_types_and_defaults_render_as_dspy(client, adapter) -> None:
    ours, theirs = _pair(FEATURES)
    rendered = await dspy_grpc.Predict(ours, client=client, adapter=adapter, demos=[DEMO]).arender(**INPUTS)
    assert rendered.messages == ADAPTERS[adapter]().format(theirs, [DEMO], INPUTS)


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@ASYNC
async def test_new_types_and_defaults_parse_as_dspy(client, adapter) -> None:
    ours, theirs = _pair(FEATURES)
    reference = ADAPTERS[adapter]()
    full = reference.format_assistant_message_content(theirs, {"day": datetime.date(2024, 5, 6), "counts": (1, 2, 3),
                                                               "maybe": 4, "k": 9})
    without_k = reference.format_assistant_message_content(theirs.delete("k"), {
        "day": datetime.date(2024, 5, 6), "counts": (), "maybe": None})
    for completion in (full, without_k):
        expected = reference.parse(theirs, completion)
        parsed = await dspy_grpc.Predict(ours, client=client, adapter=adapter).aparse(completion)
        assert parsed == dict(expected), completion
    assert (await dspy_grpc.Predict(ours, client=client, adapter=adapter).aparse(without_k))["k"] == 5


@ASYNC
async def test_a_default_is_only_for_output_fields(channel) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    signature = signature_pb2.Signature(fields=[
        signature_pb2.SignatureField(name="q", role=signature_pb2.FIELD_ROLE_INPUT, default_json='"x"'),
        signature_pb2.SignatureField(name="a", role=signature_pb2.FIELD_ROLE_OUTPUT)])
    module = module_pb2.ModuleSpec(predict=module_pb2.PredictModule(predictor=module_pb2.PredictorSpec(
        signature=signature)))
    import grpc

    from tests.integration.grpc_helpers import error_details

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RenderPrompt(inference_pb2.RenderPromptRequest(module=module, inputs_json='{"q": "?"}'))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "module.predict.predictor.signature.fields[0].default_json" in error_details(caught.value)["violations"]


@ASYNC
async def test_a_bare_code_type_renders_code(channel) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    module = module_pb2.ModuleSpec(predict=module_pb2.PredictModule(predictor=module_pb2.PredictorSpec(
        signature=signature_pb2.Signature(text="source: Code, task -> answer: None | int"))))
    response = await stub.RenderPrompt(inference_pb2.RenderPromptRequest(
        module=module, inputs_json=json.dumps({"source": "print(1)", "task": "run"})))
    theirs = dspy.Signature({"source": (dspy.Code, dspy.InputField()), "task": (str, dspy.InputField()),
                             "answer": (None | int, dspy.OutputField())})
    expected = dspy.ChatAdapter().format(theirs, [], {"source": dspy.Code(code="print(1)"), "task": "run"})
    assert [{"role": m.role, "content": m.content} for m in response.messages] == expected


@pytest.mark.parametrize("text", ["question -> reasoning, answer", "question -> answer, reasoning: int"])
@ASYNC
async def test_chain_of_thought_over_a_signature_with_reasoning_keeps_one(channel, tmp_path, text) -> None:
    from dspy_grpc.v1 import program_pb2, program_pb2_grpc

    reference = dspy.ChainOfThought(text)
    reference.predict.demos = [dspy.Example(question="Why?", reasoning="Because.", answer="So.", augmented=True)]
    path = tmp_path / "cot.json"
    reference.save(str(path))
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    structure = module_pb2.ModuleSpec(chain_of_thought=module_pb2.ChainOfThoughtModule(
        predictor=module_pb2.PredictorSpec(signature=signature_pb2.Signature(text=text))))
    name = "programs/cot-reasoning-" + ("str" if "int" not in text else "int")
    await programs.ImportDspyProgram(program_pb2.ImportDspyProgramRequest(
        name=name, dspy_json=path.read_text(), module=structure))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.RenderPrompt(inference_pb2.RenderPromptRequest(program=name, inputs_json='{"question": "?"}'))
    expected = dspy.ChatAdapter().format(reference.predict.signature, reference.predict.demos, {"question": "?"})
    assert [{"role": m.role, "content": m.content} for m in response.messages] == expected
    assert list(reference.predict.signature.output_fields) == ["reasoning", "answer"]


class Node(pydantic.BaseModel):
    """A tree node."""

    name: str
    children: list[Node] = []


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@ASYNC
async def test_a_recursive_object_type_renders_and_parses_as_dspy(client, adapter) -> None:
    ours, theirs = _pair([("q", "in", str, {}), ("tree", "out", Node, {}), ("best", "out", Optional[Node], {})])
    tree = Node(name="a", children=[Node(name="b", children=[Node(name="c")])])
    demo = {"q": "x", "tree": tree, "best": None}
    rendered = await dspy_grpc.Predict(ours, client=client, adapter=adapter, demos=[demo]).arender(q="y")
    reference = ADAPTERS[adapter]()
    assert rendered.messages == reference.format(theirs, [demo], {"q": "y"})
    completion = reference.format_assistant_message_content(theirs, {"tree": tree, "best": Node(name="z")})
    parsed = await dspy_grpc.Predict(ours, client=client, adapter=adapter).aparse(completion)
    assert parsed == dict(reference.parse(theirs, completion)) == {"tree": tree, "best": Node(name="z")}


class Pet(pydantic.BaseModel):
    pet_name: str = pydantic.Field(alias="petName", description="What it answers to")
    age: int = 3


class Owner(pydantic.BaseModel):
    full_name: str = pydantic.Field(alias="fullName")
    pets: list[Pet] = []


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@ASYNC
async def test_pydantic_aliases_render_and_parse_as_dspy(client, adapter) -> None:
    """DSPy shows the aliases in the JSON schema, the attribute names in values, and parses aliases."""

    ours, theirs = _pair([("owner", "in", Owner, {}), ("pet", "out", Pet, {}), ("owners", "out", list[Owner], {})])
    owner = Owner(fullName="Ann Lee", pets=[Pet(petName="Rex")])
    demo = {"owner": owner, "pet": Pet(petName="Tom", age=1), "owners": [owner]}
    rendered = await dspy_grpc.Predict(ours, client=client, adapter=adapter, demos=[demo]).arender(owner=owner)
    reference = ADAPTERS[adapter]()
    assert rendered.messages == reference.format(theirs, [demo], {"owner": owner})
    completion = ('[[ ## pet ## ]]\n{"petName": "Zed"}\n\n[[ ## owners ## ]]\n[{"fullName": "Bo", "pets": []}]\n\n'
                  "[[ ## completed ## ]]")
    parsed = await dspy_grpc.Predict(ours, client=client).aparse(completion)
    assert parsed == dict(dspy.ChatAdapter().parse(theirs, completion))

"""RenderPrompt and ParseCompletion through gRPC give DSPy 3.4.1's bytes and values.

The in-process parity suite checks the adapters; this one checks that nothing is lost on the wire
(Struct values, multi-part content, demos) for a spread of corpus cases and every adapter.
"""

from __future__ import annotations

import dspy
import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, module_pb2, signature_pb2
from google.protobuf import json_format

from dspy_grpc_server.api.convert import dict_to_struct, signature_to_proto
from dspy_grpc_server.core.signature import with_reasoning

from .conftest import _BUILT, ADAPTER_PAIRS, Built

pytestmark = pytest.mark.asyncio(loop_scope="session")

KINDS = {"chat": module_pb2.ADAPTER_KIND_CHAT, "json": module_pb2.ADAPTER_KIND_JSON, "xml": module_pb2.ADAPTER_KIND_XML}
#: Every third case keeps the wire test quick while covering each type family.
WIRE_CASES = sorted(_BUILT)[::3] + [name for name in sorted(_BUILT) if "image" in name.lower()]


def module_for(b: Built, adapter: str, *, chain_of_thought: bool = False) -> module_pb2.ModuleSpec:
    demo = {**b.case.inputs, **b.case.outputs}
    predictor = module_pb2.PredictorSpec(
        signature=signature_to_proto(b.ours), adapter=KINDS[adapter],
        demos=[json_format.ParseDict({"data": demo}, signature_pb2.Example())],
    )
    if chain_of_thought:
        return module_pb2.ModuleSpec(chain_of_thought=module_pb2.ChainOfThoughtModule(predictor=predictor))
    return module_pb2.ModuleSpec(predict=module_pb2.PredictModule(predictor=predictor))


def wire_messages(response: inference_pb2.RenderPromptResponse) -> list[dict]:
    out = []
    for message in response.messages:
        if message.content_parts:
            content = [json_format.MessageToDict(part) for part in message.content_parts]
        else:
            content = message.content
        out.append({"role": message.role, "content": content})
    return out


@pytest.mark.parametrize("case_name", sorted(set(WIRE_CASES)))
@pytest.mark.parametrize("adapter", sorted(KINDS))
async def test_render_prompt_over_grpc_matches_dspy(channel, case_name, adapter):
    b = _BUILT[case_name]
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.RenderPrompt(
        inference_pb2.RenderPromptRequest(module=module_for(b, adapter), inputs=dict_to_struct(b.case.inputs))
    )
    demo = {**b.case.inputs, **b.case.outputs}
    expected = ADAPTER_PAIRS[adapter]().format(b.ref, [b.dspy_values(demo)], b.dspy_values(b.case.inputs))
    assert wire_messages(response) == expected
    assert response.predictor == "self" and response.adapter == adapter
    if adapter == "json":
        assert "response_format" in json_format.MessageToDict(response.request_options)


async def test_chain_of_thought_renders_dspy_reasoning_field(channel):
    b = _BUILT[sorted(_BUILT)[0]]
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    response = await stub.RenderPrompt(
        inference_pb2.RenderPromptRequest(module=module_for(b, "chat", chain_of_thought=True),
                                          inputs=dict_to_struct(b.case.inputs))
    )
    reference = dspy.ChainOfThought(b.ref).predict.signature
    demo = {**b.case.inputs, **b.case.outputs}
    expected = dspy.ChatAdapter().format(reference, [b.dspy_values(demo)], b.dspy_values(b.case.inputs))
    assert wire_messages(response) == expected
    assert response.predictor == "predict"
    assert with_reasoning(b.ours).output_fields[0].name == "reasoning"


@pytest.mark.parametrize("case_name", sorted(set(WIRE_CASES)))
async def test_parse_completion_over_grpc_matches_dspy(channel, case_name):
    b = _BUILT[case_name]
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    reference = dspy.ChatAdapter()
    completion = reference.format_assistant_message_content(b.ref, b.dspy_values(b.case.outputs))
    expected = reference.parse(b.ref, completion)
    response = await stub.ParseCompletion(
        inference_pb2.ParseCompletionRequest(module=module_for(b, "chat"), completion=completion)
    )
    got = json_format.MessageToDict(response.outputs)
    want = json_format.MessageToDict(dict_to_struct({k: _plain(v) for k, v in expected.items()}))
    assert got == want


def _plain(value):
    """DSPy's parsed Python value as JSON (models, enums and tuples at any depth)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "value") and not callable(value.value):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


async def test_parse_completion_failure_is_a_parse_error(channel):
    b = _BUILT[sorted(_BUILT)[0]]
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ParseCompletion(
            inference_pb2.ParseCompletionRequest(module=module_for(b, "chat"), completion="nothing useful")
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

"""DSPy interop both ways, with dspy==3.4.1: our ExportDspyProgram JSON loads with ``module.load()``
into the equivalent DSPy program, and a DSPy-saved JSON imports into a new revision. Either way every
predictor's prompt rendered by DSPy's ChatAdapter equals our RenderPrompt, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import dspy
import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, program_pb2, program_pb2_grpc
from google.protobuf import json_format

from dspy_grpc_server.api.convert import dict_to_struct
from dspy_grpc_server.modules.tools import BUILTIN_TOOLS
from tests.integration.grpc_helpers import error_details

from .test_render_rpc_parity import wire_messages

pytestmark = pytest.mark.asyncio(loop_scope="session")

CALCULATOR = BUILTIN_TOOLS["calculator"]


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def calculator(expression: str) -> float:
    return 0.0


def dspy_tools() -> list[dspy.Tool]:
    return [dspy.Tool(get_weather),
            dspy.Tool(calculator, name="calculator", desc=CALCULATOR.description, args=dict(CALCULATOR.args))]


class QAProgram(dspy.Module):
    """The DSPy program our graph below is equivalent to."""

    def __init__(self) -> None:
        super().__init__()
        self.generate = dspy.ChainOfThought(dspy.Signature("question, context: list[str] -> answer",
                                                           "Answer from the context."))
        self.agent = dspy.ReAct("question -> answer", tools=dspy_tools(), max_iters=5)
        self.polish = dspy.BestOfN(dspy.Predict("answer -> polished"), N=3, reward_fn=lambda args, pred: 1.0,
                                   threshold=1.0)
        self.compare = dspy.MultiChainComparison("question -> answer", M=2)

    def forward(self, question: str, context: list[str]) -> dspy.Prediction:  # pragma: no cover - not run
        raise NotImplementedError


def predictor_spec(text: str, **extra: Any) -> dict[str, Any]:
    return {"signature": {"text": text}, **extra}


GRAPH = {"graph": {
    "steps": [
        {"name": "generate", "module": {"chainOfThought": {"predictor": predictor_spec(
            "question, context: list[str] -> answer", signature={
                "text": "question, context: list[str] -> answer", "instructions": "Answer from the context."},
            demos=[{"data": {"question": "Who wrote it?", "context": ["Ada wrote it."], "reasoning": "It says so.",
                             "answer": "Ada"}}],
        )}}, "inputs": {"question": "inputs.question", "context": "inputs.context"}},
        {"name": "agent", "module": {"react": {
            "predictor": predictor_spec("question -> answer"), "maxIters": 5,
            "tools": [{"name": "get_weather", "description": "The weather in a city.",
                       "argsJsonSchema": json.dumps({"city": {"type": "string"}})},
                      {"name": "calculator", "builtin": "calculator"}],
            "react": {"demos": [{"data": {"question": "q?", "trajectory": "", "next_thought": "Finish.",
                                          "next_tool_name": "finish", "next_tool_args": {}}}]},
        }}, "inputs": {"question": "inputs.question"}},
        {"name": "polish", "module": {"bestOfN": {
            "module": {"predict": {"predictor": predictor_spec("answer -> polished")}}, "n": 3,
            "reward": {"exactMatch": {"field": "polished", "values": ["x"]}}, "threshold": 1.0,
        }}, "inputs": {"answer": "generate.answer"}},
        {"name": "compare", "module": {"multiChainComparison": {"predictor": predictor_spec("question -> answer"),
                                                                "m": 2}},
         "inputs": {"question": "inputs.question", "completions": "inputs.attempts"}},
    ],
    "outputs": {"answer": "agent.answer", "polished": "polish.polished", "compared": "compare.answer"},
}}


def sample_inputs(signature: type[dspy.Signature]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in signature.input_fields.items():
        if name == "trajectory":
            values[name] = "[[ ## thought_0 ## ]]\nLook it up."
        elif field.annotation == list[str]:
            values[name] = ["First passage.", "Second passage."]
        else:
            values[name] = f"the {name}"
    return values


async def render(stub, program: str, predictor: str, inputs: dict[str, Any]) -> list[dict]:
    response = await stub.RenderPrompt(inference_pb2.RenderPromptRequest(
        program=program, predictor=predictor, inputs=dict_to_struct(inputs)))
    assert response.predictor == predictor
    return wire_messages(response)


async def assert_same_prompts(channel, program_name: str, program: dspy.Module) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    for name, predictor in program.named_predictors():
        inputs = sample_inputs(predictor.signature)
        expected = dspy.ChatAdapter().format(predictor.signature, predictor.demos, inputs)
        assert await render(stub, program_name, name, inputs) == expected, name


async def test_exported_json_loads_into_the_equivalent_dspy_program(channel, tmp_path):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    await programs.CreateProgram(json_format.ParseDict({"programId": "interop-export", "program": {"module": GRAPH}},
                                                       program_pb2.CreateProgramRequest()))
    exported = await programs.ExportDspyProgram(program_pb2.ExportDspyProgramRequest(name="programs/interop-export"))
    program = QAProgram()
    assert list(exported.predictors) == [name for name, _ in program.named_predictors()]
    path = tmp_path / "program.json"
    path.write_text(exported.dspy_json)
    program.load(str(path))
    assert program.generate.predict.signature.instructions == "Answer from the context."
    assert program.generate.predict.demos[0]["answer"] == "Ada"
    assert program.agent.react.demos[0]["next_tool_name"] == "finish"
    await assert_same_prompts(channel, "programs/interop-export", program)


async def test_a_dspy_saved_program_imports_as_a_new_revision(channel, tmp_path):
    program = QAProgram()
    # What an optimizer leaves behind: new instructions, bootstrapped demos, a changed output prefix.
    generate = program.generate.predict
    generate.signature = generate.signature.with_instructions("Read every passage, then answer briefly.")
    generate.signature = generate.signature.with_updated_fields("answer", prefix="Final Answer:")
    generate.demos = [dspy.Example(question="Who?", context=["Bo did it."], reasoning="The passage says Bo.",
                                   answer="Bo", augmented=True)]
    react = program.agent.react
    react.signature = react.signature.with_instructions("Use the tools wisely.\n\n" + react.signature.instructions)
    program.agent.extract.predict.demos = [dspy.Example(question="q", trajectory="t", reasoning="r", answer="a")]
    program.polish.module.demos = [dspy.Example(answer="rough", polished="Polished.")]
    path = tmp_path / "saved.json"
    program.save(str(path))
    saved = json.loads(path.read_text())

    programs = program_pb2_grpc.ProgramServiceStub(channel)
    structure = json_format.ParseDict(GRAPH, program_pb2.Program().module)
    imported = await programs.ImportDspyProgram(program_pb2.ImportDspyProgramRequest(
        name="programs/interop-import", dspy_json=path.read_text(), module=structure))
    assert imported.revision_id == "r0001" and imported.active_revision_id == "r0001"
    await assert_same_prompts(channel, "programs/interop-import", program)

    # The state survives the trip back: exporting gives what DSPy saved.
    exported = await programs.ExportDspyProgram(program_pb2.ExportDspyProgramRequest(name="programs/interop-import"))
    again = json.loads(exported.dspy_json)
    for name in exported.predictors:
        assert again[name]["signature"] == saved[name]["signature"], name
        assert again[name]["demos"] == saved[name]["demos"], name

    # Importing into the existing program (its structure) makes the next revision.
    second = await programs.ImportDspyProgram(program_pb2.ImportDspyProgramRequest(
        name="programs/interop-import", dspy_json=path.read_text()))
    assert second.revision_id == "r0002" and second.active_revision_id == "r0002"


async def test_a_state_that_does_not_fit_the_structure_is_rejected(channel):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    state = dspy.ChainOfThought("question -> answer").dump_state()
    structure = json_format.ParseDict({"predict": {"predictor": predictor_spec("question -> answer")}},
                                      program_pb2.Program().module)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await programs.ImportDspyProgram(program_pb2.ImportDspyProgramRequest(
            name="programs/interop-bad", dspy_json=json.dumps(state), module=structure))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dspy_json.predict" in error_details(caught.value)["violations"]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await programs.GetProgram(program_pb2.GetProgramRequest(name="programs/interop-bad"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

"""Stored programs of the newer module kinds, called through the Python client."""

from __future__ import annotations

import json

import pytest
from dspy_grpc import AsyncClient
from dspy_grpc.v1 import program_pb2, program_pb2_grpc
from google.protobuf import json_format

from tests.integration.test_modules import chat, predictor

pytestmark = pytest.mark.asyncio(loop_scope="session")


def capital_of(country: str) -> str:
    """The capital city of a country."""
    return {"Norway": "Oslo"}.get(country, "unknown")


AGENT_GRAPH = {"graph": {
    "steps": [
        {"name": "agent", "inputs": {"question": "inputs.question"}, "module": {"react": {
            "predictor": predictor("question -> answer"),
            "tools": [{"name": "capital_of", "description": "The capital city of a country.",
                       "argsJsonSchema": json.dumps({"country": {"type": "string"}})}]}}},
        {"name": "check", "inputs": {"question": "inputs.question"}, "module": {"bestOfN": {
            "module": {"predict": {"predictor": predictor("question -> answer")}}, "n": 2,
            "reward": {"exactMatch": {"field": "answer", "values": ["Oslo"]}}, "threshold": 1.0}}},
    ],
    "outputs": {"answer": "agent.answer", "checked": "check.answer"},
}}


async def test_the_python_client_runs_a_graph_with_a_react_step_and_a_local_tool(channel, server, mock_lm):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    await programs.CreateProgram(json_format.ParseDict({"programId": "agent-graph", "program": {"module": AGENT_GRAPH}},
                                                       program_pb2.CreateProgramRequest()))
    mock_lm.add_rule("[[ ## trajectory ## ]]\n\n", chat(
        next_thought="Ask the tool.", next_tool_name="capital_of", next_tool_args={"country": "Norway"}), times=1)
    # Only the tool run in this process can put "Oslo" in the trajectory as observation_0.
    mock_lm.add_rule("[[ ## observation_0 ## ]]\nOslo\n\nRespond", chat(
        next_thought="Done.", next_tool_name="finish", next_tool_args={}), times=1)
    mock_lm.add_rule("[[ ## observation_1 ## ]]", chat(reasoning="The tool said Oslo.", answer="Oslo"), times=1)
    mock_lm.add_rule("[[ ## question ## ]]\nCapital of Norway?\n\nRespond", chat(answer="Oslo"))
    async with AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as client:
        prediction = await client.program("agent-graph", lm={"model": "mock"}, tools=[capital_of]).acall(
            question="Capital of Norway?")
    assert prediction.answer == "Oslo" and prediction.checked == "Oslo"

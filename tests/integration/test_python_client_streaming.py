"""Streaming (StreamPredict) and ReAct with tools run by the Python client (Run), against a real server
and the mock LM server. The blocking client runs in a worker thread so the session loop keeps serving."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Literal

import pytest
import pytest_asyncio

from dspy_grpc import (
    AsyncClient,
    ChainOfThought,
    Client,
    FailedPreconditionError,
    FieldDelta,
    InputField,
    InvalidArgumentError,
    ModuleEvent,
    NotFoundError,
    OutputField,
    Predict,
    Prediction,
    ReAct,
    Signature,
    ToolCallEvent,
)
from tests.mocklm import MockReply

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class QA(Signature):
    """Answer the question."""

    question: str = InputField()
    answer: str = OutputField()
    confidence: int = OutputField()


@dataclasses.dataclass
class Forecast:
    city: str
    degrees: int


def _completion(**fields: object) -> str:
    return "".join(f"[[ ## {name} ## ]]\n{value}\n\n" for name, value in fields.items()) + "[[ ## completed ## ]]"


def _step(thought: str, tool: str, args: dict) -> dict:
    return {"next_thought": thought, "next_tool_name": tool, "next_tool_args": args}


@pytest_asyncio.fixture(loop_scope="session")
async def client(server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as c:
        yield c


# --------------------------------------------------------------------------------------- streaming


async def test_astream_yields_field_deltas_then_a_typed_prediction(client: AsyncClient, mock_lm) -> None:
    answer = "The sky scatters blue light more than red light, so it looks blue."
    # Word by word with a pause: deltas that queue up while the server writes are sent as one.
    mock_lm.enqueue(MockReply(text=_completion(answer=answer, confidence="9"), chunk_delay_s=0.005))
    events = [e async for e in Predict(QA, client=client, lm="mock").astream(question="Why is the sky blue?")]

    assert isinstance(events[-1], Prediction)
    assert events[-1].answer == answer and events[-1].confidence == 9
    deltas = [e for e in events if isinstance(e, FieldDelta)]
    answer_deltas = [d for d in deltas if d.field == "answer"]
    assert len(answer_deltas) > 1  # it arrived in pieces
    assert "".join(d.text for d in answer_deltas) == answer
    assert answer_deltas[-1].last and not any(d.last for d in answer_deltas[:-1])
    assert {d.predictor for d in deltas} == {"self"}
    modules = [e for e in events if isinstance(e, ModuleEvent)]
    assert [m.finished for m in modules] == [False, True] and modules[-1].error == ""
    assert mock_lm.last_request.json.get("stream") is True


async def test_client_stream_predict_and_chain_of_thought(client: AsyncClient, mock_lm) -> None:
    mock_lm.enqueue(_completion(reasoning="Because.", answer="Yes"))
    events = [e async for e in client.stream_predict("question -> answer", question="Q?", module="cot", lm="mock")]
    fields = {e.field for e in events if isinstance(e, FieldDelta)}
    assert fields == {"reasoning", "answer"}
    assert events[-1].reasoning == "Because." and events[-1].answer == "Yes"

    mock_lm.enqueue(_completion(reasoning="Because.", answer="Yes", confidence="3"))
    events = [e async for e in ChainOfThought(QA, client=client, lm="mock").astream(question="Q?")]
    assert list(events[-1].outputs) == ["reasoning", "answer", "confidence"]


async def test_stream_errors_are_typed(client: AsyncClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        async for _ in client.program("no-such-program").astream(question="q"):
            pass
    assert caught.value.reason == "PROGRAM_NOT_FOUND"


# ------------------------------------------------------------------------------------------- batch

CAPITALS = {"rules": [
    {"contains": "France", "response": {"answer": "Paris", "confidence": 9}},
    {"contains": "Peru", "response": {"answer": "Lima", "confidence": "8"}},
]}


async def test_batch_returns_predictions_and_item_errors_in_input_order(client: AsyncClient) -> None:
    qa = Predict(QA, client=client, lm=CAPITALS)
    results = await qa.abatch(
        [{"question": "Capital of France?"}, {"question": "Capital of Peru?"}, {"question": "Capital of Mars?"}, {}],
        max_concurrency=2,
    )
    assert [r.answer for r in results[:2]] == ["Paris", "Lima"]
    assert results[1].confidence == 8  # typed
    assert isinstance(results[2], FailedPreconditionError) and results[2].reason == "DUMMY_LM_EXHAUSTED"
    assert isinstance(results[3], InvalidArgumentError)
    assert any(field == "inputs.question" for field, _ in results[3].field_violations)


# ------------------------------------------------------------------------------------------- ReAct


class Weather(Signature):
    """Answer questions about the weather."""

    question: str = InputField()
    answer: str = OutputField()
    degrees: int = OutputField()


async def test_react_runs_python_tools_in_the_client(client: AsyncClient) -> None:
    calls: list[tuple[str, str]] = []

    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> Forecast:
        """The current weather in a city."""
        calls.append((city, unit))
        return Forecast(city, 18)

    lm = {"responses": [
        _step("I need the weather.", "get_weather", {"city": "Oslo"}),
        _step("I know enough.", "finish", {}),
        {"reasoning": "The tool said 18.", "answer": "Mild", "degrees": "18"},
    ]}
    agent = ReAct(Weather, tools=[get_weather], client=client, lm=lm)
    pred = await agent.acall(question="How warm is Oslo?")

    assert calls == [("Oslo", "C")]
    assert pred.degrees == 18 and pred.answer == "Mild" and pred.reasoning == "The tool said 18."
    trajectory = pred.trajectory
    assert trajectory["tool_name_0"] == "get_weather" and trajectory["tool_args_0"] == {"city": "Oslo"}
    assert trajectory["observation_0"] == {"city": "Oslo", "degrees": 18}
    assert trajectory["tool_name_1"] == "finish"


async def test_react_async_tools_failures_and_events(client: AsyncClient) -> None:
    async def lookup(term: str) -> str:
        """Look a term up."""
        await asyncio.sleep(0)
        return f"{term}: a city in Norway"

    def broken(x: int) -> int:
        """Always fails."""
        raise RuntimeError("the service is down")

    lm = {"responses": [
        _step("Look it up.", "lookup", {"term": "Oslo"}),
        _step("Try the other one.", "broken", {"x": 1}),
        _step("Done.", "finish", {}),
        {"reasoning": "r", "answer": "Norway", "degrees": 0},
    ]}
    agent = ReAct(Weather, tools=[lookup, broken], client=client, lm=lm)
    events = [e async for e in agent.astream(question="Where is Oslo?")]

    prediction = events[-1]
    assert isinstance(prediction, Prediction) and prediction.answer == "Norway"
    assert prediction.trajectory["observation_0"] == "Oslo: a city in Norway"
    observation = prediction.trajectory["observation_1"]
    assert observation.startswith("Execution error in broken:") and "the service is down" in observation

    finished = [e for e in events if isinstance(e, ToolCallEvent) and e.finished]
    assert [e.tool for e in finished][:2] == ["lookup", "broken"]
    assert finished[0].observation == "Oslo: a city in Norway"
    assert "the service is down" in finished[1].error
    started = [e for e in events if isinstance(e, ToolCallEvent) and not e.finished]
    assert [e.call_id for e in started][:2] == [e.call_id for e in finished][:2]
    assert started[0].tool == "lookup" and started[0].args == {"term": "Oslo"}


async def test_react_with_a_server_tool_needs_no_run(client: AsyncClient) -> None:
    lm = {"responses": [
        _step("Compute it.", "calculator", {"expression": "6 * 7"}),
        _step("Done.", "finish", {}),
        {"reasoning": "6*7", "answer": "forty-two", "degrees": 42},
    ]}
    agent = ReAct(Weather, tools=["calculator"], client=client, lm=lm)
    assert agent.tools_here() == {}
    pred = await agent.acall(question="6 times 7?")
    assert pred.degrees == 42
    assert "42" in str(pred.trajectory["observation_0"])


async def test_stored_react_program_with_client_tools(client: AsyncClient) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> str:
        """The current weather in a city."""
        seen.append(city)
        return "sunny"

    lm = {"responses": [
        _step("Check.", "get_weather", {"city": "Rome"}),
        _step("Done.", "finish", {}),
        {"reasoning": "r", "answer": "sunny", "degrees": 25},
    ]}
    program_id = f"agent-{uuid.uuid4().hex[:8]}"
    await client.create_program(program_id, ReAct(Weather, tools=[get_weather], lm=lm))
    pred = await client.program(program_id, signature=Weather, tools=[get_weather]).acall(question="Rome?")
    assert seen == ["Rome"] and pred.answer == "sunny" and pred.degrees == 25


# ------------------------------------------------------------------------------- blocking client


async def test_blocking_stream_and_react(server, mock_lm) -> None:
    target = f"127.0.0.1:{server.port}"
    mock_lm.enqueue(_completion(answer="Because of Rayleigh scattering.", confidence="8"))
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return "rain"

    def scenario() -> None:
        with Client(target, timeout=20) as sync:
            events = list(Predict(QA, client=sync, lm="mock").stream(question="Why blue?"))
            text = "".join(e.text for e in events if isinstance(e, FieldDelta) and e.field == "answer")
            assert text == "Because of Rayleigh scattering." and events[-1].confidence == 8

            lm = {"responses": [
                _step("Check.", "get_weather", {"city": "Bergen"}),
                _step("Done.", "finish", {}),
                {"reasoning": "r", "answer": "wet", "degrees": 9},
            ]}
            pred = ReAct(Weather, tools=[get_weather], client=sync, lm=lm)(question="Bergen?")
            assert pred.answer == "wet" and pred.degrees == 9
            assert pred.trajectory["observation_0"] == "rain"

            results = Predict(QA, client=sync, lm=CAPITALS).batch([{"question": "France?"}, {"question": "x"}])
            assert results[0].answer == "Paris" and isinstance(results[1], FailedPreconditionError)
            with pytest.raises(ValueError, match="cannot run tools"):
                ReAct(Weather, tools=[get_weather], client=sync).batch([{"question": "q"}])

    await asyncio.to_thread(scenario)
    assert calls == ["Bergen"]

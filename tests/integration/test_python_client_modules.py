"""The Python client's DSPy-shaped API (class signatures, module handles, typed predictions) against a
real server on loopback and the mock LM server.

Async tests use ``AsyncClient``; the blocking ``Client`` runs in a worker thread so the session
event loop stays free to serve the in-process server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Literal, Optional

import grpc
import pytest
import pytest_asyncio

import dspy_grpc
from dspy_grpc import (
    AsyncClient,
    ChainOfThought,
    Client,
    FailedPreconditionError,
    History,
    Image,
    InputField,
    InvalidArgumentError,
    NotFoundError,
    OutputField,
    OutputTypeError,
    Predict,
    Prediction,
    ProgramModule,
    RenderedPrompt,
    Signature,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@dataclasses.dataclass
class Place:
    """Where something is."""

    city: str
    population: int = 0


class QA(Signature):
    """Answer the question from the context."""

    question: str = InputField(desc="the question")
    context: list[str] = InputField()
    answer: int = OutputField(desc="a number")


class Rich(Signature):
    """Describe the text."""

    text: str = InputField()
    mood: Mood = OutputField()
    place: Place = OutputField()
    score: float = OutputField(ge=0, le=1)
    tags: tuple[str, str] = OutputField()
    label: Optional[Literal["a", "b"]] = OutputField()
    counts: dict[str, int] = OutputField()


RICH_REPLY = {
    "mood": "sad", "place": {"city": "Oslo", "population": 700000}, "score": 1,
    "tags": ["x", "y"], "label": None, "counts": {"k": 2},
}


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _completion(**fields: object) -> str:
    return "".join(f"[[ ## {name} ## ]]\n{value}\n\n" for name, value in fields.items()) + "[[ ## completed ## ]]"


@pytest_asyncio.fixture(loop_scope="session")
async def client(server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as c:
        yield c


@pytest.fixture
def clean_settings() -> Iterator[None]:
    yield
    dspy_grpc.configure(client=None, lm=None)


# ----------------------------------------------------------------------------------- class signatures


async def test_class_signature_renders_like_the_equivalent_string_signature(client: AsyncClient) -> None:
    class Plain(Signature):
        """Count the things."""

        question: str = InputField()
        context: list[str] = InputField()
        answer: int = OutputField()

    inputs = {"question": "How many?", "context": ["Three apples."]}
    text = "question: str, context: list[str] -> answer: int"
    for module, handle in (("predict", Predict), ("chain_of_thought", ChainOfThought)):
        for adapter in ("chat", "json", "xml"):
            ours = await handle(Plain, client=client, adapter=adapter).arender(**inputs)
            theirs = await client.render_prompt(
                Predict(text, instructions="Count the things.", adapter=adapter).module_spec()
                if module == "predict" else
                ChainOfThought(text, instructions="Count the things.", adapter=adapter).module_spec(),
                inputs,
            )
            assert isinstance(ours, RenderedPrompt)
            assert ours.messages == theirs.messages
            assert ours.request_options == theirs.request_options
            assert ours.adapter == adapter
            assert ours.predictor == ("self" if module == "predict" else "predict")


async def test_descriptions_and_instructions_reach_the_prompt(client: AsyncClient) -> None:
    system = (await Predict(QA, client=client).arender(question="q", context=[])).messages[0]["content"]
    assert "1. `question` (str): the question" in system
    assert "1. `answer` (int): a number" in system
    assert system.rstrip().endswith("Answer the question from the context.")


async def test_typed_outputs_from_a_scripted_lm(client: AsyncClient) -> None:
    rich = Predict(Rich, client=client, lm={"responses": [RICH_REPLY]})
    pred = await rich.acall(text="Rainy day in Oslo.")
    assert isinstance(pred, Prediction)
    assert pred.mood is Mood.SAD
    assert pred.place == Place(city="Oslo", population=700000)
    assert pred.score == 1.0 and isinstance(pred.score, float)
    assert pred.tags == ("x", "y")
    assert pred.label is None
    assert pred.counts == {"k": 2}
    assert list(pred.outputs) == ["mood", "place", "score", "tags", "label", "counts"]  # declared order
    assert pred.raw.outputs.fields["mood"].string_value == "sad"


async def test_typed_outputs_parsed_from_a_real_lm_completion(client: AsyncClient, mock_lm) -> None:
    mock_lm.enqueue(_completion(answer="42"))
    pred = await Predict(QA, client=client, lm="mock").acall(question="Answer?", context=["It is 42."])
    assert pred.answer == 42 and isinstance(pred.answer, int)
    prompt = mock_lm.last_request.messages
    assert "Answer the question from the context." in prompt[0]["content"]
    assert "`question` (str): the question" in prompt[0]["content"]
    assert "It is 42." in prompt[-1]["content"]


async def test_chain_of_thought_adds_reasoning_first(client: AsyncClient, mock_lm) -> None:
    mock_lm.enqueue(_completion(reasoning="Two and two.", answer="4"))
    cot = ChainOfThought(QA, client=client, lm="mock")
    pred = await cot.acall(question="2 + 2?", context=[])
    assert list(pred.outputs) == ["reasoning", "answer"]
    assert pred.reasoning == "Two and two." and pred.answer == 4
    assert "[[ ## reasoning ## ]]" in mock_lm.last_request.messages[0]["content"]
    rendered = await cot.arender(question="2 + 2?", context=[])
    assert rendered.predictor == "predict"  # DSPy's name for ChainOfThought's predictor
    assert "`reasoning`" in rendered.messages[0]["content"]


async def test_string_signatures_work_in_handles(client: AsyncClient) -> None:
    qa = ChainOfThought("question -> answer: int", client=client,
                        lm={"responses": [{"reasoning": "r", "answer": 7}]})
    pred = await qa.acall(question="Seven?")
    assert pred.answer == 7 and pred.reasoning == "r"


# -------------------------------------------------------------------------- LMs, demos, adapter, parse


async def test_lm_per_call_beats_lm_per_module_beats_configured(client: AsyncClient, mock_lm, clean_settings) -> None:
    # Distinct questions: the server's LM cache would answer a repeated prompt without the mock.
    mock_lm.enqueue(_completion(answer="from-mock"), _completion(answer="configured"))
    qa = Predict("question -> answer", client=client, lm={"responses": [{"answer": "module"}]})
    assert (await qa.acall(question="q1")).answer == "module"
    assert (await qa.acall(question="q2", lm="mock")).answer == "from-mock"
    assert len(mock_lm.completion_requests) == 1

    dspy_grpc.configure(lm="mock")
    unset = Predict("question -> answer", client=client)
    assert (await unset.acall(question="q3")).answer == "configured"
    assert (await qa.acall(question="q4")).answer == "module"  # the module's own LM wins
    assert len(mock_lm.completion_requests) == 2


async def test_demos_and_adapter_reach_the_prompt(client: AsyncClient, mock_lm) -> None:
    qa = Predict(QA, client=client, adapter="json", demos=[{"question": "Two?", "context": [], "answer": 2}])
    rendered = await qa.arender(question="Three?", context=["3"])
    assert rendered.adapter == "json"
    assert rendered.request_options["response_format"]["type"] == "json_schema"
    texts = [m["content"] for m in rendered.messages]
    assert any("Two?" in t for t in texts) and any('"answer": 2' in t for t in texts)

    qa.demos.append({"question": "Five?", "context": [], "answer": 5})  # DSPy-style mutation
    assert any("Five?" in m["content"] for m in (await qa.arender(question="x", context=[])).messages)

    mock_lm.enqueue('{"answer": 3}')
    assert (await qa.acall(question="Three?", context=["3"], lm="mock")).answer == 3
    assert mock_lm.last_request.json["response_format"]["type"] == "json_schema"


async def test_parse_completion_gives_typed_values(client: AsyncClient) -> None:
    rich = Predict(Rich, client=client)
    text = _completion(mood="happy", place='{"city": "Rome"}', score="0.5", tags='["a", "b"]', label="b",
                       counts='{"n": 1}')
    parsed = await rich.aparse(text)
    assert parsed == {"mood": Mood.HAPPY, "place": Place("Rome", 0), "score": 0.5, "tags": ("a", "b"),
                      "label": "b", "counts": {"n": 1}}
    as_json = await rich.aparse('{"mood": "sad", "place": {"city": "X"}, "score": 0, "tags": ["a", "b"], '
                                '"label": null, "counts": {}}', adapter="json")
    assert as_json["mood"] is Mood.SAD and as_json["label"] is None

    with pytest.raises(FailedPreconditionError) as caught:
        await rich.aparse("[[ ## mood ## ]]\nangry\n\n[[ ## completed ## ]]")
    assert caught.value.reason == "PARSE_ERROR"


async def test_image_and_history_helpers(client: AsyncClient, tmp_path) -> None:
    class Describe(Signature):
        """Describe the image."""

        image: Image = InputField()
        history: History = InputField()
        question: str = InputField()
        caption: str = OutputField()

    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    describe = Predict(Describe, client=client)
    rendered = await describe.arender(
        image=Image.from_file(png),
        history=History([{"question": "Earlier?", "caption": "Earlier answer."}]),
        question="What is it?",
    )
    contents = [m["content"] for m in rendered.messages]
    assert "Earlier?" in str(contents) and "Earlier answer." in str(contents)
    parts = rendered.messages[-1]["content"]
    assert isinstance(parts, list)
    image_urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
    assert image_urls and image_urls[0].startswith("data:image/png;base64,")
    with pytest.raises(ValueError, match="image type"):
        Image.from_file(tmp_path / "notes.txt")


# ---------------------------------------------------------------------------------- stored programs


async def test_stored_program_handle(client: AsyncClient) -> None:
    program_id = _id("handle")
    cot = ChainOfThought(QA, lm={"responses": [{"reasoning": "stored", "answer": 1}]})
    created = await client.create_program(program_id, cot)  # a handle stores as its module spec
    assert created.raw.module.chain_of_thought.predictor.signature.fields[2].name == "answer"

    handle = client.program(program_id, signature=QA)
    assert isinstance(handle, ProgramModule) and handle.name == f"programs/{program_id}"
    pred = await handle.acall(question="q", context=[])
    assert pred.answer == 1 and pred.reasoning == "stored"
    assert pred.program == f"programs/{program_id}" and pred.revision_id == "r0001"

    await client.update_program(program_id, lm={"responses": [{"reasoning": "newer", "answer": 2}]})
    assert (await handle.acall(question="q", context=[])).answer == 2
    pinned = client.program(f"{program_id}@r0001", signature=QA)
    assert (await pinned.acall(question="q", context=[])).answer == 1

    rendered = await handle.arender(question="q", context=["c"])
    assert "Answer the question from the context." in rendered.messages[0]["content"]
    assert (await handle.aparse(_completion(reasoning="r", answer="9")))["answer"] == 9

    untyped = client.program(program_id)
    assert (await untyped.acall(question="q", context=[])).answer == 2  # JSON whole numbers come back as int


async def test_program_handle_lm_fills_in_predictors_without_one(client: AsyncClient, mock_lm) -> None:
    program_id = _id("nolm")
    await client.create_program(program_id, Predict(QA))
    mock_lm.enqueue(_completion(answer="5"))
    pred = await client.program(program_id, signature=QA, lm="mock").acall(question="q", context=[])
    assert pred.answer == 5 and len(mock_lm.completion_requests) == 1


# ------------------------------------------------------------------------------------------- errors


async def test_errors_are_typed(client: AsyncClient) -> None:
    with pytest.raises(NotFoundError) as missing:
        await client.program("does-not-exist").acall(question="q")
    assert missing.value.reason == "PROGRAM_NOT_FOUND"

    with pytest.raises(InvalidArgumentError) as invalid:
        await Predict(QA, client=client, lm="dummy").acall(question="no context")
    assert any(field == "inputs.context" for field, _ in invalid.value.field_violations)
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT

    with pytest.raises(InvalidArgumentError) as bad_input:
        await Predict(QA, client=client, lm="dummy").acall(question="q", context="not a list")
    assert any(field == "inputs.context" for field, _ in bad_input.value.field_violations)


async def test_output_type_mismatch_is_reported(client: AsyncClient) -> None:
    program_id = _id("mismatch")
    await client.create_program(program_id, "question, context -> answer", lm={"responses": [{"answer": "many"}]})
    with pytest.raises(OutputTypeError, match="answer: expected int, got a string"):
        await client.program(program_id, signature=QA).acall(question="q", context="c")


async def test_handles_need_a_client_of_the_right_kind(client: AsyncClient, clean_settings) -> None:
    qa = Predict(QA)
    with pytest.raises(RuntimeError, match="configure"):
        await qa.acall(question="q", context=[])
    with pytest.raises(RuntimeError, match="use `await module.acall"):
        Predict(QA, client=client)(question="q", context=[])
    with pytest.raises(TypeError, match="client must be"):
        Predict(QA, client="127.0.0.1:50051")  # type: ignore[arg-type]

    class Clashing(Signature):
        timeout: int = InputField()
        answer: str = OutputField()

    with pytest.raises(ValueError, match="clash with call options"):
        Predict(Clashing, client=client)

    dspy_grpc.configure(client=client)
    pred = await Predict(QA, lm={"responses": [{"answer": 3}]}).acall(question="q", context=[])
    assert pred.answer == 3


# ------------------------------------------------------------------------------- blocking client


async def test_blocking_handles(server) -> None:
    target = f"127.0.0.1:{server.port}"

    def scenario() -> None:
        with Client(target, timeout=20) as sync:
            qa = ChainOfThought(QA, client=sync, lm={"responses": [{"reasoning": "r", "answer": "12"}]})
            pred = qa(question="Dozen?", context=["twelve"])
            assert pred.answer == 12 and pred.reasoning == "r"
            assert "Dozen?" in qa.render(question="Dozen?", context=[]).messages[-1]["content"]
            assert qa.parse(_completion(reasoning="x", answer="3")) == {"reasoning": "x", "answer": 3}

            program_id = _id("sync")
            sync.create_program(program_id, qa)
            assert sync.program(program_id, signature=QA)(question="q", context=[]).answer == 12
            with pytest.raises(NotFoundError):
                sync.program("nope")(question="q")

            typed = sync.predict(Rich, text="t", lm={"responses": [RICH_REPLY]})
            assert typed.mood is Mood.SAD and typed.tags == ("x", "y")

            dspy_grpc.configure(client=sync, lm={"responses": [{"answer": "8"}]})
            try:
                assert Predict(QA)(question="q", context=[]).answer == 8
            finally:
                dspy_grpc.configure(client=None, lm=None)

    await asyncio.to_thread(scenario)

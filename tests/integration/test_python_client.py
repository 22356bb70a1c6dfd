"""The Python client (clients/python, package ``dspy_grpc``) against a real server on loopback.

``AsyncClient`` runs against the in-process ``server`` fixture; the blocking ``Client`` runs
against a ``dspy-grpc serve`` subprocess, since it must not block the event loop serving it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from dspy_grpc import (
    AbortedError,
    AlreadyExistsError,
    AsyncClient,
    Client,
    DspyGrpcError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    Prediction,
    Program,
    UnavailableError,
    Usage,
)
from dspy_grpc.v1 import module_pb2

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parents[2]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(loop_scope="session")
async def client(server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(f"127.0.0.1:{server.port}", timeout=20) as c:
        yield c


# ----------------------------------------------------------------------------------------- predict


async def test_predict_inline_with_scripted_dummy(client: AsyncClient) -> None:
    pred = await client.predict(
        "question -> answer", question="What is the capital of France?", lm={"responses": [{"answer": "Paris"}]}
    )
    assert isinstance(pred, Prediction)
    assert pred.answer == "Paris"
    assert pred["answer"] == "Paris"
    assert pred.outputs == {"answer": "Paris"}
    assert "answer" in pred and list(pred) == ["answer"]
    assert pred.program == "" and pred.revision_id == ""
    assert pred.raw.outputs.fields["answer"].string_value == "Paris"
    assert "answer='Paris'" in repr(pred)
    with pytest.raises(AttributeError, match="no output field 'missing'"):
        _ = pred.missing


async def test_predict_inputs_dict_and_kwargs_and_typed_outputs(client: AsyncClient) -> None:
    pred = await client.predict(
        "a: int, b: int -> total: int, words: list[str]",
        {"a": 2},
        b=3,
        lm={"responses": [{"total": 5, "words": ["five", "5"]}]},
    )
    assert pred.total == 5 and isinstance(pred.total, int)
    assert pred.words == ["five", "5"]


async def test_predict_raw_text_reply_and_trace(client: AsyncClient) -> None:
    completion = "[[ ## answer ## ]]\nBlue\n\n[[ ## completed ## ]]"
    pred = await client.predict(
        "question -> answer", {"question": "Sky colour?"}, lm={"responses": [completion]}, include_trace=True
    )
    assert pred.answer == "Blue"
    assert len(pred.trace) == 1
    step = pred.trace[0]
    assert step.predictor == "self"  # DSPy's name for a top-level Predict (named_predictors())
    assert step.inputs == {"question": "Sky colour?"}
    assert step.outputs == {"answer": "Blue"}
    assert step.adapter == "chat"
    assert step.latency >= 0


async def test_predict_dummy_rules_and_auto(client: AsyncClient) -> None:
    lm = {"rules": [{"contains": "France", "response": {"answer": "Paris"}}], "auto": True}
    assert (await client.predict("question -> answer", question="Capital of France?", lm=lm)).answer == "Paris"
    assert (await client.predict("question -> answer", question="Other?", lm=lm)).answer == "dummy answer for: Other?"


async def test_predict_chain_of_thought(client: AsyncClient) -> None:
    pred = await client.predict(
        "question -> answer",
        question="What is 2 + 2?",
        module="chain_of_thought",
        lm={"responses": [{"reasoning": "Two plus two is four.", "answer": "4"}]},
    )
    assert pred.reasoning == "Two plus two is four."
    assert pred.answer == "4"  # a str field stays a str
    assert set(pred.outputs) == {"reasoning", "answer"}  # Struct keys carry no order


async def test_predict_builtin_dummy_model_and_usage(client: AsyncClient) -> None:
    pred = await client.predict("question -> answer", question="Why?", lm="dummy")
    assert pred.answer == "dummy answer for: Why?"
    assert all(isinstance(u, Usage) for u in pred.usage)


async def test_predict_with_mock_lm_model(client: AsyncClient, mock_lm) -> None:
    mock_lm.enqueue("[[ ## answer ## ]]\nRome\n\n[[ ## completed ## ]]")
    pred = await client.predict("question -> answer", question="Capital of Italy?", lm="mock")
    assert pred.answer == "Rome"
    assert len(pred.usage) == 1
    usage = pred.usage[0]
    assert usage.calls == 1
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert pred.total_tokens == usage.total_tokens
    assert "Capital of Italy?" in mock_lm.requests[-1].last_user_text


async def test_predict_instructions_demos_and_adapter_reach_the_prompt(client: AsyncClient, mock_lm) -> None:
    mock_lm.enqueue('{"answer": "Madrid"}')
    pred = await client.predict(
        "question -> answer",
        question="Capital of Spain?",
        lm="mock",
        instructions="Answer with a city name only.",
        demos=[{"question": "Capital of Peru?", "answer": "Lima"}],
        adapter="json",
    )
    assert pred.answer == "Madrid"
    messages = mock_lm.requests[-1].messages
    text = "\n".join(str(m.get("content")) for m in messages)
    assert "Answer with a city name only." in text
    assert "Capital of Peru?" in text and "Lima" in text


# ---------------------------------------------------------------------------------------- programs


async def test_program_lifecycle(client: AsyncClient) -> None:
    program_id = _id("qa")
    created = await client.create_program(
        program_id,
        "question -> answer",
        lm={"responses": [{"answer": "first"}]},
        display_name="Q&A",
        description="answers questions",
        labels={"team": "search"},
    )
    assert isinstance(created, Program)
    assert created.name == f"programs/{program_id}" and created.program_id == program_id
    assert created.revision_id == "r0001" and created.etag
    assert created.display_name == "Q&A" and created.labels == {"team": "search"}
    assert created.create_time is not None

    fetched = await client.get_program(created.name)
    assert fetched.revision_id == "r0001" and fetched.description == "answers questions"
    stored = fetched.raw.module.predict.predictor.signature
    assert [(f.name, f.role) for f in stored.fields] == [("question", 1), ("answer", 2)]

    pred = await client.predict(created.name, question="Anything?")
    assert pred.answer == "first"
    assert pred.program == created.name and pred.revision_id == "r0001"

    updated = await client.update_program(
        created.name,
        instructions="Be brief.",
        lm={"responses": [{"reasoning": "because", "answer": "second"}]},
        module="chain_of_thought",
        demos=[{"question": "q", "answer": "a"}],
    )
    assert updated.revision_id == "r0002" and updated.etag != created.etag
    assert updated.display_name == "Q&A"  # untouched by the module update
    predictor = updated.raw.module.chain_of_thought.predictor
    assert predictor.signature.instructions == "Be brief."
    assert len(predictor.demos) == 1

    pred2 = await client.predict(created.name, question="Anything?")
    assert pred2.answer == "second" and pred2.reasoning == "because" and pred2.revision_id == "r0002"
    pinned = await client.predict(f"{created.name}@r0001", question="Anything?")
    assert pinned.answer == "first" and pinned.revision_id == "r0001"
    assert (await client.predict(created, question="x")).revision_id == "r0001"  # a Program pins its revision

    renamed = await client.update_program(program_id, display_name="Questions")
    assert renamed.revision_id == "r0003" and renamed.display_name == "Questions"

    revisions = [p async for p in client.list_program_revisions(created.name)]
    assert [p.revision_id for p in revisions] == ["r0003", "r0002", "r0001"]

    with pytest.raises(AbortedError) as aborted:
        await client.update_program(created.name, description="stale", etag=created.etag)
    assert aborted.value.reason == "ETAG_MISMATCH"

    await client.delete_program(created.name)
    with pytest.raises(NotFoundError):
        await client.get_program(created.name)


async def test_list_programs_follows_page_tokens(client: AsyncClient) -> None:
    prefix = _id("page")
    ids = [f"{prefix}-{i}" for i in range(5)]
    for program_id in ids:
        await client.create_program(program_id, "question -> answer", lm="dummy")
    listed = [p.program_id async for p in client.list_programs(page_size=2)]
    assert [i for i in listed if i.startswith(prefix)] == ids
    assert listed == sorted(listed)


async def test_create_program_with_module_spec(client: AsyncClient) -> None:
    spec = module_pb2.ModuleSpec()
    spec.predict.predictor.signature.text = "text -> summary"
    program = await client.create_program(_id("spec"), spec)
    assert [f.name for f in program.module.predict.predictor.signature.fields] == ["text", "summary"]


# ------------------------------------------------------------------------------------------ errors


async def test_unknown_program_is_not_found(client: AsyncClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        await client.predict("programs/does-not-exist", question="hi")
    error = caught.value
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.reason == "PROGRAM_NOT_FOUND" and error.domain == "dspy-grpc"
    assert error.request_id
    assert isinstance(error, DspyGrpcError)
    assert "NOT_FOUND" in str(error)


async def test_missing_input_names_the_field(client: AsyncClient) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await client.predict("question, context -> answer", question="hi", lm="dummy")
    error = caught.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.field_violations, error
    assert any("context" in field or "context" in desc for field, desc in error.field_violations)
    assert any(field.startswith("inputs") for field, _ in error.field_violations)


async def test_malformed_signature_is_invalid_argument(client: AsyncClient) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await client.predict("question answer", question="hi", lm="dummy")
    assert caught.value.field_violations
    assert any("signature" in field for field, _ in caught.value.field_violations)


async def test_duplicate_program_is_already_exists(client: AsyncClient) -> None:
    program_id = _id("dup")
    await client.create_program(program_id, "question -> answer")
    with pytest.raises(AlreadyExistsError) as caught:
        await client.create_program(program_id, "question -> answer")
    assert caught.value.reason == "PROGRAM_EXISTS"
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS


async def test_exhausted_dummy_script_is_failed_precondition(client: AsyncClient) -> None:
    with pytest.raises(FailedPreconditionError) as caught:
        await client.predict("question -> answer", question="hi", lm={"responses": []})
    assert caught.value.reason == "DUMMY_LM_EXHAUSTED"


async def test_unreachable_server_is_unavailable() -> None:
    async with AsyncClient("127.0.0.1:1", timeout=5) as dead:
        with pytest.raises(UnavailableError) as caught:
            await dead.get_program("programs/x")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


async def test_client_side_argument_errors(client: AsyncClient) -> None:
    with pytest.raises(ValueError, match="both"):
        await client.predict("question -> answer", {"question": "a"}, question="b")
    with pytest.raises(ValueError, match="unknown module"):
        await client.predict("question -> answer", question="a", module="react")
    with pytest.raises(ValueError, match="inline"):
        await client.predict("programs/qa", question="a", instructions="x")


# ------------------------------------------------------------------------- sync client, subprocess


@pytest.fixture(scope="module")
def subprocess_server(tmp_path_factory) -> Iterator[str]:
    """``dspy-grpc serve --port 0`` in a subprocess; yields its ``host:port``."""

    db = tmp_path_factory.mktemp("sync-db") / "x.db"
    exe = Path(sys.executable).with_name("dspy-grpc")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "dspy_grpc_server"]
    proc = subprocess.Popen(
        [*command, "serve", "--port", "0", "--database-url", f"sqlite+aiosqlite:///{db}", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env={**os.environ},
    )
    found: list[str] = []
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if not found and line.startswith("dspy-grpc listening on "):
                found.append(line.removeprefix("dspy-grpc listening on ").strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for _ in range(300):
            if found or proc.poll() is not None:
                break
            threading.Event().wait(0.1)
        if not found:
            pytest.fail("server did not start:\n" + "".join(lines))
        yield found[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.asyncio(loop_scope="session")
async def test_sync_client_against_subprocess_server(subprocess_server: str) -> None:
    # The blocking client runs in a worker thread so the session event loop stays free.
    def scenario() -> None:
        with Client(subprocess_server, timeout=20, metadata={"x-request-id": "sync-test-1"}) as sync:
            pred = sync.predict("question -> answer", question="Hello?", lm="dummy")
            assert pred.answer == "dummy answer for: Hello?"
            scripted = sync.predict(
                "question -> answer", {"question": "Q"}, module="chain_of_thought",
                lm={"responses": [{"reasoning": "r", "answer": "A"}]},
            )
            assert (scripted.reasoning, scripted.answer) == ("r", "A")

            program = sync.create_program("sync-qa", "question -> answer", lm="dummy")
            assert program.revision_id == "r0001"
            assert sync.predict("programs/sync-qa", question="Ping").answer == "dummy answer for: Ping"
            assert [p.name for p in sync.list_programs()] == ["programs/sync-qa"]
            assert sync.update_program("sync-qa", instructions="Terse.").revision_id == "r0002"
            assert [p.revision_id for p in sync.list_program_revisions("sync-qa")] == ["r0002", "r0001"]
            sync.delete_program("sync-qa")
            with pytest.raises(NotFoundError) as caught:
                sync.get_program("sync-qa")
            assert caught.value.reason == "PROGRAM_NOT_FOUND"
            assert caught.value.request_id == "sync-test-1"

    await asyncio.to_thread(scenario)

"""Stored programs at run time: activation and rollback, workers with metrics, input quarantine."""

from __future__ import annotations

import grpc
import pytest
from dspy_grpc.v1 import (
    inference_pb2,
    inference_pb2_grpc,
    program_admin_pb2,
    program_admin_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)
from google.protobuf import json_format

from tests.integration.grpc_helpers import error_details
from tests.integration.test_modules import predictor
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")


def scripted(answer: str) -> dict:
    return {"predict": {"predictor": predictor("question -> answer", lm={"dummy": {"responses": [
        {"fields": {"answer": answer}}]}})}}


async def create(channel, program_id: str, module: dict) -> program_pb2.Program:
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    return await programs.CreateProgram(json_format.ParseDict(
        {"programId": program_id, "program": {"module": module}}, program_pb2.CreateProgramRequest()))


async def answer_of(channel, name: str, question: str = "?") -> str:
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = json_format.ParseDict({"program": name, "inputs": {"question": question}},
                                    inference_pb2.PredictRequest())
    return (await stub.Predict(request, timeout=10)).prediction.outputs["answer"]


async def test_rollback_and_activate_choose_the_revision_that_runs(channel):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    await create(channel, "versions", scripted("one"))
    updated = json_format.ParseDict({"name": "programs/versions", "module": scripted("two")}, program_pb2.Program())
    await programs.UpdateProgram(program_pb2.UpdateProgramRequest(program=updated))
    assert await answer_of(channel, "programs/versions") == "two"

    rolled = await programs.RollbackProgram(program_pb2.RollbackProgramRequest(name="programs/versions"))
    assert rolled.active_revision_id == "r0001" and rolled.revision_id == "r0001"
    assert await answer_of(channel, "programs/versions") == "one"
    assert await answer_of(channel, "programs/versions@r0002") == "two"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await programs.RollbackProgram(program_pb2.RollbackProgramRequest(name="programs/versions"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)["reason"] == "NO_EARLIER_REVISION"

    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await programs.ActivateProgramRevision(program_pb2.ActivateProgramRevisionRequest(
            name="programs/versions@r0002", etag=updated.etag or "stale"))
    assert stale.value.code() == grpc.StatusCode.ABORTED
    activated = await programs.ActivateProgramRevision(
        program_pb2.ActivateProgramRevisionRequest(name="programs/versions@r0002", etag=rolled.etag))
    assert activated.active_revision_id == "r0002"
    assert await answer_of(channel, "programs/versions") == "two"

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await programs.ActivateProgramRevision(program_pb2.ActivateProgramRevisionRequest(name="programs/versions@r0009"))
    assert error_details(missing.value)["reason"] == "REVISION_NOT_FOUND"


async def test_workers_count_calls_errors_latency_and_tokens(channel, mock_lm):
    await create(channel, "metered", {"predict": {"predictor": predictor("question -> answer", lm={"model": "mock"})}})
    await answer_of(channel, "programs/metered", "first")
    await answer_of(channel, "programs/metered", "second")
    mock_lm.enqueue(MockReply.error(400, "bad request"))
    with pytest.raises(grpc.aio.AioRpcError):
        await answer_of(channel, "programs/metered", "third")
    admin = program_admin_pb2_grpc.ProgramAdminServiceStub(channel)
    workers = (await admin.ListProgramWorkers(program_admin_pb2.ListProgramWorkersRequest())).workers
    worker = next(w for w in workers if w.program == "programs/metered")
    assert (worker.revision_id, worker.calls, worker.errors) == ("r0001", 3, 1)
    assert worker.latency[-1].infinite and worker.latency[-1].count == 3
    assert worker.prompt_tokens > 0 and worker.completion_tokens > 0


async def test_an_input_that_keeps_failing_is_quarantined_until_cleared(server_factory, mock_lm, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first = await server_factory(database_url=url, quarantine_failures=3)
    mock_lm.default_reply = MockReply(text="I will not use your format.")
    module = {"predict": {"predictor": predictor("question -> answer", lm={"model": "mock"})}}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        await create(channel, "fragile", module)
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        poison = json_format.ParseDict({"program": "programs/fragile", "inputs": {"question": "poison"}},
                                       inference_pb2.PredictRequest())
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Predict(poison, timeout=10)
            assert error_details(caught.value)["reason"] == "PARSE_ERROR"
        sent = len(mock_lm.completion_requests)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Predict(poison, timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(refused.value)["reason"] == "QUARANTINED"
        assert len(mock_lm.completion_requests) == sent  # refused without calling the LM
        # Other inputs still run.
        mock_lm.default_reply = None
        fine = json_format.ParseDict({"program": "programs/fragile", "inputs": {"question": "fine"}},
                                     inference_pb2.PredictRequest())
        assert (await stub.Predict(fine, timeout=10)).prediction.outputs["answer"] == "mock answer for: fine"

    second = await server_factory(database_url=url)  # the quarantine is stored: another server refuses too
    async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await stub.Predict(poison, timeout=10)
        assert error_details(again.value)["reason"] == "QUARANTINED"
        admin = program_admin_pb2_grpc.ProgramAdminServiceStub(channel)
        listed = (await admin.ListQuarantinedInputs(
            program_admin_pb2.ListQuarantinedInputsRequest(parent="programs/fragile"))).quarantined_inputs
        assert len(listed) == 1
        entry = listed[0]
        assert entry.reason == "PARSE_ERROR" and entry.failure_count == 3 and entry.revision_id == "r0001"
        assert json_format.MessageToDict(entry.inputs) == {"question": "poison"}
        assert entry.name == f"programs/fragile/quarantinedInputs/{entry.input_hash}"
        cleared = await admin.ClearQuarantinedInputs(program_admin_pb2.ClearQuarantinedInputsRequest(name=entry.name))
        assert cleared.cleared_count == 1
        assert (await stub.Predict(poison, timeout=10)).prediction.outputs["answer"] == "mock answer for: poison"
        assert not (await admin.ListQuarantinedInputs(program_admin_pb2.ListQuarantinedInputsRequest())).quarantined_inputs


async def test_clearing_with_a_malformed_name_is_invalid(channel):
    admin = program_admin_pb2_grpc.ProgramAdminServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.ClearQuarantinedInputs(program_admin_pb2.ClearQuarantinedInputsRequest(name="fragile"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in error_details(caught.value)["violations"]

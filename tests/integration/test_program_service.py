"""ProgramService through gRPC against a real server: CRUD, revisions, paging, errors."""

from __future__ import annotations

import grpc
import pytest
from dspy_grpc.v1 import module_pb2, program_pb2, program_pb2_grpc
from google.protobuf import field_mask_pb2, json_format

from tests.integration.grpc_helpers import error_details

pytestmark = pytest.mark.asyncio(loop_scope="session")


def qa_program(instructions: str = "Answer briefly.") -> program_pb2.Program:
    return json_format.ParseDict(
        {
            "displayName": "QA",
            "description": "answers questions",
            "labels": {"team": "search"},
            "module": {
                "chainOfThought": {
                    "predictor": {
                        "signature": {"text": "question -> answer", "instructions": instructions},
                        "lm": {"model": "dummy"},
                    }
                }
            },
        },
        program_pb2.Program(),
    )


async def test_create_get_and_revisions(channel):
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    created = await stub.CreateProgram(program_pb2.CreateProgramRequest(program_id="qa", program=qa_program()))
    assert created.name == "programs/qa"
    assert created.revision_id == "r0001"
    assert created.active_revision_id == "r0001"
    assert created.module.chain_of_thought.predictor.signature.instructions == "Answer briefly."
    # The string signature is stored structured.
    fields = created.module.chain_of_thought.predictor.signature.fields
    assert [(f.name, f.role) for f in fields] == [("question", 1), ("answer", 2)]

    updated_program = qa_program("Answer in one word.")
    updated_program.name = "programs/qa"
    updated_program.etag = created.etag
    updated = await stub.UpdateProgram(
        program_pb2.UpdateProgramRequest(program=updated_program, update_mask=field_mask_pb2.FieldMask(paths=["module"]))
    )
    assert updated.revision_id == "r0002"
    assert updated.etag != created.etag

    latest = await stub.GetProgram(program_pb2.GetProgramRequest(name="programs/qa"))
    assert latest.module.chain_of_thought.predictor.signature.instructions == "Answer in one word."
    first = await stub.GetProgram(program_pb2.GetProgramRequest(name="programs/qa@r0001"))
    assert first.module.chain_of_thought.predictor.signature.instructions == "Answer briefly."
    assert first.revision_id == "r0001" and first.name == "programs/qa"

    revisions = await stub.ListProgramRevisions(program_pb2.ListProgramRevisionsRequest(name="programs/qa"))
    assert [p.revision_id for p in revisions.programs] == ["r0002", "r0001"]

    # A stale etag is refused and writes nothing.
    stale = qa_program("never stored")
    stale.name = "programs/qa"
    stale.etag = created.etag
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpdateProgram(program_pb2.UpdateProgramRequest(program=stale))
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert error_details(caught.value)["reason"] == "ETAG_MISMATCH"
    revisions = await stub.ListProgramRevisions(program_pb2.ListProgramRevisionsRequest(name="programs/qa"))
    assert len(revisions.programs) == 2


async def test_list_pages_through_every_program(channel):
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    for index in range(5):
        await stub.CreateProgram(program_pb2.CreateProgramRequest(program_id=f"p{index}", program=qa_program()))
    seen, token = [], ""
    while True:
        page = await stub.ListPrograms(program_pb2.ListProgramsRequest(page_size=2, page_token=token))
        assert len(page.programs) <= 2
        seen += [p.name for p in page.programs]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"programs/p{i}" for i in range(5)]


async def test_delete_then_not_found(channel):
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    await stub.CreateProgram(program_pb2.CreateProgramRequest(program_id="gone", program=qa_program()))
    await stub.DeleteProgram(program_pb2.DeleteProgramRequest(name="programs/gone"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetProgram(program_pb2.GetProgramRequest(name="programs/gone"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    details = error_details(caught.value)
    assert details["reason"] == "PROGRAM_NOT_FOUND" and details["domain"] == "dspy-grpc"


async def test_duplicate_id_is_already_exists(channel):
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    await stub.CreateProgram(program_pb2.CreateProgramRequest(program_id="dup", program=qa_program()))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateProgram(program_pb2.CreateProgramRequest(program_id="dup", program=qa_program()))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_details(caught.value)["reason"] == "PROGRAM_EXISTS"


@pytest.mark.parametrize(
    ("request_json", "field"),
    [
        ({"programId": "Bad_Id", "program": {"module": {"predict": {"predictor": {"signature": {"text": "a -> b"}}}}}},
         "program_id"),
        ({"programId": "nosig", "program": {"module": {"predict": {"predictor": {}}}}},
         "program.module.predict.predictor.signature"),
        ({"programId": "badsig", "program": {"module": {"predict": {"predictor": {"signature": {"text": "a -> "}}}}}},
         "program.module.predict.predictor.signature.text"),
        ({"programId": "nomodule", "program": {"displayName": "x"}}, "program.module"),
        ({"programId": "dupfield", "program": {"module": {"predict": {"predictor": {"signature": {"fields": [
            {"name": "a", "role": "FIELD_ROLE_INPUT"}, {"name": "a", "role": "FIELD_ROLE_OUTPUT"}]}}}}}},
         "program.module.predict.predictor.signature.fields[1].name"),
    ],
)
async def test_bad_create_names_the_field_and_writes_nothing(channel, request_json, field):
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    request = json_format.ParseDict(request_json, program_pb2.CreateProgramRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateProgram(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = error_details(caught.value)["violations"]
    assert field in violations, violations
    listing = await stub.ListPrograms(program_pb2.ListProgramsRequest())
    assert request.program_id not in [p.name.split("/")[1] for p in listing.programs]


async def test_malformed_names(channel):
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    for name in ["", "qa", "programs/", "programs/qa/extra"]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetProgram(program_pb2.GetProgramRequest(name=name))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert "name" in error_details(caught.value)["violations"]


async def test_update_mask_rejects_unknown_paths(channel):
    stub = program_pb2_grpc.ProgramServiceStub(channel)
    await stub.CreateProgram(program_pb2.CreateProgramRequest(program_id="masked", program=qa_program()))
    program = program_pb2.Program(name="programs/masked", display_name="renamed")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpdateProgram(
            program_pb2.UpdateProgramRequest(program=program, update_mask=field_mask_pb2.FieldMask(paths=["etag"]))
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask.paths[0]" in error_details(caught.value)["violations"]
    renamed = await stub.UpdateProgram(
        program_pb2.UpdateProgramRequest(program=program, update_mask=field_mask_pb2.FieldMask(paths=["display_name"]))
    )
    assert renamed.display_name == "renamed"
    assert renamed.module.WhichOneof("module") == "chain_of_thought"  # untouched
    assert renamed.revision_id == "r0002"
    assert module_pb2.ADAPTER_KIND_CHAT == renamed.module.chain_of_thought.predictor.adapter

"""ProgramService: translation between requests and :class:`~..app.programs.Programs`."""

from __future__ import annotations

import json

import grpc
from dspy_grpc.v1 import program_pb2, program_pb2_grpc
from google.protobuf import empty_pb2

from ..app.programs import Programs
from ..core.errors import invalid
from .convert import module_from_proto, program_ref, program_to_proto

UPDATABLE = ("display_name", "description", "labels", "module")


class ProgramService(program_pb2_grpc.ProgramServiceServicer):
    def __init__(self, programs: Programs) -> None:
        self._programs = programs

    async def CreateProgram(self, request: program_pb2.CreateProgramRequest, context: grpc.aio.ServicerContext):
        if not request.HasField("program"):
            raise invalid("program", "is required")
        if not request.program.HasField("module"):
            raise invalid("program.module", "is required: set one module kind (predict, chain_of_thought, ...)")
        program = request.program
        created = await self._programs.create(
            request.program_id,
            module=module_from_proto(program.module, "program.module"),
            display_name=program.display_name,
            description=program.description,
            labels=dict(program.labels),
        )
        return program_to_proto(created)

    async def GetProgram(self, request: program_pb2.GetProgramRequest, context: grpc.aio.ServicerContext):
        ref = program_ref(request.name, "name")
        return program_to_proto(await self._programs.get(ref.program_id, ref.revision_id))

    async def ListPrograms(self, request: program_pb2.ListProgramsRequest, context: grpc.aio.ServicerContext):
        programs, token = await self._programs.list(page_size=request.page_size, page_token=request.page_token)
        return program_pb2.ListProgramsResponse(
            programs=[program_to_proto(p) for p in programs], next_page_token=token
        )

    async def UpdateProgram(self, request: program_pb2.UpdateProgramRequest, context: grpc.aio.ServicerContext):
        if not request.HasField("program"):
            raise invalid("program", "is required")
        program = request.program
        ref = program_ref(program.name, "program.name", allow_revision=False)
        paths = list(request.update_mask.paths)
        if not paths or paths == ["*"]:
            paths = list(UPDATABLE)
        for index, path in enumerate(paths):
            if path not in UPDATABLE:
                raise invalid(f"update_mask.paths[{index}]", f"{path!r} cannot be updated; use {', '.join(UPDATABLE)}")
        module = None
        if "module" in paths:
            if not program.HasField("module"):
                raise invalid("program.module", "is required when update_mask names module")
            module = module_from_proto(program.module, "program.module")
        updated = await self._programs.update(
            ref.program_id,
            module=module,
            display_name=program.display_name if "display_name" in paths else None,
            description=program.description if "description" in paths else None,
            labels=dict(program.labels) if "labels" in paths else None,
            etag=program.etag,
        )
        return program_to_proto(updated)

    async def DeleteProgram(self, request: program_pb2.DeleteProgramRequest, context: grpc.aio.ServicerContext):
        ref = program_ref(request.name, "name", allow_revision=False)
        await self._programs.delete(ref.program_id, etag=request.etag)
        return empty_pb2.Empty()

    async def ListProgramRevisions(
        self, request: program_pb2.ListProgramRevisionsRequest, context: grpc.aio.ServicerContext
    ):
        ref = program_ref(request.name, "name", allow_revision=False)
        programs, token = await self._programs.list_revisions(
            ref.program_id, page_size=request.page_size, page_token=request.page_token
        )
        return program_pb2.ListProgramRevisionsResponse(
            programs=[program_to_proto(p) for p in programs], next_page_token=token
        )

    async def ActivateProgramRevision(
        self, request: program_pb2.ActivateProgramRevisionRequest, context: grpc.aio.ServicerContext
    ):
        ref = program_ref(request.name, "name")
        if not ref.revision_id:
            raise invalid("name", "name the revision to activate: \"programs/{program}@{revision_id}\"")
        return program_to_proto(await self._programs.activate(ref.program_id, ref.revision_id, etag=request.etag))

    async def RollbackProgram(self, request: program_pb2.RollbackProgramRequest, context: grpc.aio.ServicerContext):
        ref = program_ref(request.name, "name", allow_revision=False)
        return program_to_proto(await self._programs.rollback(ref.program_id, etag=request.etag))

    async def ImportDspyProgram(
        self, request: program_pb2.ImportDspyProgramRequest, context: grpc.aio.ServicerContext
    ):
        ref = program_ref(request.name, "name", allow_revision=False)
        module = module_from_proto(request.module, "module") if request.HasField("module") else None
        imported = await self._programs.import_dspy(ref.program_id, request.dspy_json, module=module,
                                                    etag=request.etag)
        return program_to_proto(imported)

    async def ExportDspyProgram(
        self, request: program_pb2.ExportDspyProgramRequest, context: grpc.aio.ServicerContext
    ):
        ref = program_ref(request.name, "name")
        program, state = await self._programs.export_dspy(ref.program_id, ref.revision_id)
        return program_pb2.ExportDspyProgramResponse(
            dspy_json=json.dumps(state, indent=2, ensure_ascii=False),
            predictors=[name for name in state if name != "metadata"],
            revision_id=program.record.revision_id,
        )

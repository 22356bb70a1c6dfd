"""ProgramAdminService: translation between requests and :class:`~..app.program_admin.ProgramAdmin`."""

from __future__ import annotations

import re

import grpc
from dspy_grpc.v1 import program_admin_pb2, program_admin_pb2_grpc
from google.protobuf import duration_pb2, timestamp_pb2

from ..app.program_admin import ProgramAdmin
from ..app.workers import ProgramWorker
from ..core.errors import invalid
from ..store.quarantine import QuarantineRecord
from .convert import program_name, program_ref, values_fields

QUARANTINED_NAME = re.compile(r"^programs/([^/@]+)/quarantinedInputs/([0-9a-f]{64})$")


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def _timestamp(value) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def worker_to_proto(worker: ProgramWorker) -> program_admin_pb2.ProgramWorker:
    metrics = worker.metrics
    return program_admin_pb2.ProgramWorker(
        program=program_name(worker.program_id),
        revision_id=worker.revision_id,
        load_time=_timestamp(worker.load_time),
        calls=metrics.calls,
        errors=metrics.errors,
        quarantined_calls=metrics.quarantined_calls,
        latency=[
            program_admin_pb2.LatencyBucket(
                upper_bound=_duration(bound or 0.0), infinite=bound is None, count=count
            )
            for bound, count in metrics.cumulative()
        ],
        latency_sum=_duration(metrics.latency_sum_s),
        prompt_tokens=metrics.prompt_tokens,
        completion_tokens=metrics.completion_tokens,
    )


def quarantined_to_proto(record: QuarantineRecord) -> program_admin_pb2.QuarantinedInput:
    program = program_name(record.program_id)
    return program_admin_pb2.QuarantinedInput(
        name=f"{program}/quarantinedInputs/{record.input_hash}",
        program=program,
        input_hash=record.input_hash,
        **values_fields("inputs", record.inputs),
        revision_id=record.revision_id,
        reason=record.reason,
        message=record.message,
        failure_count=record.failure_count,
        create_time=_timestamp(record.create_time),
    )


class ProgramAdminService(program_admin_pb2_grpc.ProgramAdminServiceServicer):
    def __init__(self, admin: ProgramAdmin) -> None:
        self._admin = admin

    async def ListProgramWorkers(self, request, context: grpc.aio.ServicerContext):
        return program_admin_pb2.ListProgramWorkersResponse(
            workers=[worker_to_proto(worker) for worker in self._admin.workers()]
        )

    async def ListQuarantinedInputs(self, request, context: grpc.aio.ServicerContext):
        program_id = program_ref(request.parent, "parent", allow_revision=False).program_id if request.parent else None
        records, token = await self._admin.quarantined(
            program_id, page_size=request.page_size, page_token=request.page_token
        )
        return program_admin_pb2.ListQuarantinedInputsResponse(
            quarantined_inputs=[quarantined_to_proto(record) for record in records], next_page_token=token
        )

    async def ClearQuarantinedInputs(self, request, context: grpc.aio.ServicerContext):
        one = QUARANTINED_NAME.match(request.name)
        if one is not None:
            cleared = await self._admin.clear(one.group(1), one.group(2))
        elif request.name.startswith("programs/") and "/" not in request.name.removeprefix("programs/"):
            cleared = await self._admin.clear(program_ref(request.name, "name", allow_revision=False).program_id)
        else:
            raise invalid("name", "must be \"programs/{program}\" or \"programs/{program}/quarantinedInputs/{hash}\"")
        return program_admin_pb2.ClearQuarantinedInputsResponse(cleared_count=cleared)

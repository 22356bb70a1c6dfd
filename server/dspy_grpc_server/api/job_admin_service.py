"""JobAdminService: translation between requests and the job host's poison-job operations."""

from __future__ import annotations

import re

import grpc
from dspy_grpc.v1 import job_admin_pb2, job_admin_pb2_grpc
from google.protobuf import timestamp_pb2

from ..app.jobs import JobHost
from ..core.errors import invalid
from ..store.jobs import JobRecord
from .optimize_convert import job_error_to_proto, job_state_to_proto

JOB_NAME = re.compile(r"^(evaluation|optimization)s/([a-z0-9][a-z0-9-]{0,62})$")


def _job_name(name: str, field: str) -> tuple[str, str]:
    if not name:
        raise invalid(field, 'is required: "evaluations/{id}" or "optimizations/{id}"')
    match = JOB_NAME.fullmatch(name)
    if match is None:
        raise invalid(field, f'{name!r} is not a job name ("evaluations/{{id}}" or "optimizations/{{id}}")')
    return match.group(1), match.group(2)


def quarantined_job_to_proto(record: JobRecord) -> job_admin_pb2.QuarantinedJob:
    job = job_admin_pb2.QuarantinedJob(
        name=f"{record.kind}s/{record.job_id}", owner_deaths=record.owner_deaths,
        error=job_error_to_proto(record.error or {}),
    )
    if record.end_time is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(record.end_time)
        job.end_time.CopyFrom(stamp)
    return job


class JobAdminService(job_admin_pb2_grpc.JobAdminServiceServicer):
    def __init__(self, host: JobHost) -> None:
        self._host = host

    async def ListQuarantinedJobs(self, request: job_admin_pb2.ListQuarantinedJobsRequest,
                                  context: grpc.aio.ServicerContext):
        records, token = await self._host.quarantined(page_size=request.page_size, page_token=request.page_token)
        return job_admin_pb2.ListQuarantinedJobsResponse(
            jobs=[quarantined_job_to_proto(r) for r in records], next_page_token=token)

    async def RetryJob(self, request: job_admin_pb2.RetryJobRequest, context: grpc.aio.ServicerContext):
        kind, job_id = _job_name(request.name, "name")
        record = await self._host.retry(kind, job_id)
        return job_admin_pb2.RetryJobResponse(
            name=request.name, state=job_state_to_proto(record.state))

"""Poison jobs (issue #13): a job that was running each time its server died (kill -9), twice in a
row, is not resumed again -- it ends FAILED with reason JOB_QUARANTINED, is listed by
JobAdminService, and runs again only when retried explicitly. A restart never loops on it."""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest
from dspy_grpc.v1 import job_admin_pb2, job_admin_pb2_grpc, job_pb2

from tests.integration.job_helpers import create_dataset, create_evaluation, create_program, exact_match
from tests.integration.job_helpers import wait_evaluation
from tests.integration.replicas import start_replica
from tests.mocklm import arithmetic

# Each test starts several server processes: on a loaded machine that alone can take a minute.
pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(300)]


async def wait_requests(mock_lm, count: int, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(mock_lm.requests) < count:
        assert asyncio.get_running_loop().time() < deadline, f"only {len(mock_lm.requests)} LM requests"
        await asyncio.sleep(0.02)


async def test_a_job_whose_server_dies_twice_running_it_is_quarantined_and_can_be_retried(tmp_path, mock_lm):
    arithmetic.install(mock_lm)
    mock_lm.latency_s = 30.0  # every call hangs: the server dies (kill -9) while running the job
    database = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    server = await start_replica(tmp_path, mock_lm.base_url, database, extra="")
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            await create_dataset(channel, "sums", arithmetic.examples(4))
            await create_program(channel, "adder")
            job = await create_evaluation(channel, {"program": "programs/adder", "dataset": "datasets/sums",
                                                    "metric": exact_match()}, evaluation_id="poison")
        await wait_requests(mock_lm, 1)
        await server.stop(signal.SIGKILL)

        # First death: the job is resumed (it may have been bad luck) ... The first server sent up to
        # one request per example at once: only a request sent after it died shows the job resumed
        # (the mock is given a moment to record what the dead server had already sent).
        await asyncio.sleep(0.5)
        mock_lm.requests.clear()
        server = await start_replica(tmp_path, mock_lm.base_url, database, extra="")
        await wait_requests(mock_lm, 1)
        await server.stop(signal.SIGKILL)

        # ... second death in a row: not resumed again.
        await asyncio.sleep(0.5)  # (as above)
        mock_lm.requests.clear()
        server = await start_replica(tmp_path, mock_lm.base_url, database, extra="")
        async with grpc.aio.insecure_channel(server.target) as channel:
            failed = await wait_evaluation(channel, job.name)
            assert failed.state == job_pb2.JOB_STATE_FAILED
            assert failed.error.reason == "JOB_QUARANTINED"
            assert failed.error.code == "FAILED_PRECONDITION"
            assert mock_lm.requests == []  # not started again

            admin = job_admin_pb2_grpc.JobAdminServiceStub(channel)
            listed = await admin.ListQuarantinedJobs(job_admin_pb2.ListQuarantinedJobsRequest())
            assert [(j.name, j.owner_deaths, j.error.reason) for j in listed.jobs] == [
                ("evaluations/poison", 2, "JOB_QUARANTINED")]

            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.RetryJob(job_admin_pb2.RetryJobRequest(name="evaluations/nope"))
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.RetryJob(job_admin_pb2.RetryJobRequest(name="jobs/poison"))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

            # The cause is fixed (the LM answers again): an explicit retry runs it to the end.
            mock_lm.latency_s = 0.0
            retried = await admin.RetryJob(job_admin_pb2.RetryJobRequest(name=job.name))
            assert retried.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)
            done = await wait_evaluation(channel, job.name)
            assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
            listed = await admin.ListQuarantinedJobs(job_admin_pb2.ListQuarantinedJobsRequest())
            assert list(listed.jobs) == []
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.RetryJob(job_admin_pb2.RetryJobRequest(name=job.name))
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await server.stop(signal.SIGKILL)

"""PostgreSQL or Redis going away: calls fail with UNAVAILABLE and a clear reason (never INTERNAL), the
server stays up, and it recovers by itself when they return; losing Redis loses no stored data."""

from __future__ import annotations

import shutil

import grpc
import pytest
from dspy_grpc.v1 import program_pb2, program_pb2_grpc

from tests.integration.grpc_helpers import error_details
from tests.integration.test_program_runtime import answer_of, create, scripted
from tests.integration.test_replicas_programs import eventually
from tests.services import PostgresCluster, RedisServer, postgres_bin_dir, require_binary

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def status_of(call) -> object:
    try:
        await call()
        return "OK"
    except grpc.aio.AioRpcError as error:
        return error.code(), error_details(error).get("reason")


@pytest.fixture
def private_postgres():
    """A cluster of this test's own, so that stopping it disturbs no other test."""

    cluster = PostgresCluster(require_binary(postgres_bin_dir(), "PostgreSQL (initdb)")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def test_postgres_outage_is_unavailable_and_the_server_recovers(server_factory, private_postgres):
    running = await server_factory(database_url=private_postgres.create_database(), active_revision_refresh_s=0.0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        programs = program_pb2_grpc.ProgramServiceStub(channel)
        await create(channel, "steady", scripted("still here"))
        private_postgres.pause()
        try:
            listing = await status_of(lambda: programs.ListPrograms(program_pb2.ListProgramsRequest(), timeout=30))
            assert listing == (grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")
            running_call = await status_of(lambda: answer_of(channel, "programs/steady"))
            assert running_call == (grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")
        finally:
            private_postgres.resume()
        assert await eventually(lambda: answer_of(channel, "programs/steady"), "still here") == "still here"
        assert [p.name for p in (await programs.ListPrograms(program_pb2.ListProgramsRequest())).programs] == [
            "programs/steady"]
        assert running.app.changes.transport == "postgresql"
        assert await eventually(lambda: _connected(running), True) is True


async def _connected(running) -> bool:
    return running.app.changes.connected


async def test_redis_outage_loses_no_stored_data_and_recovers(server_factory, tmp_path):
    redis = RedisServer(require_binary(shutil.which("redis-server"), "redis-server")).start()
    try:
        running = await server_factory(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
                                       cache_redis_url=redis.url)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            await create(channel, "durable", scripted("kept"))
            assert await answer_of(channel, "programs/durable") == "kept"
            redis.stop()
            # The cache and notifications are Redis's part: without them calls still run, from the store.
            assert await answer_of(channel, "programs/durable", "another question") == "kept"
            assert await eventually(lambda: _connected(running), False) is False
            redis.start()
            assert await eventually(lambda: _connected(running), True) is True
            program = await program_pb2_grpc.ProgramServiceStub(channel).GetProgram(
                program_pb2.GetProgramRequest(name="programs/durable"))
            assert program.revision_id == "r0001"
    finally:
        redis.stop()


async def test_shared_limits_without_redis_are_unavailable_until_it_returns(server_factory, mock_lm):
    from dspy_grpc.v1 import lm_pb2_grpc

    from dspy_grpc_server.app.config import BUILTIN_DUMMY
    from tests.conftest import mock_model_config
    from tests.integration.test_lm_service import complete_request

    redis = RedisServer(require_binary(shutil.which("redis-server"), "redis-server")).start()
    try:
        model = mock_model_config(mock_lm.base_url, max_in_flight=4, rpm=1000)
        running = await server_factory(models=(model, BUILTIN_DUMMY), cache_redis_url=redis.url, cache_enabled=False)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = lm_pb2_grpc.LMServiceStub(channel)
            await stub.Complete(complete_request(), timeout=10)
            redis.stop()
            assert await status_of(lambda: stub.Complete(complete_request(), timeout=10)) == (
                grpc.StatusCode.UNAVAILABLE, "REDIS_UNAVAILABLE")
            redis.start()
            assert await eventually(lambda: status_of(lambda: stub.Complete(complete_request(), timeout=10)),
                                    "OK") == "OK"
    finally:
        redis.stop()

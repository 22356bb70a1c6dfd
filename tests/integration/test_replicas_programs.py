"""Program changes reach every replica: delete + re-create, updates and activation, over PostgreSQL
LISTEN/NOTIFY, Redis pub/sub, and the polling fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest
from dspy_grpc.v1 import program_pb2, program_pb2_grpc
from google.protobuf import json_format

from tests.integration.test_program_runtime import answer_of, create, scripted

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: The longest a test waits for a change to arrive (a notification takes milliseconds; this only
#: keeps a broken feed from hanging the run).
PATIENCE_S = 30.0


async def eventually(probe: Callable[[], Awaitable[object]], expected: object) -> object:
    """``probe()`` until it returns ``expected`` (the last value otherwise, for the assertion)."""

    loop = asyncio.get_running_loop()
    give_up = loop.time() + PATIENCE_S
    while True:
        value = await probe()
        if value == expected or loop.time() > give_up:
            return value
        await asyncio.sleep(0.05)


async def delete(channel, program_id: str) -> None:
    await program_pb2_grpc.ProgramServiceStub(channel).DeleteProgram(
        program_pb2.DeleteProgramRequest(name=f"programs/{program_id}"))


async def test_delete_then_recreate_serves_the_new_definition_on_one_server(channel):
    await create(channel, "phoenix", scripted("first life"))
    assert await answer_of(channel, "programs/phoenix") == "first life"
    assert await answer_of(channel, "programs/phoenix@r0001") == "first life"
    await delete(channel, "phoenix")
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await answer_of(channel, "programs/phoenix")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    await create(channel, "phoenix", scripted("second life"))
    assert await answer_of(channel, "programs/phoenix") == "second life"
    assert await answer_of(channel, "programs/phoenix@r0001") == "second life"


async def _two_replicas(server_factory, **shared):
    first = await server_factory(**shared)
    second = await server_factory(**shared)
    return (grpc.aio.insecure_channel(f"127.0.0.1:{first.port}"),
            grpc.aio.insecure_channel(f"127.0.0.1:{second.port}"), first, second)


async def _changes_reach_the_other_replica(a, b) -> None:
    await create(a, "shared", scripted("one"))
    assert await answer_of(b, "programs/shared") == "one"
    assert await answer_of(b, "programs/shared@r0001") == "one"
    programs = program_pb2_grpc.ProgramServiceStub(a)
    updated = json_format.ParseDict({"name": "programs/shared", "module": scripted("two")}, program_pb2.Program())
    await programs.UpdateProgram(program_pb2.UpdateProgramRequest(program=updated))
    assert await eventually(lambda: answer_of(b, "programs/shared"), "two") == "two"
    await programs.RollbackProgram(program_pb2.RollbackProgramRequest(name="programs/shared"))
    assert await eventually(lambda: answer_of(b, "programs/shared"), "one") == "one"

    await delete(a, "shared")
    await create(a, "shared", scripted("reborn"))
    assert await eventually(lambda: answer_of(b, "programs/shared"), "reborn") == "reborn"
    assert await eventually(lambda: answer_of(b, "programs/shared@r0001"), "reborn") == "reborn"

    await delete(a, "shared")

    async def outcome() -> object:
        try:
            return await answer_of(b, "programs/shared@r0001")
        except grpc.aio.AioRpcError as error:
            return error.code()

    assert await eventually(outcome, grpc.StatusCode.NOT_FOUND) == grpc.StatusCode.NOT_FOUND


async def test_postgres_notifications_reach_every_replica(server_factory, postgres_url):
    # An hour of polling: only the LISTEN/NOTIFY feed can make the second replica see the changes.
    a, b, first, _ = await _two_replicas(server_factory, database_url=postgres_url, active_revision_refresh_s=3600.0)
    assert first.app.changes.transport == "postgresql"
    async with a, b:
        await _changes_reach_the_other_replica(a, b)


async def test_redis_notifications_reach_every_replica(server_factory, redis_url, tmp_path):
    shared = dict(database_url=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}", cache_redis_url=redis_url,
                  active_revision_refresh_s=3600.0)
    a, b, first, second = await _two_replicas(server_factory, **shared)
    assert first.app.changes.transport == "redis"
    assert await eventually(lambda: _connected(second), True)
    async with a, b:
        await _changes_reach_the_other_replica(a, b)


async def _connected(running) -> bool:
    return running.app.changes.connected


async def test_without_notifications_replicas_poll(server_factory, tmp_path):
    shared = dict(database_url=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}", program_notifications="off",
                  active_revision_refresh_s=0.2)
    a, b, first, _ = await _two_replicas(server_factory, **shared)
    assert first.app.changes.transport == "local"
    async with a, b:
        await _changes_reach_the_other_replica(a, b)

"""Authentication and authorization through the public surface: API keys with scopes in gRPC
metadata, the keys CLI, open health/reflection, TLS and mutual TLS."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2_grpc, program_pb2, program_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from dspy_grpc_server.app import cli
from tests.integration.certs import make_certs
from tests.integration.grpc_helpers import error_details
from tests.integration.test_predict import predict_request

pytestmark = pytest.mark.asyncio(loop_scope="session")

PREDICT = {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
           "inputs": {"question": "Capital of France?"}, "lm": {"model": "dummy"}}


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def predict(channel, metadata=()):
    return await inference_pb2_grpc.InferenceServiceStub(channel).Predict(
        predict_request(PREDICT), metadata=metadata, timeout=10)


async def list_programs(channel, metadata=()):
    return await program_pb2_grpc.ProgramServiceStub(channel).ListPrograms(
        program_pb2.ListProgramsRequest(), metadata=metadata, timeout=10)


async def failure(call) -> tuple[grpc.StatusCode, dict]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value.code(), error_details(raised.value)


@pytest.fixture
async def secured(server_factory):
    running = await server_factory(auth_enabled=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield running, channel


async def test_calls_without_a_key_are_unauthenticated(secured):
    _, channel = secured
    code, details = await failure(predict(channel))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert details["reason"] == "API_KEY_MISSING" and details["domain"] == "dspy-grpc"
    assert details["metadata"]["request_id"]


@pytest.mark.parametrize("value", ["Bearer dgk_0123456789ab_not-the-right-secret-at-all-000000000",
                                   "Bearer nonsense", "Basic dXNlcjpwYXNz"])
async def test_calls_with_a_wrong_key_are_unauthenticated(secured, value):
    _, channel = secured
    code, details = await failure(predict(channel, (("authorization", value),)))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert details["reason"] == "API_KEY_INVALID"


async def test_a_forged_secret_for_a_real_key_id_is_rejected(secured):
    running, channel = secured
    record, key = await running.app.api_keys.create("real", "infer")
    forged = key[: key.rindex("_") + 1] + "A" * 43
    code, details = await failure(predict(channel, bearer(forged)))
    assert code is grpc.StatusCode.UNAUTHENTICATED and details["reason"] == "API_KEY_INVALID"


async def test_scopes_decide_which_services_a_key_may_call(secured):
    running, channel = secured
    _, infer_key = await running.app.api_keys.create("inference only", "infer")
    _, programs_key = await running.app.api_keys.create("programs only", "programs")
    _, admin_key = await running.app.api_keys.create("ops", "admin")

    response = await predict(channel, bearer(infer_key))
    assert response.prediction.outputs["answer"]
    code, details = await failure(list_programs(channel, bearer(infer_key)))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert details["reason"] == "SCOPE_MISSING" and details["metadata"]["required_scope"] == "programs"

    await list_programs(channel, bearer(programs_key))
    code, _ = await failure(predict(channel, bearer(programs_key)))
    assert code is grpc.StatusCode.PERMISSION_DENIED

    await predict(channel, bearer(admin_key))
    await list_programs(channel, bearer(admin_key))


async def test_a_revoked_key_stops_working(secured):
    running, channel = secured
    record, key = await running.app.api_keys.create("short-lived", "infer")
    await predict(channel, bearer(key))
    await running.app.api_keys.revoke(record.key_id)
    code, details = await failure(predict(channel, bearer(key)))
    assert code is grpc.StatusCode.UNAUTHENTICATED and details["reason"] == "API_KEY_INVALID"


async def test_keys_are_stored_as_salted_hashes_only(secured):
    running, _ = secured
    _, key_a = await running.app.api_keys.create("a", "infer")
    _, key_b = await running.app.api_keys.create("b", "infer")
    async with running.app.database.engine.connect() as connection:
        rows = (await connection.exec_driver_sql("SELECT * FROM api_keys")).all()
    stored = " ".join(str(value) for row in rows for value in row)
    for key in (key_a, key_b):
        assert key.split("_", 2)[2] not in stored  # the secret (it may contain "_" itself)
    assert len({row.salt for row in rows}) == len(rows)


async def test_health_and_reflection_are_open_by_default(secured):
    _, channel = secured
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    services = [s.name async for response in call for s in response.list_services_response.service]
    assert "dspy_grpc.v1.InferenceService" in services


async def test_health_and_reflection_can_require_a_key(server_factory):
    running = await server_factory(auth_enabled=True, auth_open_health=False, auth_open_reflection=False)
    _, key = await running.app.api_keys.create("probe", "infer")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        code, _ = await failure(health.Check(health_pb2.HealthCheckRequest(), timeout=5))
        assert code is grpc.StatusCode.UNAUTHENTICATED
        reply = await health.Check(health_pb2.HealthCheckRequest(), metadata=bearer(key), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        code, _ = await failure(anext(aiter(call)))
        assert code is grpc.StatusCode.UNAUTHENTICATED


async def test_auth_is_off_by_default(channel):
    assert (await predict(channel)).prediction.outputs["answer"]


async def keys_cli(capsys, *args: str) -> tuple[int, str]:
    """``dspy-grpc keys ...`` through the CLI entry point (in a thread: it runs its own event loop)."""

    capsys.readouterr()
    code = await asyncio.to_thread(cli.run, ["keys", *args], serve_not_expected)
    return code, capsys.readouterr().out


async def serve_not_expected(config) -> None:
    raise AssertionError("the keys commands must not start a server")


async def test_keys_cli_creates_lists_and_revokes_keys_a_server_honours(server_factory, tmp_path, capsys):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    code, created = await keys_cli(capsys, "create", "--scopes", "infer,programs", "--name", "ci bot",
                                   "--database-url", database_url)
    assert code == 0
    key = created.strip().splitlines()[-1]
    assert key.startswith("dgk_")
    key_id = key.split("_")[1]
    code, listing = await keys_cli(capsys, "list", "--database-url", database_url)
    assert code == 0 and key_id in listing and "infer,programs" in listing and "ci bot" in listing
    assert key.split("_", 2)[2] not in listing  # the secret (it may contain "_" itself)

    running = await server_factory(auth_enabled=True, database_url=database_url, auth_cache_ttl_s=0.0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await predict(channel, bearer(key))
        await list_programs(channel, bearer(key))
        code, revoked = await keys_cli(capsys, "revoke", key_id, "--database-url", database_url)
        assert code == 0 and f"revoked key {key_id}" in revoked
        code, _ = await failure(predict(channel, bearer(key)))
        assert code is grpc.StatusCode.UNAUTHENTICATED


async def test_keys_cli_rejects_unknown_scopes_and_ids(tmp_path, capsys):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    code, out = await keys_cli(capsys, "create", "--scopes", "infer,root", "--database-url", database_url)
    assert code == 1 and "unknown scope 'root'" in out
    code, out = await keys_cli(capsys, "revoke", "0123456789ab", "--database-url", database_url)
    assert code == 1 and "no API key with id '0123456789ab'" in out


async def test_tls_serves_encrypted_and_refuses_plaintext(server_factory, tmp_path):
    certs = make_certs(tmp_path)
    running = await server_factory(tls_cert_file=str(certs.server_cert), tls_key_file=str(certs.server_key))
    credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{running.port}", credentials) as channel:
        assert (await predict(channel)).prediction.outputs["answer"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        assert await _code(predict(channel)) is grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate_from_the_configured_ca(server_factory, tmp_path):
    certs = make_certs(tmp_path)
    running = await server_factory(tls_cert_file=str(certs.server_cert), tls_key_file=str(certs.server_key),
                                   tls_client_ca_file=str(certs.ca))
    root = certs.ca.read_bytes()
    with_cert = grpc.ssl_channel_credentials(root, certs.client_key.read_bytes(), certs.client_cert.read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{running.port}", with_cert) as channel:
        assert (await predict(channel)).prediction.outputs["answer"]
    without_cert = grpc.ssl_channel_credentials(root)
    async with grpc.aio.secure_channel(f"127.0.0.1:{running.port}", without_cert) as channel:
        assert await _code(predict(channel)) is grpc.StatusCode.UNAVAILABLE


async def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value.code()

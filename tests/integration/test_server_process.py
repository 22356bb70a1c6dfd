"""The server as users run it: the `dspy-grpc serve` process, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc
from google.protobuf import descriptor_pb2, json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVER = [sys.executable, "-m", "dspy_grpc_server"]


async def start_process(tmp_path: Path, mock_base_url: str, *extra: str) -> tuple[asyncio.subprocess.Process, int]:
    config = tmp_path / "dspy-grpc.toml"
    config.write_text(
        "[server]\ngrace_period_s = 5.0\n\n"
        "[[models]]\n"
        'alias = "mock"\nprovider = "openai"\nmodel = "mock-model"\n'
        f'base_url = "{mock_base_url}"\napi_key_env = "MOCK_KEY"\n'
    )
    process = await asyncio.create_subprocess_exec(
        *SERVER, "serve", "--port", "0", "--config", str(config),
        "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "MOCK_KEY": "sk-process-test"},
    )
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "server exited before listening"
            if line.startswith("dspy-grpc listening on"):
                return process, int(line.rsplit(":", 1)[1])
    except BaseException:
        if process.returncode is None:  # never leave a server behind (it would outlive the test run)
            process.kill()
            await process.wait()
        raise


async def test_health_reflection_and_graceful_shutdown(tmp_path, mock_lm):
    process, port = await start_process(tmp_path, mock_lm.base_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "dspy_grpc.v1.InferenceService", "dspy_grpc.v1.ProgramService"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            listed = [s.name async for r in responses for s in r.list_services_response.service]
            assert {"dspy_grpc.v1.InferenceService", "dspy_grpc.v1.ProgramService", "grpc.health.v1.Health"} <= set(listed)
            responses = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol="dspy_grpc.v1.InferenceService")])
            )
            files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                     async for r in responses for raw in r.file_descriptor_response.file_descriptor_proto]
            assert any(f.name == "dspy_grpc/v1/inference.proto" for f in files)

            # An in-flight call survives SIGTERM; the process then exits cleanly.
            mock_lm.enqueue(MockReply(text="[[ ## answer ## ]]\nslow but fine\n\n[[ ## completed ## ]]", delay_s=1.0))
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            request = json_format.ParseDict(
                {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
                 "inputs": {"question": "?"}, "lm": {"model": "mock"}},
                inference_pb2.PredictRequest(),
            )
            call = asyncio.ensure_future(stub.Predict(request, timeout=10))
            await asyncio.sleep(0.4)
            process.send_signal(signal.SIGTERM)
            response = await call
            assert response.prediction.outputs["answer"] == "slow but fine"
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_bad_config_exits_with_a_message(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 99999\n")
    process = await asyncio.create_subprocess_exec(
        *SERVER, "serve", "--config", str(bad), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"port" in output and b"65535" in output

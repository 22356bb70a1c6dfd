"""deploy/'s nginx load-balancer config (Debian's nginx, grpc_pass) in front of two replicas: calls
keep succeeding while one replica is killed; calls in flight on it fail with UNAVAILABLE and succeed
when retried."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from string import Template

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc
from google.protobuf import json_format

from tests.integration.replicas import start_replica
from tests.services import NginxServer, nginx_binary, require_binary

# Each test starts several server processes: on a loaded machine that alone can take a minute.
pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(300)]

TEMPLATE = Path(__file__).parents[2] / "deploy" / "nginx" / "templates" / "default.conf.template"
CALLERS = 8

REQUEST = json_format.ParseDict(
    {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
     "inputs": {"question": "balanced?"}, "lm": {"model": "mock"}}, inference_pb2.PredictRequest())


def render(lb_port: int, replica_ports: list[int]) -> str:
    upstreams = " ".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in replica_ports)
    return Template(TEMPLATE.read_text()).substitute(DSPY_GRPC_LB_PORT=lb_port, DSPY_GRPC_UPSTREAMS=upstreams)


async def test_calls_through_the_load_balancer_survive_a_killed_replica(tmp_path, mock_lm, postgres_url):
    mock_lm.latency_s = 0.2  # calls are in flight on the replica when it dies
    nginx = NginxServer(require_binary(nginx_binary(), "nginx"))
    replicas = [await start_replica(tmp_path / name, mock_lm.base_url, postgres_url,
                                    extra="[cache]\nenabled = false\n") for name in ("a", "b")]
    nginx.start(render(nginx.port, [r.port for r in replicas]))
    outcomes: list[tuple[str, bool]] = []  # (status, after the kill)
    failed_in_flight = 0
    killed = asyncio.Event()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{nginx.port}") as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)

            async def caller(stop: asyncio.Event) -> None:
                nonlocal failed_in_flight
                while not stop.is_set():
                    after = killed.is_set()
                    try:
                        reply = await stub.Predict(REQUEST, timeout=30)
                        assert reply.prediction.outputs["answer"]
                        outcomes.append(("OK", after))
                    except grpc.aio.AioRpcError as error:
                        outcomes.append((error.code().name, after))
                        if error.code() == grpc.StatusCode.UNAVAILABLE:
                            failed_in_flight += 1
                            retried = await stub.Predict(REQUEST, timeout=30)  # the client's retry
                            assert retried.prediction.outputs["answer"]

            stop = asyncio.Event()
            callers = [asyncio.ensure_future(caller(stop)) for _ in range(CALLERS)]
            while sum(1 for status, _ in outcomes if status == "OK") < 4 * CALLERS:
                await asyncio.sleep(0.05)
            await replicas[0].stop(signal.SIGKILL)
            killed.set()
            while sum(1 for status, after in outcomes if status == "OK" and after) < 4 * CALLERS:
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*callers), 60)

        statuses = {status for status, _ in outcomes}
        assert statuses <= {"OK", "UNAVAILABLE"}, outcomes
        assert failed_in_flight <= CALLERS  # only calls that were running on the killed replica
        assert sum(1 for status, after in outcomes if status == "OK" and after) >= 4 * CALLERS
        assert all(status == "OK" for status, _ in outcomes[-CALLERS:])
    finally:
        nginx.stop()
        for replica in replicas:
            await replica.stop(signal.SIGKILL)

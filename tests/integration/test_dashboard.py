"""The dashboard's HTTP surface: the page, the JSON snapshot and the server-sent events, behind
API keys with the admin scope when authentication is on."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from dspy_grpc.v1 import inference_pb2_grpc

from tests.integration.test_predict import predict_request

pytestmark = pytest.mark.asyncio(loop_scope="session")

PREDICT = {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
           "inputs": {"question": "Capital of France?"}, "lm": {"model": "mock"}}


async def test_dashboard_is_off_by_default(server):
    assert server.ops.dashboard_port is None


async def test_snapshot_shows_health_providers_usage_and_program_performance(server_factory, mock_lm):
    running = await server_factory(dashboard_enabled=True, dashboard_port=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        for _ in range(3):
            await stub.Predict(predict_request(PREDICT), timeout=10)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.ops.dashboard_port}") as http:
        page = await http.get("/")
        assert page.status_code == 200 and "<title>dspy-grpc dashboard</title>" in page.text
        snapshot = (await http.get("/api/snapshot")).json()
    assert snapshot["health"] == {"status": "SERVING", "auth": False, "tls": False}
    assert snapshot["rpc"]["calls"] == 3 and snapshot["rpc"]["errors"] == 0
    mock = next(p for p in snapshot["providers"] if p["alias"] == "mock")
    assert mock["calls"] == 3 and mock["errors"] == 0 and mock["input_tokens"] > 0 and mock["breaker"] == "closed"
    deployment = mock["deployments"][0]
    # identical requests: the provider answers once, the cache twice
    assert mock["cache_hits"] == 2 and snapshot["cache"] == {"hits": 2, "misses": 1}
    assert deployment["breaker_state"] == "closed" and deployment["calls"] == 1 and deployment["serving"]
    assert sum(point["calls"] for point in snapshot["timeline"]["points"]) == 3
    inline = snapshot["programs"]["inline"]
    assert inline["calls"] == 3 and inline["errors"] == 0 and 0 < inline["p50_ms"] <= inline["p99_ms"]


async def test_api_needs_an_admin_key_when_auth_is_on(server_factory):
    running = await server_factory(auth_enabled=True, dashboard_enabled=True, dashboard_port=0)
    _, infer_key = await running.app.api_keys.create("app", "infer")
    _, admin_key = await running.app.api_keys.create("ops", "admin")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.ops.dashboard_port}") as http:
        assert (await http.get("/")).status_code == 200  # the page itself holds no data
        missing = await http.get("/api/snapshot")
        assert missing.status_code == 401 and missing.json()["error"] == "API_KEY_MISSING"
        wrong = await http.get("/api/snapshot", headers={"Authorization": "Bearer dgk_000000000000_" + "x" * 43})
        assert wrong.status_code == 401 and wrong.json()["error"] == "API_KEY_INVALID"
        scoped = await http.get("/api/events", headers={"Authorization": f"Bearer {infer_key}"})
        assert scoped.status_code == 403 and scoped.json()["error"] == "SCOPE_MISSING"
        ok = await http.get("/api/snapshot", headers={"Authorization": f"Bearer {admin_key}"})
        assert ok.status_code == 200 and ok.json()["health"]["auth"] is True
        job = await http.get("/api/jobs/optimizations/nope", headers={"Authorization": f"Bearer {infer_key}"})
        assert job.status_code == 403
        admin = {"Authorization": f"Bearer {admin_key}"}
        assert (await http.get("/api/jobs/optimizations/nope", headers=admin)).status_code == 404
        assert (await http.get("/api/jobs/programs/qa", headers=admin)).status_code == 404


async def test_events_stream_snapshots(server_factory):
    running = await server_factory(dashboard_enabled=True, dashboard_port=0, dashboard_refresh_s=0.05)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.ops.dashboard_port}") as http:
        async with http.stream("GET", "/api/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if len(events) == 2:
                        break
    assert all(event["health"]["status"] == "SERVING" for event in events)
    assert events[1]["time"] >= events[0]["time"]


async def test_snapshot_lists_a_real_evaluation_job_with_its_progress(server_factory):
    from tests.integration.job_helpers import create_dataset, create_program, evaluate_program

    running = await server_factory(dashboard_enabled=True, dashboard_port=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await create_dataset(channel, "dash", [{"question": f"q{i}", "answer": "a"} for i in range(4)])
        await create_program(channel, "dash-qa", model="dummy")
        await evaluate_program(channel, "programs/dash-qa", "datasets/dash")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.ops.dashboard_port}") as http:
        snapshot = (await http.get("/api/snapshot")).json()
    (job,) = [j for j in snapshot["jobs"] if j["kind"] == "evaluation"]
    assert job["state"] == "succeeded"
    assert job["completed"] == job["total"] == 4

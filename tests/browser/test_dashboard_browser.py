"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
sign in with an admin key, watch LM usage and a job's progress move live, no console errors.

Skipped when Chromium is not installed, unless DSPY_GRPC_REQUIRE_BROWSER=1 (set by .ci/run).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
import pytest
from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc, inference_pb2_grpc
from google.protobuf import json_format

from tests.integration.job_helpers import create_evaluation, create_program, exact_match, example
from tests.integration.test_predict import predict_request
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: How often (ms) page conditions are re-checked (requestAnimationFrame polling stalls in headless mode).
POLL_MS = 50
PREDICT = {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
           "inputs": {"question": "Capital of France?"}, "lm": {"model": "mock"}}

class WithMetadata(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds fixed metadata (an API key) to every unary call."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def _details(self, details):
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *self.metadata)
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                          details.wait_for_ready)

    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)


if not CHROMIUM.exists():
    if os.environ.get("DSPY_GRPC_REQUIRE_BROWSER") == "1":
        raise RuntimeError("Chromium is required (DSPY_GRPC_REQUIRE_BROWSER=1) but /usr/bin/chromium is missing")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


async def number(page, element_id: str) -> float:
    return float(await page.text_content(f"#{element_id}"))


async def test_dashboard_shows_live_usage_and_job_progress_without_console_errors(server_factory, mock_lm, tmp_path):
    from playwright.async_api import async_playwright

    running = await server_factory(auth_enabled=True, dashboard_enabled=True, dashboard_port=0,
                                   dashboard_refresh_s=0.2)
    _, admin_key = await running.app.api_keys.create("dashboard", "admin")
    _, infer_key = await running.app.api_keys.create("app", "infer")
    url = f"http://127.0.0.1:{running.ops.dashboard_port}/"
    problems: list[str] = []

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = await context.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            await page.goto(url)

            await page.wait_for_selector("#login", state="visible")
            await page.fill("#api-key", admin_key)
            await page.click("#login button[type=submit]")
            await page.wait_for_selector("#board", state="visible")
            await page.wait_for_function("document.getElementById('status').textContent.startsWith('SERVING')",
                                         polling=POLL_MS)

            # LM usage moves as Predicts arrive.
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                sent, seen = 0, []
                for target in (1, 3):
                    while sent < target:
                        await stub.Predict(predict_request(PREDICT), timeout=10,
                                           metadata=(("authorization", f"Bearer {infer_key}"),))
                        sent += 1
                    await page.wait_for_function(
                        f"Number(document.getElementById('lm-calls').textContent) === {target}", polling=POLL_MS)
                    seen.append(await number(page, "lm-calls"))
                assert seen == [1, 3]
            await page.wait_for_function("document.querySelectorAll('#chart-tokens polyline').length === 2",
                                         polling=POLL_MS)
            assert "inline" in await page.text_content("#programs")
            assert "mock" in await page.text_content("#providers")

            # A real evaluation job's progress moves (one example at a time, each LM call slowed down).
            mock_lm.default_reply = MockReply(delay_s=0.3)
            admin = (("authorization", f"Bearer {admin_key}"),)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}",
                                                 interceptors=[WithMetadata(admin)]) as channel:
                datasets = dataset_pb2_grpc.DatasetServiceStub(channel)
                await datasets.CreateDataset(dataset_pb2.CreateDatasetRequest(
                    dataset_id="browser", dataset=dataset_pb2.Dataset(input_keys=["question"])))
                rows = [{"question": f"q{i}", "answer": "a"} for i in range(5)]
                await datasets.AppendExamples(iter([json_format.ParseDict(
                    {"dataset": "datasets/browser", "request_id": "browser-rows", "examples": [example(r) for r in rows]},
                    dataset_pb2.AppendExamplesRequest())]), metadata=admin)
                await create_program(channel, "browser-qa")
                await create_evaluation(channel, {"program": "programs/browser-qa", "dataset": "datasets/browser",
                                                  "metric": exact_match(), "num_threads": 1})
                fraction = ("() => { const cell = document.querySelector('#jobs td[data-fraction]');"
                            " return cell ? Number(cell.dataset.fraction) : -1; }")
                await page.wait_for_function(f"({fraction})() > 0 && ({fraction})() < 1", polling=POLL_MS,
                                             timeout=20_000)
                midway = float(await page.get_attribute("#jobs td[data-fraction]", "data-fraction"))
                await page.wait_for_function(f"({fraction})() === 1", polling=POLL_MS, timeout=20_000)
            assert 0 < midway < 1
            assert "succeeded" in await page.text_content("#jobs")
            await asyncio.sleep(0.3)  # one more refresh, to catch late errors
        finally:
            await context.close()
    assert problems == []

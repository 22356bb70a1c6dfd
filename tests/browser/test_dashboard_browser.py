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
from dspy_grpc.v1 import inference_pb2_grpc

from dspy_grpc_server.core import telemetry
from tests.integration.test_predict import predict_request

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: How often (ms) page conditions are re-checked (requestAnimationFrame polling stalls in headless mode).
POLL_MS = 50
PREDICT = {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
           "inputs": {"question": "Capital of France?"}, "lm": {"model": "mock"}}

if not CHROMIUM.exists():
    if os.environ.get("DSPY_GRPC_REQUIRE_BROWSER") == "1":
        raise RuntimeError("Chromium is required (DSPY_GRPC_REQUIRE_BROWSER=1) but /usr/bin/chromium is missing")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


async def number(page, element_id: str) -> float:
    return float(await page.text_content(f"#{element_id}"))


async def test_dashboard_shows_live_usage_and_job_progress_without_console_errors(server_factory, tmp_path):
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
            await page.wait_for_function("document.querySelectorAll('#chart-usage polyline').length === 2",
                                         polling=POLL_MS)
            assert "inline" in await page.text_content("#programs")
            assert "mock" in await page.text_content("#providers")

            # A job's progress moves: the events the job runners emit, in the server's telemetry.
            fractions = []
            for completed in (1, 5, 10):
                with telemetry.scope(running.app.telemetry):
                    telemetry.record_job_progress("evaluations/e1", kind="evaluation",
                                                  state="running" if completed < 10 else "succeeded",
                                                  completed=completed, total=10, score=completed / 10)
                await page.wait_for_function(
                    "(want) => { const cell = document.querySelector('#jobs td[data-fraction]');"
                    " return cell && Number(cell.dataset.fraction) === want; }", arg=completed / 10, polling=POLL_MS)
                fractions.append(float(await page.get_attribute("#jobs td[data-fraction]", "data-fraction")))
            assert fractions == [0.1, 0.5, 1.0]
            assert "succeeded" in await page.text_content("#jobs")
            await asyncio.sleep(0.3)  # one more refresh, to catch late errors
        finally:
            await context.close()
    assert problems == []

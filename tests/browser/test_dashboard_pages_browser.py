"""The dashboard at 1280 px in a real headless Chromium: nothing overflows, charts have axes and
units, programs show their revisions and job-driven traffic, spend by program / key / model with a
budget, and a job's page shows its progress, candidates and best score over time. A screenshot of
the whole board is checked (size, and that the charts drew something), and no key secret, prompt or
input appears on any page.

Skipped when Chromium is not installed, unless DSPY_GRPC_REQUIRE_BROWSER=1 (set by .ci/run).
Set DSPY_GRPC_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import grpc
import pytest
from dspy_grpc.v1 import dataset_pb2, dataset_pb2_grpc, inference_pb2_grpc, job_pb2
from google.protobuf import json_format

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from dspy_grpc_server.lm.config import BudgetConfig
from tests.browser.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, POLL_MS, WithMetadata
from tests.conftest import mock_model_config
from tests.integration.job_helpers import create_optimization, create_program, exact_match, example, wait_optimization
from tests.integration.test_predict import predict_request
from tests.mocklm import arithmetic

pytestmark = pytest.mark.asyncio(loop_scope="session")

WIDTH = 1280


def png_size_and_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (enough to tell a blank image)."""

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    position, idat = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"IDAT":
            idat += data[position + 8:position + 8 + length]
        position += 12 + length
    return width, height, zlib.decompress(idat)


async def test_dashboard_fits_1280px_and_shows_programs_spend_and_a_job_page(server_factory, mock_lm, tmp_path):
    from playwright.async_api import async_playwright

    arithmetic.install(mock_lm)
    priced = mock_model_config(mock_lm.base_url, input_price_per_1m=2.0, output_price_per_1m=8.0)
    running = await server_factory(
        models=(priced, BUILTIN_DUMMY), auth_enabled=True, dashboard_enabled=True, dashboard_port=0,
        dashboard_refresh_s=0.2, budgets=(BudgetConfig(limit_usd=1.0, program="arith", period="month"),))
    admin_record, admin_key = await running.app.api_keys.create("dashboard", "admin")
    app_record, infer_key = await running.app.api_keys.create("app", "infer")
    admin = (("authorization", f"Bearer {admin_key}"),)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", interceptors=[WithMetadata(admin)]) as channel:
        datasets = dataset_pb2_grpc.DatasetServiceStub(channel)
        await datasets.CreateDataset(dataset_pb2.CreateDatasetRequest(
            dataset_id="arith", dataset=dataset_pb2.Dataset(input_keys=["question"])))
        rows = arithmetic.examples(6)
        await datasets.AppendExamples(iter([json_format.ParseDict(
            {"dataset": "datasets/arith", "request_id": "rows", "examples": [example(r) for r in rows]},
            dataset_pb2.AppendExamplesRequest())]), metadata=admin)
        await create_program(channel, "arith")
        inference = inference_pb2_grpc.InferenceServiceStub(channel)
        for row in rows[:2]:  # RPC traffic, charged to the app's key
            await inference.Predict(predict_request({"program": "programs/arith", "inputs": {"question": row["question"]}}),
                                    timeout=10, metadata=(("authorization", f"Bearer {infer_key}"),))
        created = await create_optimization(channel, {
            "program": "programs/arith", "dataset": "datasets/arith", "metric": exact_match(),
            "random_search": {"num_candidate_programs": 1, "max_bootstrapped_demos": 1},
            "split": {"seed": 3, "dev_fraction": 0.5}, "activate": True})
        done = await wait_optimization(channel, created.name)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error

    url = f"http://127.0.0.1:{running.ops.dashboard_port}/"
    problems: list[str] = []
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": WIDTH, "height": 900})
        try:
            page = await context.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            await page.goto(url)
            await page.fill("#api-key", admin_key)
            await page.click("#login button[type=submit]")
            await page.wait_for_selector("#board", state="visible")
            await page.wait_for_function("document.querySelectorAll('#chart-tokens polyline').length === 2",
                                         polling=POLL_MS)
            await page.wait_for_function("document.getElementById('programs').textContent.includes('arith')",
                                         polling=POLL_MS)

            # Nothing is wider than the window, and no table is wider than its card.
            overflow = await page.evaluate("""() => {
                const wide = [...document.querySelectorAll('section, .scroll, table')]
                  .filter((e) => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
                  .map((e) => (e.id || e.className || e.tagName) + ':' + e.scrollWidth + '>' + e.clientWidth);
                return {page: document.documentElement.scrollWidth, wide};
            }""")
            assert overflow == {"page": WIDTH, "wide": []}

            # Charts have a unit and labelled ticks on both axes.
            for chart, unit in (("chart-calls", "calls / 5 s"), ("chart-tokens", "tokens / 5 s"),
                                ("chart-cost", "US$ / 5 s")):
                labels = await page.eval_on_selector_all(f"#{chart} text", "nodes => nodes.map(n => n.textContent)")
                assert labels[0] == unit and len(labels) >= 5, labels
                assert any(":" in label for label in labels[4:]), labels  # clock times on the x axis

            # Programs: revisions (the job activated r0002) and job-driven traffic beside RPC runs.
            row = await page.eval_on_selector(
                "#programs", "t => [...t.rows].find(r => r.cells[0].textContent === 'arith')"
                             ".map ? null : [...[...t.rows].find(r => r.cells[0].textContent === 'arith').cells].map(c => c.textContent)")
            assert row[1] == "active r0002"
            assert row[3] == "2" and int(row[7]) == 2 and int(row[8]) > 0  # RPC runs, RPC LM calls, job LM calls

            # Spend this month by program, key id and model, and the program's budget.
            spend_program = await page.text_content("#spend-program")
            assert "arith" in spend_program
            assert app_record.key_id in await page.text_content("#spend-key")
            assert "mock" in await page.text_content("#spend-model")
            assert await page.get_attribute("#budgets td[data-budget]", "data-budget") == "program:arith/month"
            assert "per month" in await page.text_content("#budgets")

            board = await page.screenshot(full_page=True)
            width, height, pixels = png_size_and_pixels(board)
            assert width == WIDTH and height >= 900
            _, _, chart_pixels = png_size_and_pixels(await page.locator("#chart-tokens").screenshot())
            assert len(set(chart_pixels)) > 20  # lines, axes and labels, not a blank box

            # The job's page: progress, best score over time, its candidates with the best marked.
            await page.click(f"#jobs a[href='#job={created.name}']")
            await page.wait_for_selector("#job-page", state="visible")
            await page.wait_for_function("document.querySelectorAll('#candidates tr').length === 4", polling=POLL_MS)
            assert await page.get_attribute("#job-bar", "data-fraction") == "1.0000"
            assert "succeeded" in await page.text_content("#job-facts")
            candidates = await page.eval_on_selector_all(
                "#candidates tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
            assert [c[1] for c in candidates] == ["zero-shot", "labeled", "bootstrap (unshuffled)", "seed 0"]
            assert await page.text_content("#candidates .best") == "labeled"
            assert await page.eval_on_selector_all("#chart-job polyline", "n => n.length") == 2
            assert (await page.evaluate("document.documentElement.scrollWidth")) == WIDTH
            job_page = await page.screenshot(full_page=True)

            # No secret, prompt or input anywhere on either page.
            for text in (await page.content(), await page.evaluate("document.body.innerText")):
                for secret in (admin_key, infer_key, admin_key.split("_", 2)[2], *(r["question"] for r in rows),
                               arithmetic.GOOD_INSTRUCTION):
                    assert secret not in text
            await page.click("header a")
            await page.wait_for_selector("#board", state="visible")
            body = await page.evaluate("document.body.innerText")
            assert admin_key not in body and infer_key not in body and rows[0]["question"] not in body
        finally:
            await context.close()
    keep = os.environ.get("DSPY_GRPC_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        Path(keep, "dashboard-1280.png").write_bytes(board)
        Path(keep, "dashboard-job-1280.png").write_bytes(job_page)
    assert problems == []

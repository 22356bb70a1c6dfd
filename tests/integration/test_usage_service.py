"""UsageService.QueryUsage over gRPC: the ledger's counters summed by period, program, key and model."""

from __future__ import annotations

from datetime import date

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, program_pb2, program_pb2_grpc, usage_pb2, usage_pb2_grpc
from google.protobuf import json_format

import dspy_grpc
from dspy_grpc_server.app.config import BUILTIN_DUMMY
from dspy_grpc_server.lm.usage import LedgerKey, LedgerTotals
from dspy_grpc_server.store.usage import UsageLedgerStore
from tests.conftest import mock_model_config
from tests.integration.grpc_helpers import error_details
from tests.integration.job_helpers import create_dataset, create_evaluation, create_program, exact_match, wait_evaluation

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY, PROGRAM, API_KEY, MODEL = (usage_pb2.USAGE_PERIOD_DAY, usage_pb2.USAGE_DIMENSION_PROGRAM,
                                usage_pb2.USAGE_DIMENSION_API_KEY, usage_pb2.USAGE_DIMENSION_MODEL)

SEEDED = {  # (day, program, key, model): (calls, cache hits, prompt, completion, estimated, cost)
    (date(2026, 1, 30), "qa", "k1", "gpt"): (2, 1, 100, 10, 0, 0.25),
    (date(2026, 1, 31), "qa", "k2", "gpt"): (1, 0, 50, 5, 1, 0.125),
    (date(2026, 2, 1), "qa", "k1", "claude"): (3, 0, 300, 30, 0, 1.5),
    (date(2026, 2, 1), "", "k1", "gpt"): (1, 0, 10, 1, 0, 0.0625),
    (date(2026, 2, 2), "summarize", "k2", "gpt"): (4, 2, 400, 40, 0, 2.0),
}


@pytest.fixture
async def seeded(server):
    await UsageLedgerStore(server.app.database).add({
        LedgerKey(*key): LedgerTotals(*values) for key, values in SEEDED.items()
    })
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield usage_pb2_grpc.UsageServiceStub(channel)


def query(**fields) -> usage_pb2.QueryUsageRequest:
    return usage_pb2.QueryUsageRequest(start_day="2026-01-01", end_day="2026-02-28", **fields)


def expected(*, where=lambda key: True) -> tuple[int, int, int, int, int, float]:
    rows = [values for key, values in SEEDED.items() if where(key)]
    return tuple(sum(column) for column in zip(*rows))


def counters(row: usage_pb2.UsageRow) -> tuple:
    return (row.calls, row.cache_hits, row.prompt_tokens, row.completion_tokens, row.estimated_calls, row.cost_usd)


async def test_total_is_the_sum_of_every_ledger_row_in_the_range(seeded):
    response = await seeded.QueryUsage(query(), timeout=10)
    assert [counters(row) for row in response.rows] == [expected()]
    assert (response.rows[0].period, response.rows[0].program, response.rows[0].model) == ("", "", "")
    assert counters(response.total) == expected() and response.next_page_token == ""


async def test_month_buckets_by_program(seeded):
    response = await seeded.QueryUsage(query(period=usage_pb2.USAGE_PERIOD_MONTH, group_by=[PROGRAM]), timeout=10)
    got = {(row.period, row.program): counters(row) for row in response.rows}
    assert list(got) == [("2026-01", "programs/qa"), ("2026-02", ""), ("2026-02", "programs/qa"),
                         ("2026-02", "programs/summarize")]
    assert got[("2026-01", "programs/qa")] == expected(where=lambda k: k[0].month == 1)
    assert got[("2026-02", "programs/qa")] == expected(where=lambda k: k[0].month == 2 and k[1] == "qa")
    assert got[("2026-02", "")] == expected(where=lambda k: k[1] == "")


async def test_day_buckets_filtered_by_key_model_and_range(seeded):
    response = await seeded.QueryUsage(usage_pb2.QueryUsageRequest(
        api_key_ids=["k1"], models=["gpt"], start_day="2026-01-30", end_day="2026-02-01",
        period=DAY, group_by=[API_KEY, MODEL]), timeout=10)
    assert [(row.period, row.api_key_id, row.model, row.cost_usd) for row in response.rows] == [
        ("2026-01-30", "k1", "gpt", 0.25), ("2026-02-01", "k1", "gpt", 0.0625)]
    only_qa = await seeded.QueryUsage(query(programs=["programs/qa"], group_by=[MODEL]), timeout=10)
    assert {row.model: row.calls for row in only_qa.rows} == {"claude": 3, "gpt": 3}
    inline = await seeded.QueryUsage(query(programs=[""]), timeout=10)
    assert counters(inline.total) == expected(where=lambda k: k[1] == "")


async def test_pages_cover_every_row_once(seeded):
    every = (await seeded.QueryUsage(query(period=DAY, group_by=[PROGRAM, API_KEY, MODEL]), timeout=10)).rows
    assert len(every) == len(SEEDED)
    pages, token = [], ""
    while True:
        page = await seeded.QueryUsage(query(period=DAY, group_by=[PROGRAM, API_KEY, MODEL], page_size=2,
                                             page_token=token), timeout=10)
        pages.extend(page.rows)
        assert counters(page.total) == expected()
        token = page.next_page_token
        if not token:
            break
    assert pages == list(every)
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # a token of another query is refused
        await seeded.QueryUsage(query(period=DAY, page_size=2, page_token=(await seeded.QueryUsage(
            query(period=DAY, group_by=[MODEL], page_size=1), timeout=10)).next_page_token), timeout=10)
    assert list(error_details(caught.value)["violations"]) == ["page_token"]


@pytest.mark.parametrize(("fields", "field"), [
    ({"start_day": "2026-13-01"}, "start_day"),
    ({"end_day": "yesterday"}, "end_day"),
    ({"start_day": "2026-02-02", "end_day": "2026-02-01"}, "end_day"),
    ({"programs": ["qa"]}, "programs[0]"),
    ({"group_by": [MODEL, MODEL]}, "group_by"),
    ({"group_by": [usage_pb2.USAGE_DIMENSION_UNSPECIFIED]}, "group_by[0]"),
    ({"models": ["m"] * 101}, "models"),
    ({"page_size": -1}, "page_size"),
])
async def test_bad_queries_name_the_field(seeded, fields, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await seeded.QueryUsage(usage_pb2.QueryUsageRequest(**fields), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(caught.value)["violations"]) == [field]


async def test_calls_just_made_are_counted_per_key_and_only_admins_may_ask(server_factory, mock_lm):
    priced = mock_model_config(mock_lm.base_url, input_price_per_1m=1_000_000.0, output_price_per_1m=2_000_000.0)
    running = await server_factory(models=(priced, BUILTIN_DUMMY), auth_enabled=True, usage_flush_interval_s=3600)
    infer_key, infer_secret = await running.app.api_keys.create("app", "infer,programs")
    _, admin_secret = await running.app.api_keys.create("ops", "admin")
    as_app = (("authorization", f"Bearer {infer_secret}"),)
    as_admin = (("authorization", f"Bearer {admin_secret}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(json_format.ParseDict({
            "program_id": "qa", "program": {"module": {"predict": {"predictor": {
                "signature": {"text": "question -> answer"}, "lm": {"model": "mock"}}}}}},
            program_pb2.CreateProgramRequest()), timeout=10, metadata=as_app)
        inference = inference_pb2_grpc.InferenceServiceStub(channel)
        for question in ("one", "two"):
            await inference.Predict(inference_pb2.PredictRequest(
                program="programs/qa", inputs=json_format.ParseDict({"question": question}, inference_pb2.PredictRequest().inputs)),
                timeout=10, metadata=as_app)
        usage = usage_pb2_grpc.UsageServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await usage.QueryUsage(usage_pb2.QueryUsageRequest(), timeout=10, metadata=as_app)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        # The flush interval is an hour: the query itself writes what was recorded.
        response = await usage.QueryUsage(usage_pb2.QueryUsageRequest(group_by=[PROGRAM, API_KEY, MODEL]),
                                          timeout=10, metadata=as_admin)
    [row] = response.rows
    assert (row.program, row.api_key_id, row.model, row.calls) == ("programs/qa", infer_key.key_id, "mock", 2)
    assert row.prompt_tokens > 0 and row.completion_tokens > 0
    assert row.cost_usd == row.prompt_tokens + 2 * row.completion_tokens
    ledger = await UsageLedgerStore(running.app.database).rows()
    assert sum(r.cost_usd for r in ledger) == row.cost_usd


async def test_python_client_reads_every_page(server):
    await UsageLedgerStore(server.app.database).add({
        LedgerKey(*key): LedgerTotals(*values) for key, values in SEEDED.items()
    })
    async with dspy_grpc.AsyncClient(f"127.0.0.1:{server.port}") as client:
        report = await client.query_usage(period="day", group_by=["program", "model"], page_size=2,
                                          start=date(2026, 1, 1), end="2026-02-28")
        qa = await client.query_usage(programs=["qa"], group_by=["model"])
        with pytest.raises(ValueError, match="group_by"):
            await client.query_usage(group_by=["team"])
    assert [(row.period, row.program, row.model) for row in report.rows] == [
        ("2026-01-30", "programs/qa", "gpt"), ("2026-01-31", "programs/qa", "gpt"), ("2026-02-01", "", "gpt"),
        ("2026-02-01", "programs/qa", "claude"), ("2026-02-02", "programs/summarize", "gpt")]
    assert report.total.cost_usd == expected()[-1]
    assert {row.model: row.cost_usd for row in qa.rows} == {"claude": 1.5, "gpt": 0.375}


async def test_a_jobs_lm_calls_count_for_the_program_it_runs(server, mock_lm):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        await create_dataset(channel, "usage-rows", [{"question": f"q{i}", "answer": "a"} for i in range(3)])
        await create_program(channel, "evaluated")
        created = await create_evaluation(channel, {"program": "programs/evaluated", "dataset": "datasets/usage-rows",
                                                    "metric": exact_match(), "num_threads": 1})
        done = await wait_evaluation(channel, created.name)
        response = await usage_pb2_grpc.UsageServiceStub(channel).QueryUsage(
            usage_pb2.QueryUsageRequest(group_by=[PROGRAM, MODEL]), timeout=10)
    assert done.progress.lm_calls_done == 3
    assert [(row.program, row.model, row.calls + row.cache_hits) for row in response.rows] == [
        ("programs/evaluated", "mock", 3)]

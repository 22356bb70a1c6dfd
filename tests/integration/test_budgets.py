"""Budgets as resources (BudgetService), counted exactly in micro-dollars and enforced across replicas."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from dspy_grpc.v1 import budget_pb2, budget_pb2_grpc
from google.protobuf import json_format

from dspy_grpc_server.app.config import BUILTIN_DUMMY
from dspy_grpc_server.lm.config import BudgetConfig
from tests.conftest import mock_model_config
from tests.integration.grpc_helpers import error_details
from tests.integration.test_lm_service import create_program, predict
from tests.mocklm.server import MockReply

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: One prompt token at $10,000 per million: every call costs exactly $0.01 (10,000 micro-dollars).
CENT_PER_CALL = {"input_price_per_1m": 10_000.0, "output_price_per_1m": 0.0}
ONE_TOKEN = {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}


def cent_model(mock_lm):
    mock_lm.default_reply = MockReply(text="[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]", usage=ONE_TOKEN)
    return mock_model_config(mock_lm.base_url, **CENT_PER_CALL)


async def create_budget(channel, budget_id: str, **budget) -> budget_pb2.Budget:
    request = json_format.ParseDict({"budgetId": budget_id, "budget": budget}, budget_pb2.CreateBudgetRequest())
    return await budget_pb2_grpc.BudgetServiceStub(channel).CreateBudget(request, timeout=10)


async def get_budget(channel, budget_id: str) -> budget_pb2.Budget:
    return await budget_pb2_grpc.BudgetServiceStub(channel).GetBudget(
        budget_pb2.GetBudgetRequest(name=f"budgets/{budget_id}"), timeout=10)


async def outcome(channel, program: str, question: str) -> str:
    try:
        await predict(channel, program, question)
        return "ok"
    except grpc.aio.AioRpcError as error:
        return error_details(error)["reason"]


async def test_ten_calls_of_a_cent_fit_a_ten_cent_budget_and_an_eleventh_does_not(server_factory, mock_lm):
    running = await server_factory(models=(cent_model(mock_lm), BUILTIN_DUMMY))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await create_program(channel, "ten", "mock")
        created = await create_budget(channel, "ten-cents", program="programs/ten", period="BUDGET_PERIOD_DAY",
                                      limitMicros="100000")
        assert (created.name, created.source, created.remaining_micros) == (
            "budgets/ten-cents", budget_pb2.BUDGET_SOURCE_API, 100000)
        results = [await outcome(channel, "programs/ten", f"question {i}") for i in range(12)]
        assert results == ["ok"] * 10 + ["BUDGET_EXCEEDED"] * 2
        assert len(mock_lm.completion_requests) == 10
        budget = await get_budget(channel, "ten-cents")
        assert (budget.spent_micros, budget.reserved_micros, budget.remaining_micros) == (100000, 0, 0)


async def test_budget_resources_crud_and_config_budgets(server_factory, mock_lm):
    configured = BudgetConfig(limit_usd=2.5, program="fromconfig", period="month")
    running = await server_factory(models=(cent_model(mock_lm), BUILTIN_DUMMY), budgets=(configured,))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = budget_pb2_grpc.BudgetServiceStub(channel)
        await create_budget(channel, "team-a", apiKeyId="k123", period="BUDGET_PERIOD_TOTAL", limitMicros="5")
        listed = (await stub.ListBudgets(budget_pb2.ListBudgetsRequest())).budgets
        assert [b.name for b in listed] == ["budgets/config-program-fromconfig-month", "budgets/team-a"]
        assert listed[0].source == budget_pb2.BUDGET_SOURCE_CONFIG and listed[0].limit_micros == 2_500_000
        assert listed[1].period_start_date == "1970-01-01"

        with pytest.raises(grpc.aio.AioRpcError) as too_big:
            await create_budget(channel, "huge", program="programs/x", limitMicros=str(10**15 + 1))
        assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "budget.limit_micros" in error_details(too_big.value)["violations"]
        with pytest.raises(grpc.aio.AioRpcError) as bad_key:
            await create_budget(channel, "bad-key", apiKeyId="x" * 65, limitMicros="1")
        assert "budget.api_key_id" in error_details(bad_key.value)["violations"]
        with pytest.raises(grpc.aio.AioRpcError) as both:
            await create_budget(channel, "both", apiKeyId="k1", program="programs/x", limitMicros="1")
        assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await create_budget(channel, "team-a", program="programs/x", limitMicros="1")
        assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS

        update = json_format.ParseDict({"budget": {"name": "budgets/team-a", "limitMicros": "7"},
                                        "updateMask": "limitMicros"}, budget_pb2.UpdateBudgetRequest())
        assert (await stub.UpdateBudget(update)).limit_micros == 7
        frozen = json_format.ParseDict({"budget": {"name": "budgets/config-program-fromconfig-month",
                                                   "limitMicros": "1"}}, budget_pb2.UpdateBudgetRequest())
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.UpdateBudget(frozen)
        assert error_details(refused.value)["reason"] == "BUDGET_FROM_CONFIG"

        await stub.DeleteBudget(budget_pb2.DeleteBudgetRequest(name="budgets/team-a"))
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await get_budget(channel, "team-a")
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_database(request, tmp_path) -> str:
    """One database for two replicas: PostgreSQL, or one SQLite file (two server processes' worth)."""

    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


async def test_a_budget_spread_over_two_replicas_is_not_overspent(server_factory, mock_lm, shared_database):
    model = cent_model(mock_lm)
    shared = dict(models=(model, BUILTIN_DUMMY), database_url=shared_database)
    first, second = await server_factory(**shared), await server_factory(**shared)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as a, \
            grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as b:
        await create_program(a, "shared", "mock")
        await create_budget(a, "twenty-cents", program="programs/shared", limitMicros="200000")
        # One call through each replica teaches it what a call costs (the estimate it reserves).
        assert [await outcome(a, "programs/shared", "warm a"), await outcome(b, "programs/shared", "warm b")] == [
            "ok", "ok"]
        mock_lm.default_reply = MockReply(text="[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]", usage=ONE_TOKEN,
                                          delay_s=0.2)
        # 60 calls in flight at once, half through each replica: 18 fit in what is left.
        results = await asyncio.gather(*(outcome(a if i % 2 else b, "programs/shared", f"q{i}") for i in range(60)))
        assert results.count("ok") == 18
        assert set(results) == {"ok", "BUDGET_EXCEEDED"}
        assert len(mock_lm.completion_requests) == 20
        budget = await get_budget(b, "twenty-cents")
        assert (budget.spent_micros, budget.reserved_micros, budget.remaining_micros) == (200000, 0, 0)


async def test_overspend_is_bounded_by_the_calls_in_flight(server_factory, mock_lm, postgres_url):
    # Without a known cost (estimate 0), every call admitted before the limit is reached may finish.
    model = cent_model(mock_lm)
    mock_lm.default_reply = MockReply(text="[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]", usage=ONE_TOKEN,
                                      delay_s=0.2)
    shared = dict(models=(model, BUILTIN_DUMMY), database_url=postgres_url)
    first, second = await server_factory(**shared), await server_factory(**shared)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as a, \
            grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as b:
        await create_program(a, "cold", "mock")
        await create_budget(a, "five-cents", program="programs/cold", limitMicros="50000")
        in_flight = 16
        results = await asyncio.gather(*(outcome(a if i % 2 else b, "programs/cold", f"c{i}")
                                         for i in range(in_flight)))
        spent = (await get_budget(a, "five-cents")).spent_micros
        assert spent == results.count("ok") * 10000
        assert spent - 50000 <= in_flight * 10000
        after = [await outcome(b, "programs/cold", "later"), await outcome(a, "programs/cold", "later too")]
        assert after == ["BUDGET_EXCEEDED", "BUDGET_EXCEEDED"]


async def test_python_client_budget_helpers(server_factory, mock_lm):
    from decimal import Decimal

    from dspy_grpc import AsyncClient, Budget, Client
    from dspy_grpc.errors import FailedPreconditionError, NotFoundError

    configured = BudgetConfig(limit_usd=1.0, api_key="k9", period="total")
    running = await server_factory(models=(cent_model(mock_lm), BUILTIN_DUMMY), budgets=(configured,))
    target = f"127.0.0.1:{running.port}"
    async with AsyncClient(target, timeout=20) as client:
        created = await client.create_budget("qa-daily", program="qa", limit_usd=Decimal("0.10"))
        assert isinstance(created, Budget)
        assert (created.name, created.program, created.period, created.limit_micros, created.source) == (
            "budgets/qa-daily", "programs/qa", "day", 100_000, "api")
        assert created.remaining_usd == Decimal("0.1")
        updated = await client.update_budget("qa-daily", limit_micros=250_000, period="month", etag=created.etag)
        assert (updated.limit_usd, updated.period) == (Decimal("0.25"), "month")
        names = [b.name async for b in client.list_budgets(page_size=1)]
        assert names == ["budgets/config-api-key-k9-total", "budgets/qa-daily"]
        with pytest.raises(FailedPreconditionError):
            await client.delete_budget("config-api-key-k9-total")

    def blocking() -> list[str]:
        with Client(target, timeout=20) as sync:
            fetched = sync.get_budget("budgets/qa-daily")
            sync.delete_budget(fetched.name, etag=fetched.etag)
            try:
                sync.get_budget("qa-daily")
            except NotFoundError:
                pass
            return [b.budget_id for b in sync.list_budgets()]

    assert await asyncio.to_thread(blocking) == ["config-api-key-k9-total"]


async def test_readme_budget_grpcurl_examples_work(server_factory, mock_lm):
    import os
    import re
    from pathlib import Path

    from tests.integration.test_readme_grpcurl import ROOT, grpcurl

    block = re.compile(r"<!-- grpcurl-budget-examples:.*?-->\n```sh\n(.*?)```\n<!-- /grpcurl-budget-examples -->", re.S)
    script = block.search((ROOT / "README.md").read_text()).group(1)
    assert script.count("grpcurl ") == 4
    running = await server_factory(budgets=(BudgetConfig(limit_usd=5.0, program="qa", period="day"),))
    script = script.replace("localhost:50051", f"127.0.0.1:{running.port}")
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PATH": f"{Path(grpcurl()).parent}:{os.environ['PATH']}"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert '"name": "budgets/qa-daily"' in text and '"limitMicros": "100000"' in text
    assert '"remainingMicros": "100000"' in text
    assert '"name": "budgets/config-program-qa-day"' in text and '"source": "BUDGET_SOURCE_CONFIG"' in text
    assert '"limitMicros": "250000"' in text
    budgets = budget_pb2_grpc.BudgetServiceStub(grpc.aio.insecure_channel(f"127.0.0.1:{running.port}"))
    listed = (await budgets.ListBudgets(budget_pb2.ListBudgetsRequest())).budgets
    assert [b.name for b in listed] == ["budgets/config-program-qa-day"]


async def test_budgets_need_the_admin_scope(server_factory):
    running = await server_factory(auth_enabled=True)
    _, infer_key = await running.app.api_keys.create("caller", "infer")
    _, admin_key = await running.app.api_keys.create("operator", "admin")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = budget_pb2_grpc.BudgetServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.ListBudgets(budget_pb2.ListBudgetsRequest(), metadata=(("authorization", f"Bearer {infer_key}"),))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_details(denied.value)["metadata"]["required_scope"] == "admin"
        listed = await stub.ListBudgets(budget_pb2.ListBudgetsRequest(),
                                        metadata=(("authorization", f"Bearer {admin_key}"),))
        assert list(listed.budgets) == []

"""The README's usage grpcurl examples and its sample Predict output, run verbatim against a real
server (the built-in dummy model given a price here, so that costs show)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dspy_grpc_server.lm.config import DeploymentConfig, ModelConfig
from dspy_grpc_server.store.usage import UsageLedgerStore
from tests.integration.test_readme_grpcurl import grpcurl

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PRICED_DUMMY = ModelConfig.single("dummy", DeploymentConfig(
    provider="dummy", model="dummy", input_price_per_1m=1_000_000.0, output_price_per_1m=2_000_000.0))


async def run(script: str, port: int) -> list[dict]:
    """Run the commands; the JSON documents they print, in order."""

    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script.replace("localhost:50051", f"127.0.0.1:{port}"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PATH": f"{Path(grpcurl()).parent}:{os.environ['PATH']}"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    text, documents, decoder = out.decode(), [], json.JSONDecoder()
    position = 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
    return documents


async def test_readme_usage_examples(server_factory):
    running = await server_factory(models=(PRICED_DUMMY,))
    script = re.search(r"<!-- grpcurl-usage-examples:.*?-->\n```sh\n(.*?)```\n<!-- /grpcurl-usage-examples -->",
                       README, re.S).group(1)
    created, first, second, complete, by_day, by_month = await run(script, running.port)
    assert created["name"] == "programs/greeter" and int(complete["usage"]["promptTokens"]) > 0
    today = datetime.now(UTC).date().isoformat()
    ledger = {row.program_id: row for row in await UsageLedgerStore(running.app.database).rows()}
    assert [(row["period"], row.get("program", ""), row["model"], row["calls"]) for row in by_day["rows"]] == [
        (today, "", "dummy", "1"), (today, "programs/greeter", "dummy", "2")]
    for row in by_day["rows"]:
        stored = ledger[row.get("program", "").removeprefix("programs/")]
        assert int(row["promptTokens"]) == stored.prompt_tokens and int(row["completionTokens"]) == stored.completion_tokens
        assert row["costUsd"] == stored.cost_usd == stored.prompt_tokens + 2 * stored.completion_tokens
    predicted = [first, second]
    assert int(by_day["rows"][1]["promptTokens"]) == sum(int(p["prediction"]["usage"][0]["promptTokens"]) for p in predicted)
    assert by_day["total"]["costUsd"] == sum(row["costUsd"] for row in by_day["rows"])
    [month] = by_month["rows"]
    assert (month["period"], month.get("apiKeyId", ""), month["calls"]) == (today[:7], "", "2")
    assert month["costUsd"] == by_day["rows"][1]["costUsd"]


async def test_readme_sample_predict_output_is_what_the_first_predict_prints(server):
    examples = re.search(r"<!-- grpcurl-examples:.*?-->\n```sh\n(.*?)```", README, re.S).group(1)
    first_predict = re.search(r"^grpcurl -plaintext -d '\{\n.*?InferenceService/Predict\n", examples, re.S | re.M).group(0)
    assert '"chain_of_thought"' in first_predict
    sample = re.search(r"<!-- predict-sample:.*?-->\n```json\n(.*?)```", README, re.S).group(1)
    [printed] = await run(first_predict, server.port)
    assert printed == json.loads(sample)

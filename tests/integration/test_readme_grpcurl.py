"""The README's grpcurl examples, run verbatim against a real server (docs must match the code)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- grpcurl-examples:.*?-->\n```sh\n(.*?)```\n<!-- /grpcurl-examples -->", re.S)


def grpcurl() -> str:
    found = shutil.which("grpcurl") or (str(ROOT / ".tools/bin/grpcurl") if (ROOT / ".tools/bin/grpcurl").exists() else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("grpcurl is missing: CI must run `make tools` first")
        pytest.skip("grpcurl not installed (run `make tools`)")
    return found


async def test_readme_grpcurl_examples_work(server):
    script = BLOCK.search((ROOT / "README.md").read_text()).group(1)
    assert script.count("grpcurl ") >= 6
    script = script.replace("localhost:50051", f"127.0.0.1:{server.port}")
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PATH": f"{Path(grpcurl()).parent}:{os.environ['PATH']}"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    for expected in ("dspy_grpc.v1.InferenceService", "dspy_grpc.v1.ProgramService", "grpc.health.v1.Health",
                     "rpc Predict", '"SERVING"', '"name": "programs/qa"', '"revisionId": "r0001"'):
        assert expected in text, expected
    predictions = [json.loads(m) for m in re.findall(r'^\{\n  "prediction".*?^\}$', text, re.S | re.M)]
    assert predictions[0]["prediction"]["outputs"] == {"answer": "Paris", "reasoning": "France has one capital."}
    assert predictions[1]["prediction"]["program"] == "programs/qa"
    assert predictions[1]["prediction"]["outputs"]["answer"].startswith("dummy answer")
    rendered = json.loads(re.search(r'^\{\n  "messages".*?^\}$', text, re.S | re.M).group(0))
    assert [m["role"] for m in rendered["messages"]] == ["system", "user"]
    assert "Answer from the context." in rendered["messages"][0]["content"]
    assert rendered["requestOptions"]["response_format"]["type"] == "json_schema"
    assert rendered["adapter"] == "json"
    assert '"answer": "Ada"' in text
    # Modules, graphs, streaming and DSPy export.
    assert predictions[2]["prediction"]["outputs"]["answer"] == "42"
    assert predictions[2]["prediction"]["outputs"]["trajectory"]["observation_0"] == 42
    assert predictions[3]["prediction"]["outputs"]["summary"].startswith("dummy summary for: dummy answer")
    assert '"fieldDelta"' in text and '"moduleStarted"' in text and '"predictor": "generate.predict"' in text
    assert '"predictors": [' in text and '"workers": [' in text

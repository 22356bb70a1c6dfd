"""The README's dataset/evaluation/optimization grpcurl examples, run verbatim against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import pytest

from tests.integration.test_readme_grpcurl import ROOT, grpcurl

pytestmark = pytest.mark.asyncio(loop_scope="session")

BLOCK = re.compile(r"<!-- jobs-examples:.*?-->\n```sh\n(.*?)```\n<!-- /jobs-examples -->", re.S)


def _objects(text: str) -> list[dict]:
    """The JSON objects grpcurl printed, in order."""

    return [json.loads(m) for m in re.findall(r"^\{\n.*?^\}$", text, re.S | re.M)]


async def test_readme_job_examples_work(server_factory):
    server = await server_factory()
    script = BLOCK.search((ROOT / "README.md").read_text()).group(1)
    script = script.replace("localhost:50051", f"127.0.0.1:{server.port}")
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PATH": f"{Path(grpcurl()).parent}:{os.environ['PATH']}"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    objects = _objects(out.decode())
    appended = next(o for o in objects if "appendedCount" in o)
    assert appended["appendedCount"] == "4" and appended["exampleCount"] == "4"
    dev = next(o for o in objects if "examples" in o)
    assert len(dev["examples"]) == 2
    evaluations = [o["evaluation"] for o in objects if "evaluation" in o]
    assert evaluations[-1]["state"] == "JOB_STATE_SUCCEEDED" and evaluations[-1]["score"] == 25.0
    results = next(o for o in objects if "results" in o and "nextPageToken" in o)
    assert len(results["results"]) == 2
    optimizations = [o["optimization"] for o in objects if "optimization" in o]
    optimized = [o for o in optimizations if o["name"] == "optimizations/adder-opt"]
    assert optimized[-1]["state"] == "JOB_STATE_SUCCEEDED"
    assert optimized[-1]["result"]["programRevision"] == "programs/adder@r0002"
    candidates = next(o for o in objects if "candidates" in o)
    assert [c["label"] for c in candidates["candidates"]][:3] == ["zero-shot", "labeled", "bootstrap (unshuffled)"]
    cancelled = [o for o in objects if o.get("name") == "optimizations/adder-opt"][-1]
    assert cancelled["state"] == "JOB_STATE_SUCCEEDED"
    ensembled = [o for o in optimizations if o["name"] == "optimizations/adder-ens"][-1]
    assert ensembled["state"] == "JOB_STATE_SUCCEEDED"
    assert ensembled["result"]["programRevision"] == "programs/adder@r0003"
    assert ensembled["ensemble"]["programs"] == ["programs/adder@r0001", "programs/adder@r0002"]
    gepa = [o for o in optimizations if o["name"] == "optimizations/adder-gepa"][-1]
    assert gepa["state"] == "JOB_STATE_SUCCEEDED" and gepa["progress"]["metricCallsBudget"] == "12"
    assert gepa["result"]["programRevision"] == "programs/adder@r0004"
    lineage = [o for o in objects if "candidates" in o][-1]["candidates"]
    assert lineage[0]["label"] == "seed" and len(lineage[0]["instanceScores"]) == 4
    simba = [o for o in optimizations if o["name"] == "optimizations/adder-simba"][-1]
    assert simba["state"] == "JOB_STATE_SUCCEEDED" and simba["result"]["programRevision"] == "programs/adder@r0005"

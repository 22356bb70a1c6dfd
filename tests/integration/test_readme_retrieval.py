"""The README's retrieval examples (corpora, the RAG and multi-hop programs), run verbatim with
grpcurl against a real server: the docs must match the code."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import pytest

from tests.integration.test_readme_grpcurl import grpcurl

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- retrieval-examples:.*?-->\n```sh\n(.*?)```\n<!-- /retrieval-examples -->", re.S)
OBJECT = re.compile(r"^\{\n.*?^\}$", re.S | re.M)


async def test_readme_retrieval_examples_work(server):
    script = BLOCK.search((ROOT / "README.md").read_text()).group(1)
    script = script.replace("localhost:50051", f"127.0.0.1:{server.port}")
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PATH": f"{Path(grpcurl()).parent}:{os.environ['PATH']}"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    replies = [json.loads(block) for block in OBJECT.findall(out.decode())]
    created, appended, corpus, found, rag, rag_run, hop, hop_run, exported = replies
    assert created["name"] == "corpora/wiki" and created["indexState"] == "CORPUS_INDEX_STATE_EMPTY"
    assert appended["appendedCount"] == "4" and appended["documentCount"] == "4"
    assert corpus["documentCount"] == "4" and corpus["indexState"] == "CORPUS_INDEX_STATE_READY"
    assert [p["id"] for p in found["passages"]] == ["miss-potter", "chris-noonan"]
    outputs = rag_run["prediction"]["outputs"]
    assert outputs == {"response": "Chris Noonan"}
    steps = rag_run["prediction"]["trace"]
    assert [(s["predictor"], s["adapter"]) for s in steps] == [("search", "retrieve"), ("respond.predict", "chat")]
    assert steps[0]["outputs"]["passages"][0].startswith("Miss Potter |")
    assert hop_run["prediction"]["outputs"] == {
        "notes": ["Chris Noonan directed it.", "Babe got him a nomination."],
        "titles": ["Miss Potter", "Chris Noonan", "Babe"],
    }
    assert exported["predictors"] == ["generate_query.predict", "append_notes.predict"]
    assert rag["name"] == "programs/rag" and hop["name"] == "programs/hop"

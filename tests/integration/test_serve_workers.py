"""``dspy-grpc serve --workers N``: N processes share one port (SO_REUSEPORT) on one PostgreSQL
database; a dead worker is replaced; SIGTERM stops them all; SQLite refuses more than one."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc
from google.protobuf import json_format

from tests.integration.replicas import config_text

# Each test starts several server processes: on a loaded machine that alone can take a minute.
pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(300)]


def serving(pids: set[int]) -> set[int]:
    """The serving workers among a server's children: those at the least niceness (the job runner runs
    niced by jobs.runner_nice, whatever niceness the tests themselves run at)."""

    niceness = {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in pids}
    least = min(niceness.values(), default=0)
    return {pid for pid, nice in niceness.items() if nice == least}


def children(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
    return found


async def listening_port(process: asyncio.subprocess.Process, log: Path) -> int:
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 180)).decode()
        assert line, "the server exited: " + log.read_text()[-3000:]
        if line.startswith("dspy-grpc listening on"):
            return int(line.rsplit(":", 1)[1])


async def predict(target: str) -> str:
    request = json_format.ParseDict(
        {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
         "inputs": {"question": "which worker?"}, "lm": {"model": "mock"}}, inference_pb2.PredictRequest())
    async with grpc.aio.insecure_channel(target) as channel:  # a connection of its own
        reply = await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request, timeout=30)
    return reply.prediction.outputs["answer"]


async def test_workers_share_the_port_and_a_dead_worker_is_replaced(tmp_path, mock_lm, postgres_url):
    config = tmp_path / "dspy-grpc.toml"
    config.write_text(config_text(mock_lm.base_url, ""))
    log = tmp_path / "server.log"
    with open(log, "wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dspy_grpc_server", "serve", "--workers", "2", "--port", "0", "--config",
            str(config), "--database-url", postgres_url, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            env={**os.environ, "MOCK_KEY": "sk-workers-test"},
        )
    try:
        ports = [await listening_port(process, log), await listening_port(process, log)]
        assert ports[0] == ports[1] != 0
        workers = serving(children(process.pid))
        assert len(workers) == 2 and len(children(process.pid)) == 3  # two workers and the job runner
        target = f"127.0.0.1:{ports[0]}"
        answers = await asyncio.gather(*(predict(target) for _ in range(16)))
        assert len(answers) == 16 and all(answers)

        os.kill(min(workers), signal.SIGKILL)  # a worker dies: the parent starts another
        assert await listening_port(process, log) == ports[0]
        replaced = serving(children(process.pid))
        assert len(replaced) == 2 and min(workers) not in replaced
        assert all(await asyncio.gather(*(predict(target) for _ in range(8))))

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert not children(process.pid)
    finally:
        if process.returncode is None:
            for pid in children(process.pid):
                os.kill(pid, signal.SIGKILL)
            process.kill()
            await process.wait()


async def test_more_than_one_worker_on_sqlite_is_refused(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dspy_grpc_server", "serve", "--workers", "2", "--port", "0",
        "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert b"server.workers" in output and b"PostgreSQL" in output

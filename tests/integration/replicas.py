"""Server replicas as real processes (``python -m dspy_grpc_server serve``) for multi-replica tests:
several of them on one database (PostgreSQL), the mock LM behind them, killable with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from dspy_grpc.v1 import evaluation_pb2, evaluation_pb2_grpc

#: Short leases so that takeovers happen within a test's patience.
FAST_LEASES = "[jobs]\nlease_s = 2.0\nheartbeat_s = 0.25\nscan_interval_s = 0.25\nwatch_poll_s = 1.0\n"


def config_text(mock_base_url: str, extra: str = FAST_LEASES, model_extra: str = "") -> str:
    """A replica's config: ``extra`` tables, then the "mock" model (with ``model_extra`` keys, e.g. prices)."""

    return (
        "[server]\ngrace_period_s = 5.0\n\n"
        + extra
        + "\n[[models]]\n"
        'alias = "mock"\nprovider = "openai"\nmodel = "mock-model"\n'
        f'base_url = "{mock_base_url}"\napi_key_env = "MOCK_KEY"\n'
        + model_extra
    )


class Replica:
    """One server process; ``port`` is where it listens."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to the replica's processes: ``serve`` and the serving worker and job runner it forks."""

        pid = self.process.pid
        try:
            forked = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            forked = []
        for target in (pid, *forked):
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process.returncode is None:
            self.process.send_signal(sig)
            await asyncio.wait_for(self.process.wait(), timeout)


async def start_replica(workdir: Path, mock_base_url: str, database_url: str, *, extra: str = FAST_LEASES,
                        args: tuple[str, ...] = ("--port", "0"), timeout: float = 120, model_extra: str = "") -> Replica:
    """Start a replica and wait until it listens (its log goes to ``workdir/server-N.log``)."""

    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "dspy-grpc.toml"
    config.write_text(config_text(mock_base_url, extra, model_extra))
    number = len(list(workdir.glob("server-*.log")))
    log_path = workdir / f"server-{number}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dspy_grpc_server", "serve", *args, "--config", str(config),
        "--database-url", database_url,
        stdout=asyncio.subprocess.PIPE, stderr=log, env={**os.environ, "MOCK_KEY": "sk-replica-test"},
    )
    log.close()
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout)).decode()
        if not line:
            raise AssertionError("replica exited before listening: " + log_path.read_text()[-3000:])
        if line.startswith("dspy-grpc listening on"):
            return Replica(process, int(line.rsplit(":", 1)[1]), log_path)


async def evaluation(channel, name: str) -> evaluation_pb2.Evaluation:
    return await evaluation_pb2_grpc.EvaluationServiceStub(channel).GetEvaluation(
        evaluation_pb2.GetEvaluationRequest(name=name))


async def wait_for(get, done, timeout: float = 120):
    """Call ``get()`` until ``done`` holds for what it returns (an assertion after ``timeout`` s)."""

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await get()
        if done(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, value
        await asyncio.sleep(0.02)

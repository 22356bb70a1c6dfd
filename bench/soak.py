"""Soak: Predict, StreamPredict and jobs mixed for a while; resident memory and Predict's p99.

    make bench-soak                                   # 10 minutes
    .venv/bin/python -m bench.soak --duration 120     # shorter

Starts the mock LM (arithmetic task, ``--latency-ms`` per completion) and the server as a subprocess
on a fresh SQLite file, LM cache off (every call reaches the mock). Then:

1. warm-up (10% of the duration): Predict and StreamPredict callers and evaluation jobs, mixed;
2. the soak proper: the same mix until the last fifth of the duration;
3. Predict alone (``--callers`` concurrent callers) for a tenth of the duration: its p99;
4. the same while large random-search optimizations run one after another (the last is cancelled).

Prints the server's RSS at start, after warm-up and at the end (growth after warm-up; target
below 5%; summed over the serving process and the job runner when there are both), and Predict's
p99 without and with the large job (target: within 20%). The server runs with the documented
defaults: jobs in the job-runner process (``jobs.runner = "auto"``), giving way to live calls
(``jobs.threads_while_live``, default 1). ``--job-runner in_process`` runs them in the serving
process, ``--threads-while-live 256`` lets them take all their threads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.processes import server_processes, server_rss_mib

ROOT = Path(__file__).resolve().parents[1]


async def _start(cmd: list[str], ready: str, env: dict[str, str] | None = None, log: Path | None = None):
    process = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE,
        stderr=open(log, "wb") if log else asyncio.subprocess.DEVNULL,  # noqa: SIM115
        env={**os.environ, **(env or {})}, cwd=ROOT,
    )
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        if not line:
            raise RuntimeError(f"{cmd[2]} exited before it was ready")
        if line.startswith(ready):
            return process, line.split()[-1]


def p99(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100)[98]


class Load:
    """Mixed traffic until ``stop`` is set; Predict latencies go to ``latencies``."""

    def __init__(self, channel) -> None:
        from dspy_grpc.v1 import inference_pb2_grpc

        self.stub = inference_pb2_grpc.InferenceServiceStub(channel)
        self.channel = channel
        self.stop = asyncio.Event()
        self.latencies: list[float] = []
        self.errors = 0
        self.counter = 0

    def _request(self, kind):
        from google.protobuf import struct_pb2

        from tests.mocklm import arithmetic

        self.counter += 1
        a, b = self.counter % 97 + 1, self.counter % 89 + 2
        inputs = struct_pb2.Struct()
        inputs.update({"question": arithmetic.question(a, b)})
        return kind(program="programs/soak", inputs=inputs)

    async def predictor(self) -> None:
        import grpc
        from dspy_grpc.v1 import inference_pb2

        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                await self.stub.Predict(self._request(inference_pb2.PredictRequest), timeout=30)
                self.latencies.append(time.perf_counter() - started)
            except grpc.aio.AioRpcError:
                self.errors += 1

    async def streamer(self) -> None:
        import grpc
        from dspy_grpc.v1 import inference_pb2

        while not self.stop.is_set():
            try:
                async for _ in self.stub.StreamPredict(self._request(inference_pb2.StreamPredictRequest), timeout=30):
                    pass
            except grpc.aio.AioRpcError:
                self.errors += 1

    async def evaluator(self) -> None:
        from tests.integration.job_helpers import create_evaluation, wait_evaluation

        while not self.stop.is_set():
            created = await create_evaluation(self.channel, {
                "program": "programs/soak", "dataset": "datasets/soak-small", "metric": {"exact_match": {}},
                "num_threads": 4,
            }, evaluation_id=f"soak-{uuid.uuid4().hex[:10]}")
            await wait_evaluation(self.channel, created.name, timeout=600)

    async def run(self, predictors: int, streamers: int, evaluators: int, seconds: float) -> None:
        self.stop.clear()
        tasks = ([self.predictor() for _ in range(predictors)] + [self.streamer() for _ in range(streamers)]
                 + [self.evaluator() for _ in range(evaluators)])
        runners = [asyncio.ensure_future(t) for t in tasks]
        await asyncio.sleep(seconds)
        self.stop.set()
        await asyncio.gather(*runners)


async def keep_a_large_job_running(channel, stop: asyncio.Event) -> tuple[int, int]:
    """Until ``stop``: one large random-search job at a time (the next starts when one ends); the last
    is cancelled. Returns (jobs started, LM calls they made)."""

    from dspy_grpc.v1 import optimization_pb2, optimization_pb2_grpc

    from tests.integration.job_helpers import TERMINAL, create_optimization

    jobs = optimization_pb2_grpc.OptimizationServiceStub(channel)
    started = calls = 0
    while not stop.is_set():
        created = await create_optimization(channel, {
            "program": "programs/soak", "dataset": "datasets/soak-large", "metric": {"exact_match": {}},
            "num_threads": 16, "random_search": {"num_candidate_programs": 16},
        }, optimization_id=f"soak-large-{uuid.uuid4().hex[:8]}")
        started += 1
        request = optimization_pb2.GetOptimizationRequest(name=created.name)
        while not stop.is_set():
            job = await jobs.GetOptimization(request)
            if job.state in TERMINAL:
                break
            await asyncio.sleep(0.25)
        job = await jobs.CancelOptimization(optimization_pb2.CancelOptimizationRequest(name=created.name))
        calls += job.progress.lm_calls_done
    return started, calls


async def main(args: argparse.Namespace) -> None:
    import grpc

    from tests.integration.job_helpers import create_dataset, create_program
    from tests.mocklm import arithmetic

    workdir = Path(tempfile.mkdtemp(prefix="dspy-grpc-soak-"))
    mock, base_url = await _start(
        [sys.executable, "-m", "tests.mocklm", "--port", "0", "--latency-ms", str(args.latency_ms),
         "--task", "arithmetic"], "MOCKLM READY")
    config = workdir / "soak.toml"
    config.write_text(
        "[cache]\nenabled = false\n\n"
        f"[jobs]\nthreads_while_live = {args.threads_while_live}\n"
        + (f'runner = "{args.job_runner}"\n' if args.job_runner else "") + "\n"
        "[[models]]\n"
        'alias = "mock"\nprovider = "openai"\nmodel = "mock-model"\n'
        f'base_url = "{base_url}"\napi_key_env = "SOAK_MOCK_KEY"\nmax_retries = 0\ntimeout_s = 60\n'
    )
    server, address = await _start(
        [sys.executable, "-m", "dspy_grpc_server", "serve", "--port", "0", "--config", str(config),
         "--database-url", f"sqlite+aiosqlite:///{workdir / 'soak.db'}", "--log-level", "WARNING"],
        "dspy-grpc listening on", env={"SOAK_MOCK_KEY": "sk-soak"}, log=workdir / "server.log",
    )
    warmup, window = max(5.0, args.duration * 0.1), max(5.0, args.duration * 0.1)
    soak = max(0.0, args.duration - warmup - 2 * window)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            await create_dataset(channel, "soak-small", arithmetic.examples(20))
            await create_dataset(channel, "soak-large", arithmetic.examples(args.large_examples))
            await create_program(channel, "soak")
            rss_start = server_rss_mib(server.pid)
            load = Load(channel)
            print(f"warm-up {warmup:.0f} s, soak {soak:.0f} s, then two {window:.0f} s Predict windows "
                  f"({args.callers} callers, mock latency {args.latency_ms:.0f} ms; "
                  f"jobs.threads_while_live = {args.threads_while_live}, jobs.runner = {args.job_runner or 'default'}; "
                  f"{len(server_processes(server.pid))} server process(es))", flush=True)
            await load.run(args.callers, args.callers // 2, 2, warmup)
            rss_warm = server_rss_mib(server.pid)
            await load.run(args.callers, args.callers // 2, 2, soak)
            mixed_calls, mixed_errors = len(load.latencies), load.errors
            rss_soaked = server_rss_mib(server.pid)

            load.latencies = []
            await load.run(args.callers, 0, 0, window)
            quiet = list(load.latencies)

            load.stop.clear()
            keeper = asyncio.ensure_future(keep_a_large_job_running(channel, load.stop))
            await asyncio.sleep(1.0)  # the first job is under way
            load.latencies = []
            await load.run(args.callers, 0, 0, window)  # sets load.stop at the end: the keeper cancels its job
            busy = list(load.latencies)
            large_jobs, large_calls = await keeper
            rss_end = server_rss_mib(server.pid)
    finally:
        server.terminate()
        mock.terminate()
        await asyncio.gather(server.wait(), mock.wait())

    growth = (rss_soaked - rss_warm) / rss_warm * 100
    print(f"RSS: start {rss_start:.1f} MiB, after warm-up {rss_warm:.1f} MiB, after the mixed soak "
          f"{rss_soaked:.1f} MiB (growth after warm-up {growth:+.1f}%; target < 5%), at the end (after the large "
          f"jobs) {rss_end:.1f} MiB")
    print(f"mixed phase: {mixed_calls} Predict calls, {mixed_errors} failed calls")
    print(f"Predict p99 without a job: {p99(quiet) * 1000:.1f} ms ({len(quiet)} calls)")
    print(f"Predict p99 with a large job running: {p99(busy) * 1000:.1f} ms ({len(busy)} calls; {large_jobs} large "
          f"random-search job(s) made {large_calls} LM calls meanwhile)")
    print(f"ratio: {p99(busy) / p99(quiet):.2f} (target <= 1.20)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds in all (default 600)")
    parser.add_argument("--callers", type=int, default=8, help="concurrent Predict callers (default 8)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="mock LM latency (default 20)")
    parser.add_argument("--large-examples", type=int, default=300, help="examples of the large job (default 300)")
    parser.add_argument("--threads-while-live", type=int, default=1,
                        help="the server's jobs.threads_while_live (default 1; 256: jobs never give way)")
    parser.add_argument("--job-runner", choices=["auto", "process", "in_process"], default="",
                        help="the server's jobs.runner (default: the server's default, auto)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))

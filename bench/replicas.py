"""Several server processes on one PostgreSQL database (issue #12).

    make bench-replicas        # or: .venv/bin/python -m bench.replicas [--seconds 8]

Starts a private PostgreSQL cluster (tests/services.py) and the mock LM, then prints:

1. Predict calls/s with 64 calls in flight through ``serve --workers 1`` and ``serve --workers 2``
   (zero-latency mock in its own process, LM cache off, an inline Predict module; the client spreads
   its calls over 8 connections, since the kernel balances connections, not calls, over workers).
2. Takeover: two replicas, an evaluation running on A; the time from kill -9 of A to B's claim
   (the job row's fencing token changes), with the lease settings used (target: <= lease + 1 s).
3. Rolling restart: an optimization (random search) run once undisturbed, then again while each of
   the two replicas running it is replaced (graceful stop; the job hands over at once): LM calls of
   each run, calls made twice, result revisions written.
4. Budget across replicas: a $0.20 program budget, calls costing exactly $0.01, 60 Predict calls at
   once spread over two replicas (each warmed by one call, so it knows what a call costs): calls
   admitted, spend against the limit, and the overspend (target: 0 beyond the calls in flight).

Every process shares this machine's cores: client, servers, mock LM and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import grpc
from dspy_grpc.v1 import budget_pb2, budget_pb2_grpc, inference_pb2, inference_pb2_grpc, job_pb2
from google.protobuf import json_format

from tests.integration.job_helpers import (
    create_dataset,
    create_evaluation,
    create_optimization,
    create_program,
    exact_match,
    wait_optimization,
)
from tests.integration.replicas import Replica, config_text, start_replica
from tests.mocklm import arithmetic
from tests.mocklm.server import MockLMServer, MockReply
from tests.services import PostgresCluster, postgres_bin_dir

IN_FLIGHT = 64
CONNECTIONS = 8
LEASES = "[jobs]\nlease_s = 2.0\nheartbeat_s = 0.25\nscan_interval_s = 0.25\n\n[cache]\nenabled = false\n"


async def start_workers(directory: Path, mock_url: str, database: str, workers: int) -> tuple[asyncio.subprocess.Process, int]:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "dspy-grpc.toml"
    config.write_text(config_text(mock_url, "[server]\nlog_level = \"WARNING\"\n[cache]\nenabled = false\n")
                      .replace("[server]\ngrace_period_s = 5.0\n\n", ""))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dspy_grpc_server", "serve", "--workers", str(workers), "--port", "0",
        "--config", str(config), "--database-url", database, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "MOCK_KEY": "sk-bench"},
    )
    ports = []
    while len(ports) < workers:
        line = (await asyncio.wait_for(process.stdout.readline(), 300)).decode()
        if not line:
            raise RuntimeError("server exited")
        if line.startswith("dspy-grpc listening on"):
            ports.append(int(line.rsplit(":", 1)[1]))
    return process, ports[0]


async def calls_per_second(port: int, seconds: float) -> float:
    request = json_format.ParseDict(
        {"module": {"predict": {"predictor": {"signature": {"text": "question -> answer"}}}},
         "inputs": {"question": "How fast?"}, "lm": {"model": "mock"}}, inference_pb2.PredictRequest())
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(CONNECTIONS)]
    stubs = [inference_pb2_grpc.InferenceServiceStub(c) for c in channels]
    done = 0
    stop_at = 0.0

    async def worker(index: int) -> None:
        nonlocal done
        stub = stubs[index % CONNECTIONS]
        while time.monotonic() < stop_at:
            await stub.Predict(request, timeout=30)
            done += 1

    try:
        stop_at = time.monotonic() + 1.0  # warm-up
        await asyncio.gather(*(worker(i) for i in range(IN_FLIGHT)))
        done = 0
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(worker(i) for i in range(IN_FLIGHT)))
        return done / (time.monotonic() - started)
    finally:
        for channel in channels:
            await channel.close()


async def throughput(root: Path, cluster: PostgresCluster, seconds: float) -> dict[int, float]:
    mock = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.mocklm", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    line = (await asyncio.wait_for(mock.stdout.readline(), 300)).decode()
    mock_url = line.split()[-1]
    figures = {}
    try:
        for workers in (1, 2):
            process, port = await start_workers(root / f"workers{workers}", mock_url, cluster.create_database(),
                                                workers)
            try:
                figures[workers] = await calls_per_second(port, seconds)
            finally:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 60)
    finally:
        mock.send_signal(signal.SIGTERM)
        await mock.wait()
    return figures


async def fence(database: str, job_id: str) -> int:
    connection = await asyncpg.connect(database.replace("postgresql+asyncpg", "postgresql"))
    try:
        return await connection.fetchval("SELECT fence FROM jobs WHERE job_id = $1", job_id)
    finally:
        await connection.close()


async def takeover(root: Path, cluster: PostgresCluster, mock: MockLMServer, rounds: int) -> list[float]:
    times = []
    for attempt in range(rounds):
        database = cluster.create_database()
        mock.latency_s = 0.1
        a, b = [await start_replica(root / f"takeover{attempt}{n}", mock.base_url, database, extra=LEASES,
                                    timeout=300) for n in "ab"]
        try:
            async with grpc.aio.insecure_channel(a.target) as channel:
                await create_dataset(channel, "sums", arithmetic.examples(200))
                await create_program(channel, "adder")
                await create_evaluation(channel, {"program": "programs/adder", "dataset": "datasets/sums",
                                                  "metric": exact_match(), "num_threads": 4}, evaluation_id="job")
            await asyncio.sleep(1.0)
            before = await fence(database, "job")
            killed = time.monotonic()
            await a.stop(signal.SIGKILL)
            while await fence(database, "job") == before:
                await asyncio.sleep(0.01)
            times.append(time.monotonic() - killed)
        finally:
            await a.stop(signal.SIGKILL)
            await b.stop(signal.SIGKILL)
    return times


def lm_calls(mock: MockLMServer) -> list[str]:
    return [json.dumps(r.json, sort_keys=True) for r in mock.requests if r.path.endswith("/chat/completions")]


async def rolling_restart(root: Path, cluster: PostgresCluster, mock: MockLMServer) -> dict[str, int]:
    database = cluster.create_database()
    body = {"dataset": "datasets/train", "metric": exact_match(), "num_threads": 2,
            "random_search": {"num_candidate_programs": 4, "max_bootstrapped_demos": 2, "max_labeled_demos": 2}}
    replicas: list[Replica] = [await start_replica(root / f"roll-{n}", mock.base_url, database, extra=LEASES,
                                                   timeout=300) for n in ("a", "b", "c", "d")]
    try:
        mock.latency_s = 0.0
        async with grpc.aio.insecure_channel(replicas[0].target) as channel:
            await create_dataset(channel, "train", arithmetic.examples(16))
            for program in ("reference", "rolled"):
                await create_program(channel, program)
            mock.requests.clear()
            reference = await create_optimization(channel, {"program": "programs/reference", **body})
            await wait_optimization(channel, reference.name, timeout=300)
        reference_calls = lm_calls(mock)
        mock.requests.clear()
        mock.latency_s = 0.1
        async with grpc.aio.insecure_channel(replicas[1].target) as channel:
            job = await create_optimization(channel, {"program": "programs/rolled", **body})
        handovers = 0
        for old in (replicas[1], replicas[0]):
            await asyncio.sleep(2.0)
            handovers += 1
            await old.stop(signal.SIGTERM)
        async with grpc.aio.insecure_channel(replicas[2].target) as channel:
            finished = await wait_optimization(channel, job.name, timeout=300)
            from dspy_grpc.v1 import program_pb2, program_pb2_grpc
            revisions = await program_pb2_grpc.ProgramServiceStub(channel).ListProgramRevisions(
                program_pb2.ListProgramRevisionsRequest(name="programs/rolled"))
        calls = lm_calls(mock)
        seen: set[str] = set()
        repeated = 0
        for call in calls:
            repeated += call in seen
            seen.add(call)
        return {"reference_calls": len(reference_calls), "rolled_calls": len(calls), "repeated_calls": repeated,
                "handovers": handovers, "result_revisions": len(revisions.programs) - 1,
                "succeeded": int(finished.state == job_pb2.JOB_STATE_SUCCEEDED)}
    finally:
        for replica in replicas:
            await replica.stop(signal.SIGKILL)


#: One prompt token at $10,000 per million: every call costs exactly $0.01 (10,000 micro-dollars).
CENT_PER_CALL = 'input_price_per_1m = 10000.0\noutput_price_per_1m = 0.0\n'
BUDGET_MICROS = 200_000
BUDGET_CALLS = 60


async def budget_overspend(root: Path, cluster: PostgresCluster, mock: MockLMServer) -> dict[str, int]:
    database = cluster.create_database()
    replicas = [await start_replica(root / f"budget-{n}", mock.base_url, database, extra=LEASES, timeout=300,
                                    model_extra=CENT_PER_CALL) for n in ("a", "b")]
    mock.latency_s = 0.0
    mock.default_reply = MockReply(text="[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]",
                                   usage={"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1})
    try:
        async with grpc.aio.insecure_channel(replicas[0].target) as a, \
                grpc.aio.insecure_channel(replicas[1].target) as b:
            await create_program(a, "spender")
            await budget_pb2_grpc.BudgetServiceStub(a).CreateBudget(json_format.ParseDict(
                {"budgetId": "bench", "budget": {"program": "programs/spender", "limitMicros": str(BUDGET_MICROS)}},
                budget_pb2.CreateBudgetRequest()), timeout=30)

            async def call(channel, question: str) -> bool:
                request = json_format.ParseDict({"program": "programs/spender", "inputs": {"question": question}},
                                                inference_pb2.PredictRequest())
                try:
                    await inference_pb2_grpc.InferenceServiceStub(channel).Predict(request, timeout=60)
                    return True
                except grpc.aio.AioRpcError:
                    return False

            warm = [await call(a, "warm a"), await call(b, "warm b")]
            mock.default_reply = MockReply(text="[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]", delay_s=0.2,
                                           usage={"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1})
            admitted = sum(await asyncio.gather(*(call(a if i % 2 else b, f"q{i}") for i in range(BUDGET_CALLS))))
            budget = await budget_pb2_grpc.BudgetServiceStub(a).GetBudget(
                budget_pb2.GetBudgetRequest(name="budgets/bench"), timeout=30)
        return {"warm": sum(warm), "admitted": admitted, "spent_micros": budget.spent_micros,
                "limit_micros": BUDGET_MICROS, "overspend_micros": max(0, budget.spent_micros - BUDGET_MICROS)}
    finally:
        mock.default_reply = None
        for replica in replicas:
            await replica.stop(signal.SIGKILL)


async def main(seconds: float, rounds: int) -> None:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL (initdb) is not installed")
    cluster = PostgresCluster(bin_dir).start()
    root = Path(tempfile.mkdtemp(prefix="dspy-grpc-bench-replicas-"))
    mock = MockLMServer()
    await mock.start()
    arithmetic.install(mock)
    try:
        rates = await throughput(root, cluster, seconds)
        print(f"Predict calls/s, {IN_FLIGHT} in flight over {CONNECTIONS} connections (zero-latency mock):")
        for workers, rate in rates.items():
            print(f"  serve --workers {workers}: {rate:8.0f} calls/s")
        print(f"  2 processes / 1 process: {rates[2] / rates[1]:.2f}x")
        times = await takeover(root, cluster, mock, rounds)
        print("Takeover after kill -9 of the owner (lease_s = 2.0, scan_interval_s = 0.25; target <= 3.0 s):")
        print("  " + ", ".join(f"{t:.2f} s" for t in times) + f"  (max {max(times):.2f} s)")
        rolled = await rolling_restart(root, cluster, mock)
        print("Rolling restart of the replicas running an optimization (random search, 16 examples):")
        print(f"  LM calls: undisturbed {rolled['reference_calls']}, rolled {rolled['rolled_calls']} "
              f"({rolled['handovers']} replicas replaced while it ran); calls made twice: {rolled['repeated_calls']}; "
              f"result revisions: {rolled['result_revisions']}; succeeded: {bool(rolled['succeeded'])}")
        spent = await budget_overspend(root, cluster, mock)
        print(f"Budget over two replicas (${BUDGET_MICROS / 1e6:.2f}, $0.01 a call, {BUDGET_CALLS} calls at once "
              f"after {spent['warm']} warm-up calls):")
        print(f"  admitted {spent['admitted']}; spent {spent['spent_micros']} of {spent['limit_micros']} micro-dollars; "
              f"overspend {spent['overspend_micros']} micro-dollars")
    finally:
        await mock.stop()
        cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per throughput figure")
    parser.add_argument("--rounds", type=int, default=3, help="kill -9 takeovers measured")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rounds))

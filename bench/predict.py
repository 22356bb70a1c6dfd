"""Predict through gRPC (server in its own process) vs dspy 3.4.1 in-process, against the same mock LM.

    make bench-predict          # or: .venv/bin/python -m bench.predict [--calls 300] [--seconds 5]

Starts the mock LM (``python -m tests.mocklm``, zero latency) and two servers (``dspy-grpc serve``):
one with the LM cache off, one with it on. Two clients call a stored ``Predict("question -> answer")``
program by name: this process (Python, grpc.aio), and the typed Go client (``bench/predict_go``,
built with ``go build`` when Go is installed). This process also runs DSPy's ``dspy.Predict``.
Every process shares this machine's cores: client, server, mock LM (and DSPy's threads).

Figures (targets from the issue):
- p50/p99 latency of sequential Predict calls, gRPC / DSPy (target: p50 ratio <= 0.6)
- calls/s with 64 calls in flight, gRPC / DSPy (target: >= 4); DSPy's best of threads and asyncio
- p50 of a Predict answered from the server's cache, seen by the client (target: <= 0.5 ms)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import floor

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
IN_FLIGHT = 64
SIGNATURE = "question -> answer"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start(cmd: list[str], ready: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start a process and wait for the line matching ``ready`` (a regex with one group)."""

    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                               env={**os.environ, **(env or {})})
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(ready, line)
        if match:
            return process, match.group(1)
    process.kill()
    raise RuntimeError(f"{cmd[0]} did not start")


def server_config(directory: Path, mock_url: str, *, cache: bool) -> Path:
    path = directory / f"server-cache-{'on' if cache else 'off'}.toml"
    path.write_text(f"""
[server]
host = "127.0.0.1"
port = 0
log_level = "WARNING"

[database]
url = "sqlite+aiosqlite:///{directory}/bench-{'on' if cache else 'off'}.db"

[lm]
default_model = "mock"

[cache]
enabled = {str(cache).lower()}

[[models]]
alias = "mock"
provider = "openai"
model = "mock-model"
base_url = "{mock_url}"
api_key_env = "BENCH_MOCK_KEY"
timeout_s = 30
max_retries = 0
""")
    return path


# --------------------------------------------------------------------------- gRPC client


async def grpc_figures(port: int, calls: int, seconds: float, *, cached: bool) -> dict[str, float]:
    import grpc
    from dspy_grpc.v1 import (
        inference_pb2,
        inference_pb2_grpc,
        module_pb2,
        program_pb2,
        program_pb2_grpc,
        signature_pb2,
    )

    module = module_pb2.ModuleSpec(predict=module_pb2.PredictModule(
        predictor=module_pb2.PredictorSpec(signature=signature_pb2.Signature(text=SIGNATURE))))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        # A stored program, as a service runs it (its worker is built once).
        await program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(program_pb2.CreateProgramRequest(
            program_id="bench", program=program_pb2.Program(module=module)))
        stub = inference_pb2_grpc.InferenceServiceStub(channel)

        def request(i: int) -> inference_pb2.PredictRequest:
            message = inference_pb2.PredictRequest(program="programs/bench")
            message.inputs.update({"question": "What is the capital of France?" if cached else f"Question {i}?"})
            return message

        async def one(i: int) -> None:
            await stub.Predict(request(i), timeout=30)

        for i in range(20):  # warm up (and fill the cache)
            await one(0 if cached else i)
        latencies = await sequential(lambda i: one(0 if cached else i), calls)
        figures = {"p50_ms": percentile(latencies, 0.5) * 1e3, "p99_ms": percentile(latencies, 0.99) * 1e3}
        if not cached:
            figures["calls_per_s"] = await in_flight(one, seconds)
        return figures


async def sequential(call: Callable[[int], Awaitable[None]], calls: int) -> list[float]:
    latencies = []
    for i in range(calls):
        started = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - started)
    return latencies


async def in_flight(call: Callable[[int], Awaitable[None]], seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.perf_counter() < stop:
            await call(i)
            done += 1
            i += IN_FLIGHT

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(IN_FLIGHT)))
    return done / (time.perf_counter() - started)


def go_figures(port: int, calls: int, seconds: float, *, cached: bool, binary: Path) -> dict[str, float]:
    """The Go client's figures against the server on ``port`` (the program exists by then)."""

    command = [str(binary), "-address", f"127.0.0.1:{port}", "-calls", str(calls),
               "-seconds", "0" if cached else str(seconds), "-inflight", str(IN_FLIGHT)]
    if cached:
        command.append("-cached")
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300).stdout
    return json.loads(output)


def build_go_client(directory: Path) -> Path | None:
    """``bench/predict_go`` built into ``directory``, or None when Go is not installed."""

    go = shutil.which("go")
    if go is None:
        return None
    binary = directory / "predict_go"
    subprocess.run([go, "build", "-o", str(binary), "."], check=True, cwd=ROOT / "bench" / "predict_go",
                   timeout=600)
    return binary


async def floor_figures(bare_port: int, mock_url: str, calls: int) -> dict[str, float]:
    """p50 of a bare grpc.aio round trip and of a bare aiohttp POST to the mock, in ms."""

    grpc_trip = await floor.grpc_round_trips(bare_port, calls)
    http_trip = await floor.http_round_trips(mock_url, calls)
    return {"grpc_ms": percentile(grpc_trip, 0.5) * 1e3, "http_ms": percentile(http_trip, 0.5) * 1e3}


# --------------------------------------------------------------------------- DSPy in-process


def dspy_figures(mock_url: str, calls: int, seconds: float) -> dict[str, float]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import dspy

    lm = dspy.LM("openai/mock-model", api_base=mock_url, api_key="sk-bench", cache=False, num_retries=0)
    dspy.configure(lm=lm)
    predict = dspy.Predict(SIGNATURE)
    for i in range(20):
        predict(question=f"Question {i}?")
    latencies = []
    for i in range(calls):
        started = time.perf_counter()
        predict(question=f"Question {i}?")
        latencies.append(time.perf_counter() - started)
    lm.history.clear()

    done = 0
    stop = time.perf_counter() + seconds

    def thread_worker(w: int) -> int:
        count, i = 0, w
        while time.perf_counter() < stop:
            predict(question=f"Question {i}?")
            count += 1
            i += IN_FLIGHT
        return count

    started = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        done = sum(pool.map(thread_worker, range(IN_FLIGHT)))
    threads = done / (time.perf_counter() - started)
    lm.history.clear()

    async def acall(i: int) -> None:
        await predict.acall(question=f"Question {i}?")

    asynchronous = asyncio.run(in_flight(acall, seconds))
    lm.history.clear()
    return {"p50_ms": percentile(latencies, 0.5) * 1e3, "p99_ms": percentile(latencies, 0.99) * 1e3,
            "calls_per_s_threads": threads, "calls_per_s_async": asynchronous,
            "calls_per_s": max(threads, asynchronous)}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per latency figure")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each 64-in-flight run")
    args = parser.parse_args(argv)

    processes: list[subprocess.Popen] = []
    try:
        mock, mock_url = start([PYTHON, "-m", "tests.mocklm", "--port", "0"], r"MOCKLM READY (\S+)")
        processes.append(mock)
        with tempfile.TemporaryDirectory() as tmp:
            ports = {}
            for cache in (False, True):
                config = server_config(Path(tmp), mock_url, cache=cache)
                server, port = start([PYTHON, "-m", "dspy_grpc_server", "serve", "--config", str(config)],
                                     r"listening on [\d.]+:(\d+)", env={"BENCH_MOCK_KEY": "sk-bench"})
                processes.append(server)
                ports[cache] = int(port)
            ours = asyncio.run(grpc_figures(ports[False], args.calls, args.seconds, cached=False))
            hits = asyncio.run(grpc_figures(ports[True], args.calls, args.seconds, cached=True))
            binary = build_go_client(Path(tmp))
            go, go_hits = None, None
            if binary is not None:
                go = go_figures(ports[False], args.calls, args.seconds, cached=False, binary=binary)
                go_hits = go_figures(ports[True], args.calls, args.seconds, cached=True, binary=binary)
            bare, bare_port = start([PYTHON, "-m", "bench.floor", "serve"], r"BARE GRPC READY (\d+)")
            processes.append(bare)
            floors = asyncio.run(floor_figures(int(bare_port), mock_url, args.calls))
            theirs = dspy_figures(mock_url, args.calls, args.seconds)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)

    print(f"Predict, mock LM at zero latency, cache off, {args.calls} sequential calls, {IN_FLIGHT} in flight "
          f"for {args.seconds:g} s")
    clients = [("Python client", ours, hits)] + ([("Go client", go, go_hits)] if go is not None else [])
    header = "".join(f"{name:>16}{'ratio':>8}" for name, _, _ in clients)
    print(f"{'':28}{header}{'dspy in-process':>18}  target")
    for key, label, target in (("p50_ms", "p50 latency (ms)", "<= 0.6"), ("p99_ms", "p99 latency (ms)", ""),
                               ("calls_per_s", f"calls/s at {IN_FLIGHT} in flight", ">= 4")):
        cells = "".join(f"{figures[key]:>16.2f}{figures[key] / theirs[key]:>8.2f}" for _, figures, _ in clients)
        print(f"{label:28}{cells}{theirs[key]:>18.2f}  {target}")
    print(f"{'':28}DSPy's best of threads ({theirs['calls_per_s_threads']:.0f}/s) and asyncio "
          f"({theirs['calls_per_s_async']:.0f}/s)")
    for name, _, cache_hits in clients:
        print(f"cache-hit Predict, {name}: p50 {cache_hits['p50_ms']:.3f} ms, p99 {cache_hits['p99_ms']:.3f} ms "
              "(target p50 <= 0.5 ms)")
    if go is None:
        print("(Go is not installed: the Go client's figures are skipped)")
    least = floors["grpc_ms"] + floors["http_ms"]
    print(f"floors on this machine (p50): a bare grpc.aio round trip {floors['grpc_ms']:.3f} ms, a bare aiohttp POST "
          f"to the mock {floors['http_ms']:.3f} ms; their sum {least:.3f} ms is {least / theirs['p50_ms']:.2f} of "
          "DSPy's p50")


if __name__ == "__main__":
    main()

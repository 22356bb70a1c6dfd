"""Predict under load, driven by ghz (a Go load generator), against the floors on this machine.

    make bench-load             # or: .venv/bin/python -m bench.load [--seconds 10] [--connections 10]

Starts, as subprocesses: one mock LM per latency (0, 200 and 500 ms), one ``dspy-grpc serve`` per
mock with the LM cache off, one with the cache on (zero-latency mock), and bare grpc.aio servers
(``bench.floor``) answering ``InferenceService/Predict`` with an empty reply, one per latency (they
wait that long before answering, as if they called an LM). ghz calls the stored program
``programs/bench`` (``Predict("question -> answer")``, a new question every call) with a descriptor
set built from proto/ (ghz cannot use a Python server's reflection).

Figures, per scenario, for the server and its two floors (the bare server; the mock alone, driven
with aiohttp from this process at the same number of calls in flight):

- ``64 / 0 ms``: calls/s and the server's CPU per call (user + system time of its processes from
  /proc, divided by the calls it answered) -- target <= 0.5 ms for an uncached Predict; the same
  for ``StreamPredict`` (the events of a run streamed) and ``LMService.Complete`` (a raw chat
  completion through the provider layer), which have no targets of their own;
- ``200 / 200 ms`` and ``1000 / 500 ms``: calls/s / the LM-bound limit (in flight / latency) and
  p50/p99 minus the LM latency -- targets >= 0.95 with p99 - 200 ms <= 50 ms, and >= 0.8 with
  p99 - 500 ms <= 250 ms;
- cache-hit p50, one call at a time (ghz), against the bare server's -- target <= 1.5x.

A third floor, at 64 / 0 ms and one call at a time: dspy-grpc itself with Predict answering an empty
reply (``bench.floor serve --empty-dspy-grpc``): what a call costs here before any program work.

Every process shares this machine's cores (ghz, the mock, the server): the figures are what one
server process does with what is left, not what it would do alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.predict import PYTHON, ROOT, percentile, server_config, start
from bench.processes import cpu_seconds

GHZ = ROOT / ".tools" / "bin" / "ghz"
METHOD = "dspy_grpc.v1.InferenceService.Predict"
STREAM_METHOD = "dspy_grpc.v1.InferenceService.StreamPredict"
COMPLETE_METHOD = "dspy_grpc.v1.LMService.Complete"
COMPLETE_REQUEST = {"model": "mock", "messages": [{"role": "user", "content": "Question {{.RequestNumber}} at "
                                                                              "{{.TimestampUnix}}?"}]}
REQUEST = {"program": "programs/bench", "inputs": {"question": "Question {{.RequestNumber}} at {{.TimestampUnix}}?"}}
CACHED_REQUEST = {"program": "programs/bench", "inputs": {"question": "What is the capital of France?"}}
SCENARIOS = ((64, 0), (200, 200), (1000, 500))  # (calls in flight, LM latency in ms)


@dataclass
class Run:
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_call: float | None = None

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def build_protoset(directory: Path) -> Path:
    import grpc_tools
    from grpc_tools import protoc

    out = directory / "dspy_grpc.protoset"
    includes = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{includes}", "--include_imports",
                        f"--descriptor_set_out={out}", "dspy_grpc/v1/inference.proto", "dspy_grpc/v1/lm.proto"])
    if code != 0:
        raise RuntimeError("protoc could not build the descriptor set")
    return out


def ghz(protoset: Path, port: int, *, in_flight: int, seconds: float | None = None, calls: int | None = None,
        connections: int, data: dict, pid: int | None = None, method: str = METHOD) -> Run:
    command = [str(GHZ), "--insecure", "--protoset", str(protoset), "--call", method, "-d", json.dumps(data),
               "-c", str(in_flight), "--connections", str(min(connections, in_flight)), "--format", "json",
               "--timeout", "30s"]
    command += ["-z", f"{seconds}s"] if seconds is not None else ["-n", str(calls)]
    command.append(f"127.0.0.1:{port}")
    before = cpu_seconds(pid) if pid is not None else 0.0
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout
    report = json.loads(output)
    # With -z, ghz cancels the calls still in flight when the time is up (and closes its connections
    # under them): those are not errors.
    codes = report.get("statusCodeDistribution", {})
    cut = codes.get("Canceled", 0) + sum(n for message, n in (report.get("errorDistribution") or {}).items()
                                         if "use of closed network connection" in message)
    answered = sum(codes.values()) - cut
    ok = codes.get("OK", 0)
    latencies = {round(entry["percentage"]): entry["latency"] / 1e6 for entry in report["latencyDistribution"]}
    run = Run(calls=ok, seconds=report["total"] / 1e9, p50_ms=latencies[50], p99_ms=latencies[99],
              errors=answered - ok)
    if run.errors:
        print(f"ghz: errors at port {port}: {codes} {report.get('errorDistribution')}"[:2000], file=sys.stderr)
    if pid is not None:
        run.cpu_ms_per_call = (cpu_seconds(pid) - before) * 1e3 / max(1, answered)
    return run


async def mock_alone(base_url: str, in_flight: int, seconds: float) -> Run:
    """The mock driven straight from this process with aiohttp, ``in_flight`` POSTs at a time."""

    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def post(i: int) -> None:
            nonlocal errors
            body = {"model": "mock-model", "messages": [{"role": "user", "content": f"Alone {i}?"}]}
            started = time.perf_counter()
            async with session.post(f"{base_url}/chat/completions", json=body) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

        async def worker(w: int, stop: float) -> None:
            i = w
            while time.perf_counter() < stop:
                await post(i)
                i += in_flight

        await asyncio.gather(*(worker(w, time.perf_counter() + min(2.0, seconds)) for w in range(in_flight)))
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(w, started + seconds) for w in range(in_flight)))
        elapsed = time.perf_counter() - started
    return Run(calls=len(latencies) - errors, seconds=elapsed, p50_ms=percentile(latencies, 0.5) * 1e3,
               p99_ms=percentile(latencies, 0.99) * 1e3, errors=errors)


def empty_server_run(protoset: Path, directory: Path, mock_url: str, env: dict, processes: list,
                     *, in_flight: int, connections: int, seconds: float | None = None,
                     calls: int | None = None) -> Run:
    """ghz against dspy-grpc answering Predict with an empty reply (``bench.floor``), after a warm-up."""

    where = directory / f"empty-{in_flight}"
    where.mkdir()
    config = server_config(where, mock_url, cache=False)
    empty, port = start([PYTHON, "-m", "bench.floor", "serve", "--empty-dspy-grpc", "--config", str(config)],
                        r"listening on [\d.]+:(\d+)", env=env)
    processes.append(empty)
    try:
        ghz(protoset, int(port), in_flight=in_flight, seconds=2, connections=connections, data=REQUEST)
        return ghz(protoset, int(port), in_flight=in_flight, seconds=seconds, calls=calls, connections=connections,
                   data=REQUEST if calls is None else CACHED_REQUEST, pid=empty.pid)
    finally:
        empty.terminate()


def create_program(port: int) -> None:
    import grpc
    from dspy_grpc.v1 import module_pb2, program_pb2, program_pb2_grpc, signature_pb2

    module = module_pb2.ModuleSpec(predict=module_pb2.PredictModule(
        predictor=module_pb2.PredictorSpec(signature=signature_pb2.Signature(text="question -> answer"))))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        program_pb2_grpc.ProgramServiceStub(channel).CreateProgram(program_pb2.CreateProgramRequest(
            program_id="bench", program=program_pb2.Program(module=module)), timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each loaded run")
    parser.add_argument("--connections", type=int, default=10, help="HTTP/2 connections ghz spreads calls over")
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls of the cache-hit figure")
    parser.add_argument("--only", choices=["server", "all"], default="all",
                        help="'server' skips the floors (quicker, when comparing changes)")
    args = parser.parse_args(argv)
    if not GHZ.exists():
        sys.exit(f"{GHZ} is missing: run `make ghz`")

    processes: list[subprocess.Popen] = []
    results: dict[tuple[str, int, int], Run] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            protoset = build_protoset(directory)
            env = {"BENCH_MOCK_KEY": "sk-bench"}
            for in_flight, latency in SCENARIOS:
                mock, mock_url = start([PYTHON, "-m", "tests.mocklm", "--port", "0", "--latency-ms", str(latency)],
                                       r"MOCKLM READY (\S+)")
                processes.append(mock)
                (directory / f"l{latency}").mkdir()
                config = server_config(directory / f"l{latency}", mock_url, cache=False)
                server, port = start([PYTHON, "-m", "dspy_grpc_server", "serve", "--config", str(config)],
                                     r"listening on [\d.]+:(\d+)", env=env)
                processes.append(server)
                create_program(int(port))
                ghz(protoset, int(port), in_flight=in_flight, seconds=2, connections=args.connections,
                    data=REQUEST)  # warm up
                results[("server", in_flight, latency)] = ghz(
                    protoset, int(port), in_flight=in_flight, seconds=args.seconds, connections=args.connections,
                    data=REQUEST, pid=server.pid)
                if latency == 0:
                    results[("stream", in_flight, latency)] = ghz(
                        protoset, int(port), in_flight=in_flight, seconds=args.seconds,
                        connections=args.connections, data=REQUEST, pid=server.pid, method=STREAM_METHOD)
                    results[("complete", in_flight, latency)] = ghz(
                        protoset, int(port), in_flight=in_flight, seconds=args.seconds,
                        connections=args.connections, data=COMPLETE_REQUEST, pid=server.pid, method=COMPLETE_METHOD)
                server.terminate()
                if args.only == "all" and latency == 0:
                    results[("empty", in_flight, latency)] = empty_server_run(
                        protoset, directory, mock_url, env, processes, in_flight=in_flight, seconds=args.seconds,
                        connections=args.connections)
                if args.only == "all":
                    bare, bare_port = start([PYTHON, "-m", "bench.floor", "serve", "--delay-ms", str(latency)],
                                            r"BARE GRPC READY (\d+)")
                    processes.append(bare)
                    ghz(protoset, int(bare_port), in_flight=in_flight, seconds=2, connections=args.connections,
                        data=REQUEST)
                    results[("bare", in_flight, latency)] = ghz(
                        protoset, int(bare_port), in_flight=in_flight, seconds=args.seconds,
                        connections=args.connections, data=REQUEST, pid=bare.pid)
                    bare.terminate()
                    results[("mock", in_flight, latency)] = asyncio.run(mock_alone(mock_url, in_flight, args.seconds))
                mock.terminate()

            mock, mock_url = start([PYTHON, "-m", "tests.mocklm", "--port", "0"], r"MOCKLM READY (\S+)")
            processes.append(mock)
            (directory / "cached").mkdir()
            config = server_config(directory / "cached", mock_url, cache=True)
            server, port = start([PYTHON, "-m", "dspy_grpc_server", "serve", "--config", str(config)],
                                 r"listening on [\d.]+:(\d+)", env=env)
            processes.append(server)
            create_program(int(port))
            ghz(protoset, int(port), in_flight=1, calls=200, connections=1, data=CACHED_REQUEST)
            results[("server", 1, -1)] = ghz(protoset, int(port), in_flight=1, calls=args.calls, connections=1,
                                             data=CACHED_REQUEST, pid=server.pid)
            if args.only == "all":
                bare, bare_port = start([PYTHON, "-m", "bench.floor", "serve"], r"BARE GRPC READY (\d+)")
                processes.append(bare)
                ghz(protoset, int(bare_port), in_flight=1, calls=200, connections=1, data=CACHED_REQUEST)
                results[("bare", 1, -1)] = ghz(protoset, int(bare_port), in_flight=1, calls=args.calls,
                                               connections=1, data=CACHED_REQUEST, pid=bare.pid)
                results[("empty", 1, -1)] = empty_server_run(protoset, directory, mock_url, env, processes,
                                                             in_flight=1, calls=args.calls, connections=1)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            process.wait(timeout=15)

    report(results, args)


def report(results: dict[tuple[str, int, int], Run], args: argparse.Namespace) -> None:
    names = {"server": "dspy-grpc Predict", "stream": "StreamPredict", "complete": "LMService.Complete",
             "empty": "dspy-grpc, no work", "bare": "bare grpc.aio", "mock": "mock LM alone"}
    print(f"Predict under load (ghz, {args.connections} connections, {args.seconds:g} s per run, cache off); "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'scenario':16}{'process':20}{'calls/s':>9}{'÷ limit':>9}{'p50-LM':>9}{'p99-LM':>9}"
          f"{'CPU ms/call':>13}{'errors':>8}  target")
    targets = {0: "CPU <= 0.5 ms/call", 200: ">= 0.95, p99-LM <= 50 ms", 500: ">= 0.8, p99-LM <= 250 ms"}
    for in_flight, latency in SCENARIOS:
        for who in ("server", "stream", "complete", "empty", "bare", "mock"):
            run = results.get((who, in_flight, latency))
            if run is None:
                continue
            limit = f"{run.rate / (in_flight * 1000 / latency):9.2f}" if latency else f"{'':9}"
            cpu = f"{run.cpu_ms_per_call:13.3f}" if run.cpu_ms_per_call is not None else f"{'':13}"
            target = targets[latency] if who == "server" else ""
            print(f"{f'{in_flight} / {latency} ms':16}{names[who]:20}{run.rate:9.0f}{limit}"
                  f"{run.p50_ms - latency:9.1f}{run.p99_ms - latency:9.1f}{cpu}{run.errors:8d}  {target}")
    hit, bare, empty = results[("server", 1, -1)], results.get(("bare", 1, -1)), results.get(("empty", 1, -1))
    line = f"cache-hit Predict p50 {hit.p50_ms:.3f} ms (p99 {hit.p99_ms:.3f}, CPU {hit.cpu_ms_per_call:.3f} ms/call)"
    if bare is not None:
        line += (f"; bare grpc.aio p50 {bare.p50_ms:.3f} ms (CPU {bare.cpu_ms_per_call:.3f} ms/call): "
                 f"{hit.p50_ms / bare.p50_ms:.2f}x (target <= 1.5x)")
    if empty is not None and bare is not None:
        line += (f"; dspy-grpc doing no work p50 {empty.p50_ms:.3f} ms (CPU {empty.cpu_ms_per_call:.3f} ms/call): "
                 f"{empty.p50_ms / bare.p50_ms:.2f}x")
    print(line)


if __name__ == "__main__":
    if shutil.which("go") is None and not GHZ.exists():
        sys.exit("ghz needs Go to install (`make ghz`)")
    main()

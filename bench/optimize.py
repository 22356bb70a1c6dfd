"""Benchmark: BootstrapFewShotWithRandomSearch, MIPROv2 (light), GEPA (light) and SIMBA as dspy-grpc jobs vs dspy 3.4.1.

    make bench-optimize            # or: .venv/bin/python -m bench.optimize --examples 100 --latency-ms 100
    .venv/bin/python -m bench.optimize --optimizer mipro_v2 --skip-dspy --repeat 5   # the spread on a busy machine

Starts the mock LM (``python -m tests.mocklm --task arithmetic``, answers right only when the
prompt has demos or good instructions; GEPA's reflection LM and SIMBA's varied samples as in
tests/mocklm/reflection.py) with a fixed latency, and the dspy-grpc server as a
subprocess on a fresh SQLite file. Runs each optimizer on N examples (no split: each picks its
valset as DSPy does) and prints:

* efficiency = job wall time / (LM calls x latency / concurrency): 1.0 means the LM latency was the
  only cost and every one of the `concurrency` slots was busy all the time (target <= 1.2);
* for GEPA and SIMBA, the critical-path bound: the job's LM calls by dependency level (the server
  logs them at the end of the job, see server/dspy_grpc_server/optimize/timeline.py), the longest
  chain of ``ceil(calls / concurrency)`` rounds of latency through the levels and the efficiency
  it allows (the best an exact implementation can reach); the slots' time split into LM calls,
  journaling and the rest; and the efficiency at the measured cost of a call (``--levels``: each level);
* the wall time of dspy 3.4.1's same optimizer with ``num_threads`` = our concurrency, on the same
  mock (memory cache on as by default, disk cache off), and the ratio of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import json
import math
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from bench.processes import cpu_seconds

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


def _mock_calls(base_url: str) -> int:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/mock/stats") as response:  # noqa: S310 - loopback
        return json.load(response)["chat_completions"]


OPTIMIZERS = {
    "random_search": "BootstrapFewShotWithRandomSearch",
    "mipro_v2": "MIPROv2 (auto=light)",
    "gepa": "GEPA (auto=light)",
    "simba": "SIMBA (DSPy's defaults)",
}
#: The mock LM's task per optimizer (see tests/mocklm/__main__.py).
TASKS = {"random_search": "arithmetic", "mipro_v2": "arithmetic", "gepa": "reflection", "simba": "sampling"}


def feedback_metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
    """Our exact-match metric's score and feedback, as a DSPy GEPA/SIMBA metric."""

    import dspy
    from dspy_grpc_server.modules.metrics import normalize_text

    got, expected = pred.answer, gold.answer
    if normalize_text(str(got)) == normalize_text(str(expected)):
        return dspy.Prediction(score=1.0, feedback=f"The answer {got} is correct (expected {expected}).")
    return dspy.Prediction(score=0.0, feedback=f"The answer {got} is incorrect: the expected answer is {expected}.")


def _our_settings(optimizer: str, candidates: int) -> dict:
    if optimizer == "random_search":
        return {"random_search": {"num_candidate_programs": candidates}}
    if optimizer == "gepa":
        return {"gepa": {"auto": "light", "reflection_lm": {"model": "mock"}}}
    if optimizer == "simba":
        return {"simba": {}}
    return {"mipro_v2": {"auto": "light"}}


def _dspy_optimizer(optimizer: str, candidates: int, threads: int):
    import dspy
    from dspy.evaluate import answer_exact_match

    if optimizer == "random_search":
        return dspy.BootstrapFewShotWithRandomSearch(
            metric=answer_exact_match, num_candidate_programs=candidates, num_threads=threads)
    if optimizer == "gepa":
        return dspy.GEPA(metric=feedback_metric, auto="light", reflection_lm=dspy.settings.lm, num_threads=threads,
                         track_stats=True)
    if optimizer == "simba":
        return dspy.SIMBA(metric=feedback_metric, num_threads=threads)
    return dspy.MIPROv2(metric=answer_exact_match, auto="light", num_threads=threads)


async def run_ours(base_url: str, optimizer: str, examples: int, threads: int, candidates: int,
                   workdir: Path) -> tuple[float, int, float]:
    import grpc
    from dspy_grpc.v1 import job_pb2, optimization_pb2, optimization_pb2_grpc
    from google.protobuf import json_format

    from tests.integration.job_helpers import TERMINAL, create_dataset, create_optimization, create_program
    from tests.mocklm import arithmetic

    config = workdir / "bench.toml"
    config.write_text(
        "[[models]]\n"
        'alias = "mock"\nprovider = "openai"\nmodel = "mock-model"\n'
        f'base_url = "{base_url}"\napi_key_env = "BENCH_MOCK_KEY"\n'
        "max_retries = 0\ntimeout_s = 60\n"
    )
    server, address = await _start(
        [sys.executable, "-m", "dspy_grpc_server", "serve", "--port", "0", "--config", str(config),
         "--database-url", f"sqlite+aiosqlite:///{workdir / 'bench.db'}", "--log-level", "INFO"],
        "dspy-grpc listening on", env={"BENCH_MOCK_KEY": "sk-bench"}, log=workdir / "server.log",
    )
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            await create_dataset(channel, "bench", arithmetic.examples(examples))
            await create_program(channel, "bench")
            calls_before = _mock_calls(base_url)
            cpu_before = cpu_seconds(server.pid)
            started = time.perf_counter()
            created = await create_optimization(channel, {
                "program": "programs/bench", "dataset": "datasets/bench", "metric": {"exact_match": {}},
                "num_threads": threads, **_our_settings(optimizer, candidates),
            }, optimization_id=f"bench-{uuid.uuid4().hex[:8]}")
            # Watched, as a client would: no polling load on the server while it works.
            watch = optimization_pb2_grpc.OptimizationServiceStub(channel).WatchOptimization(
                optimization_pb2.WatchOptimizationRequest(name=created.name), timeout=3600)
            async for event in watch:
                done = event.optimization
                if done.state in TERMINAL:
                    break
            wall = time.perf_counter() - started
            assert done.state == job_pb2.JOB_STATE_SUCCEEDED, json_format.MessageToDict(done.error)
            (workdir / "server_cpu_s").write_text(str(cpu_seconds(server.pid) - cpu_before))
            return wall, _mock_calls(base_url) - calls_before, done.result.best_score
    finally:
        server.terminate()
        await server.wait()


def job_timeline(workdir: Path) -> dict | None:
    """The job's LM call timeline (optimize/timeline.py), from the server's log."""

    for line in (workdir / "server.log").read_text(errors="replace").splitlines():
        _, found, rest = line.partition(" timeline ")
        if found and "dspy_grpc_server.optimize.timeline" in line:
            return json.loads(rest.split(" ", 1)[1])
    return None


def report_timeline(timeline: dict, latency: float, show_levels: bool) -> None:
    """Print the job's critical-path bound and where its slots' time went."""

    concurrency, calls = timeline["concurrency"], timeline["calls"]
    ideal = calls * latency / concurrency
    bound = timeline["bound_rounds"] * latency
    levels = timeline["levels"]
    busy, saving = timeline["busy_s"], timeline["saving_s"]
    slot_time = concurrency * timeline["wall_s"]
    print(f"  critical path: {timeline['bound_rounds']} rounds of latency on the longest chain of the "
          f"{timeline['level_count']} dependency levels = {bound:.2f} s; bound efficiency = max({bound:.2f}, {ideal:.2f}) / "
          f"{ideal:.2f} = {max(bound, ideal) / ideal:.3f} (the best an exact implementation can reach)")
    print(f"  slot time ({concurrency} x {timeline['wall_s']:.2f} s): LM calls {100 * busy / slot_time:.0f}% "
          f"({1000 * busy / max(1, calls):.1f} ms a call for {1000 * latency:g} ms of latency), journaling answers "
          f"{100 * saving / slot_time:.0f}% ({1000 * saving / max(1, calls):.1f} ms a call), the rest "
          f"{100 * (1 - (busy + saving) / slot_time):.0f}% (running programs and metrics, idle)")
    print(f"  efficiency at the measured cost of a call: {timeline['wall_s']:.2f} / ({busy + saving:.2f} / "
          f"{concurrency}) = {slot_time / (busy + saving):.3f} (how well the slots were kept busy)")
    if show_levels:
        print("    level                              calls  start_s    dur_s  rounds_s  in flight")
        for level in levels:
            duration = level["end_s"] - level["start_s"]
            print(f"    {level['name'][:34]:34} {level['calls']:5} {level['start_s']:8.2f} {duration:8.2f} "
                  f"{math.ceil(level['calls'] / concurrency) * latency:9.2f} {level['busy_s'] / duration:10.1f}")


def run_dspy(base_url: str, optimizer_name: str, examples: int, threads: int, candidates: int
             ) -> tuple[float, int, float]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import dspy

    from tests.mocklm import arithmetic

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)
    lm = dspy.LM("openai/mock-model", api_base=base_url, api_key="sk-bench", num_retries=0)
    dspy.configure(lm=lm)
    trainset = [dspy.Example(**row).with_inputs("question") for row in arithmetic.examples(examples)]
    logging.getLogger("dspy").setLevel(logging.WARNING)
    calls_before = _mock_calls(base_url)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        optimizer = _dspy_optimizer(optimizer_name, candidates, threads)
        compiled = optimizer.compile(dspy.Predict("question -> answer"), trainset=trainset)
    wall = time.perf_counter() - started
    best = getattr(compiled, "score", None)
    if optimizer_name == "gepa":
        results = compiled.detailed_results
        best = round(100 * results.val_aggregate_scores[results.best_idx], 2)
    elif optimizer_name == "simba":
        best = round(100 * compiled.candidate_programs[0]["score"], 2)
    elif best is None:
        best = compiled.candidate_programs[0]["score"]
    return wall, _mock_calls(base_url) - calls_before, best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=16, help="our num_threads = DSPy's num_threads")
    parser.add_argument("--candidates", type=int, default=16, help="num_candidate_programs (DSPy's default 16)")
    parser.add_argument("--skip-dspy", action="store_true", help="do not run dspy 3.4.1 for comparison")
    parser.add_argument("--repeat", type=int, default=1, help="run each of our jobs this many times (fresh server "
                        "each time) and report the spread; the comparison with dspy uses the last run")
    parser.add_argument("--optimizer", choices=[*OPTIMIZERS, "all"], default="all")
    parser.add_argument("--levels", action="store_true", help="print each dependency level of GEPA's and SIMBA's "
                        "jobs (LM calls, start, duration, rounds of latency it needs, calls in flight on average)")
    args = parser.parse_args()
    latency = args.latency_ms / 1000

    for optimizer in OPTIMIZERS if args.optimizer == "all" else [args.optimizer]:
        mock, base_url = await _start(
            [sys.executable, "-m", "tests.mocklm", "--port", "0", "--latency-ms", str(args.latency_ms),
             "--task", TASKS[optimizer]], "MOCKLM READY",
        )
        try:
            detail = f", {args.candidates} candidates" if optimizer == "random_search" else ""
            print(f"{OPTIMIZERS[optimizer]}, {args.examples} examples{detail}, latency {args.latency_ms:g} ms, "
                  f"concurrency {args.concurrency}")
            runs = []
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory() as workdir:
                    wall, calls, score = await run_ours(base_url, optimizer, args.examples, args.concurrency,
                                                        args.candidates, Path(workdir))
                    timeline = job_timeline(Path(workdir))
                    cpu = float((Path(workdir) / "server_cpu_s").read_text())
                ideal = calls * latency / args.concurrency
                runs.append(wall / ideal)
                print(f"  dspy-grpc job: {wall:.2f} s wall, {calls} LM calls, best score {score:.1f}; the server used "
                      f"{cpu:.2f} s of CPU ({1000 * cpu / max(1, calls):.1f} ms an LM call; load average "
                      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
                print(f"  efficiency: wall / (calls x latency / concurrency) = {wall:.2f} / {ideal:.2f} = "
                      f"{wall / ideal:.3f} (target <= 1.2)", flush=True)
                if timeline is not None:
                    report_timeline(timeline, latency, args.levels)
            if len(runs) > 1:
                print(f"  efficiency over {len(runs)} runs: min {min(runs):.3f}, median {statistics.median(runs):.3f}, "
                      f"max {max(runs):.3f}")
            if not args.skip_dspy:
                dspy_wall, dspy_calls, dspy_score = await asyncio.to_thread(
                    run_dspy, base_url, optimizer, args.examples, args.concurrency, args.candidates
                )
                print(f"  dspy 3.4.1 (num_threads={args.concurrency}): {dspy_wall:.2f} s wall, {dspy_calls} LM calls, "
                      f"best score {dspy_score:.1f}")
                print(f"  wall time vs dspy: {wall / dspy_wall:.3f}x ({dspy_wall / wall:.2f}x faster)", flush=True)
        finally:
            mock.terminate()
            await mock.wait()


if __name__ == "__main__":
    asyncio.run(main())

"""Live activity of one application, kept in memory for the dashboard.

:class:`Activity` is a telemetry sink: it receives the events of :mod:`..core.telemetry` (finished
RPCs, LM calls, program runs, cache lookups, breaker changes, job progress) and keeps counters, the
recent latencies per program and model (for p50/p99), LM usage and cost in time buckets, and the
latest state of each job. :meth:`Activity.snapshot` returns all of it as plain JSON-able data.
Nothing here holds prompts, completions or keys.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core import telemetry

#: How many recent latencies per program/model the percentiles are computed over.
LATENCY_WINDOW = 1000
#: How many finished jobs stay listed.
RECENT_JOBS = 20
#: How many progress points per job are kept for its chart (older ones are thinned out).
JOB_HISTORY = 240


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0 when empty)."""

    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class _Stats:
    calls: int = 0
    errors: int = 0
    last_error: str = ""
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def add(self, seconds: float, error: str) -> None:
        self.calls += 1
        self.latencies.append(seconds)
        if error:
            self.errors += 1
            self.last_error = error

    def as_dict(self) -> dict[str, Any]:
        latencies = list(self.latencies)
        return {"calls": self.calls, "errors": self.errors, "last_error": self.last_error,
                "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2)}


@dataclass
class _ModelStats(_Stats):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0


@dataclass
class _Traffic:
    """LM traffic of one program from one source (RPCs or jobs)."""

    lm_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"lm_calls": self.lm_calls, "tokens": self.tokens, "cost_usd": round(self.cost_usd, 6)}


@dataclass
class _Bucket:
    start: float
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def _ignore(_event: object) -> None:
    return None


class Activity:
    """See the module docstring. ``bucket_s`` × ``buckets`` is the time span the usage charts cover."""

    def __init__(self, *, bucket_s: float = 5.0, buckets: int = 120, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.started = clock()
        self.bucket_s = bucket_s
        self._timeline: deque[_Bucket] = deque(maxlen=buckets)
        self.rpc_calls = self.rpc_errors = self.in_flight = 0
        self.rpc_codes: dict[str, int] = {}
        self.models: dict[str, _ModelStats] = {}
        self.programs: dict[str, _Stats] = {}
        self.breakers: dict[str, str] = {}
        self.cache_hits = self.cache_misses = 0
        self.jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        #: Per job: [seconds since start, fraction done, best score] points, oldest first.
        self.job_history: dict[str, list[list[float | None]]] = {}
        #: Per program id ("" for inline modules and raw calls) and source ("rpc" / "job").
        self.traffic: dict[tuple[str, str], _Traffic] = {}
        #: The handler of each event type (``_on_<type name>``; events without one are ignored).
        self._handlers: dict[type, Callable[[Any], None]] = {}

    # ------------------------------------------------------------ the sink

    def __call__(self, event: telemetry.Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            handler = self._handlers[type(event)] = getattr(self, f"_on_{type(event).__name__}", _ignore)
        handler(event)

    def _bucket(self) -> _Bucket:
        now = self._clock()
        start = now - now % self.bucket_s
        if not self._timeline or self._timeline[-1].start < start:
            self._timeline.append(_Bucket(start))
        return self._timeline[-1]

    def _on_RpcStarted(self, event: telemetry.RpcStarted) -> None:
        self.in_flight += 1

    def _on_RpcFinished(self, event: telemetry.RpcFinished) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.rpc_calls += 1
        self.rpc_codes[event.code] = self.rpc_codes.get(event.code, 0) + 1
        if event.code not in ("OK", "CANCELLED"):
            self.rpc_errors += 1

    def _traffic(self, program: str, job: str) -> _Traffic:
        key = (program, "job" if job else "rpc")
        traffic = self.traffic.get(key)
        if traffic is None:
            traffic = self.traffic[key] = _Traffic()
        return traffic

    def _model(self, model: str) -> _ModelStats:
        stats = self.models.get(model)
        if stats is None:
            stats = self.models[model] = _ModelStats()
        return stats

    def _on_LMCallFinished(self, event: telemetry.LMCallFinished) -> None:
        traffic = self._traffic(event.program, event.job)
        traffic.lm_calls += 1
        traffic.tokens += event.input_tokens + event.output_tokens
        stats = self._model(event.model)
        stats.add(event.seconds, event.error)
        stats.input_tokens += event.input_tokens
        stats.output_tokens += event.output_tokens
        stats.cache_hits += int(event.cache_hit)
        bucket = self._bucket()
        bucket.calls += 1
        bucket.errors += int(bool(event.error))
        bucket.input_tokens += event.input_tokens
        bucket.output_tokens += event.output_tokens

    def _on_CostRecorded(self, event: telemetry.CostRecorded) -> None:
        self._model(event.model).cost_usd += event.usd
        self._traffic(event.program, event.job).cost_usd += event.usd
        self._bucket().cost_usd += event.usd

    def _on_ProgramCallFinished(self, event: telemetry.ProgramCallFinished) -> None:
        stats = self.programs.get(event.program)
        if stats is None:
            stats = self.programs[event.program] = _Stats()
        stats.add(event.seconds, event.error)

    def _on_CacheLookup(self, event: telemetry.CacheLookup) -> None:
        if event.hit:
            self.cache_hits += 1
        else:
            self.cache_misses += 1

    def _on_BreakerChanged(self, event: telemetry.BreakerChanged) -> None:
        self.breakers[event.provider] = event.state

    def _on_JobProgressed(self, event: telemetry.JobProgressed) -> None:
        now = self._clock()
        previous = self.jobs.pop(event.job, None)
        self.jobs[event.job] = {
            "job": event.job, "kind": event.kind, "state": event.state, "completed": event.completed,
            "total": event.total, "score": event.score, "program": event.program, "updated": now,
            "started": previous["started"] if previous else now,
        }
        started = self.jobs[event.job]["started"]
        history = self.job_history.setdefault(event.job, [])
        fraction = 1.0 if event.state == "succeeded" else event.completed / event.total if event.total > 0 else 0.0
        history.append([round(now - started, 3), round(min(1.0, fraction), 4), event.score])
        if len(history) > JOB_HISTORY:  # keep the first and last points, thin out the middle
            del history[1:len(history) - 1:2]
        finished = [name for name, job in self.jobs.items() if job["state"] not in ("running", "pending", "queued")]
        for name in finished[:-RECENT_JOBS]:
            del self.jobs[name]
            self.job_history.pop(name, None)

    # ------------------------------------------------------------ reading

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        cutoff = now - self.bucket_s * (self._timeline.maxlen or 0)
        return {
            "time": now,
            "uptime_s": round(now - self.started, 1),
            "rpc": {"calls": self.rpc_calls, "errors": self.rpc_errors, "in_flight": self.in_flight,
                    "codes": dict(self.rpc_codes)},
            "cache": {"hits": self.cache_hits, "misses": self.cache_misses},
            "models": {name: {**stats.as_dict(), "input_tokens": stats.input_tokens,
                              "output_tokens": stats.output_tokens, "cost_usd": round(stats.cost_usd, 6),
                              "cache_hits": stats.cache_hits}
                       for name, stats in self.models.items()},
            "breakers": dict(self.breakers),
            "programs": {name: stats.as_dict() for name, stats in self.programs.items()},
            "traffic": [{"program": program, "source": source, **traffic.as_dict()}
                        for (program, source), traffic in sorted(self.traffic.items())],
            "timeline": {"bucket_s": self.bucket_s, "points": [
                {"t": b.start, "calls": b.calls, "errors": b.errors, "input_tokens": b.input_tokens,
                 "output_tokens": b.output_tokens, "cost_usd": round(b.cost_usd, 6)}
                for b in self._timeline if b.start >= cutoff]},
            "jobs": list(reversed(self.jobs.values())),
        }

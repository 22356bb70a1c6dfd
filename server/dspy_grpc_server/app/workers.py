"""Program workers: each program revision that runs is built once into a runtime tree and kept here,
with its call metrics; and the quarantine of inputs a program keeps failing on.

The active revision of a program is cached for ``active_revision_refresh_s`` seconds (changes made
through this server take effect at once; other servers sharing the database see them after that).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.errors import DeadlineExceeded, DspyGrpcError, FailedPrecondition, ParseError
from ..lm.deadline import Deadline
from ..modules.build import build_module
from ..modules.node import Node
from ..modules.prediction import Prediction
from ..store.quarantine import QuarantineRecord, QuarantineStore
from .programs import Program, Programs

#: Upper bounds (seconds) of the latency histogram buckets; a last +Inf bucket follows.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Program revisions kept loaded at most (least recently used ones are dropped).
MAX_WORKERS = 256


def input_hash(inputs: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the inputs: how quarantine recognizes an input."""

    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def failure_reason(error: BaseException, deadline: Deadline | None) -> str | None:
    """The reason a failure counts toward quarantine (crash, timeout, parse error), else None."""

    if isinstance(error, ParseError):
        return error.reason
    if isinstance(error, DeadlineExceeded):
        return error.reason
    if isinstance(error, asyncio.CancelledError):
        return "DEADLINE_EXCEEDED" if deadline is not None and deadline.expired() else None
    if isinstance(error, DspyGrpcError):
        return None
    return "INTERNAL"


@dataclass
class WorkerMetrics:
    calls: int = 0
    errors: int = 0
    quarantined_calls: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def observe(self, seconds: float) -> None:
        self.latency_sum_s += seconds
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_counts[index] += 1
                return
        self.latency_counts[-1] += 1

    def cumulative(self) -> list[tuple[float | None, int]]:
        """(upper bound or None for +Inf, cumulative count) per bucket."""

        total, out = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, None), self.latency_counts):
            total += count
            out.append((bound, total))
        return out


@dataclass
class ProgramWorker:
    """One loaded program revision."""

    program_id: str
    revision_id: str
    node: Node
    load_time: datetime
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)


class Quarantine:
    """Counts failures per (program, input) in a sliding window and quarantines repeat offenders."""

    def __init__(self, store: QuarantineStore, *, failures: int, window_s: float) -> None:
        self._store = store
        self._failures = failures
        self._window_s = window_s
        self._hashes: dict[str, set[str]] = {}
        self._counts: dict[tuple[str, str], deque[float]] = {}
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self._failures > 0

    async def is_quarantined(self, program_id: str, digest: str) -> bool:
        if not self.enabled:
            return False
        hashes = self._hashes.get(program_id)
        if hashes is None:
            async with self._lock:
                hashes = self._hashes.get(program_id)
                if hashes is None:
                    hashes = self._hashes[program_id] = await self._store.hashes(program_id)
        return digest in hashes

    async def failed(self, worker: ProgramWorker, digest: str, inputs: Mapping[str, Any], reason: str,
                     message: str) -> None:
        if not self.enabled:
            return
        key = (worker.program_id, digest)
        now = time.monotonic()
        times = self._counts.setdefault(key, deque())
        times.append(now)
        while times and now - times[0] > self._window_s:
            times.popleft()
        if len(times) < self._failures:
            return
        count = len(times)
        self._counts.pop(key, None)
        await self._store.add(QuarantineRecord(
            worker.program_id, digest, dict(inputs), worker.revision_id, reason, message[:2000], count,
            datetime.now(UTC),
        ))
        self._hashes.setdefault(worker.program_id, set()).add(digest)

    def forget(self, program_id: str) -> None:
        """Drop cached quarantine state of a program (after a clear or a delete)."""

        self._hashes.pop(program_id, None)
        for key in [k for k in self._counts if k[0] == program_id]:
            self._counts.pop(key, None)


class ProgramWorkers:
    """The registry of loaded program revisions."""

    def __init__(self, programs: Programs, quarantine: Quarantine, *, refresh_s: float = 1.0) -> None:
        self._programs = programs
        self.quarantine = quarantine
        self._refresh_s = refresh_s
        self._workers: dict[tuple[str, str], ProgramWorker] = {}
        self._active: dict[str, tuple[str, float]] = {}  # program id -> (revision id, checked at)
        programs.on_change(self.invalidate)

    def workers(self) -> list[ProgramWorker]:
        return sorted(self._workers.values(), key=lambda w: (w.program_id, w.revision_id))

    def invalidate(self, program_id: str) -> None:
        """Forget the cached active revision and quarantine state of a program that changed through
        this server (reloaded from the store on the next call)."""

        self._active.pop(program_id, None)
        self.quarantine.forget(program_id)

    async def get(self, program_id: str, revision_id: str | None) -> ProgramWorker:
        if not revision_id:
            cached = self._active.get(program_id)
            if cached is not None and time.monotonic() - cached[1] < self._refresh_s:
                revision_id = cached[0]
        if revision_id and (program_id, revision_id) in self._workers:
            worker = self._workers.pop((program_id, revision_id))
            self._workers[(program_id, revision_id)] = worker  # most recently used last
            return worker
        program = await self._programs.get(program_id, revision_id)
        if not revision_id:
            self._active[program_id] = (program.record.revision_id, time.monotonic())
        return self._load(program)

    def _load(self, program: Program) -> ProgramWorker:
        key = (program.record.program_id, program.record.revision_id)
        worker = self._workers.get(key)
        if worker is None:
            node = build_module(program.module, "program.module")
            worker = ProgramWorker(key[0], key[1], node, datetime.now(UTC))
            self._workers[key] = worker
            while len(self._workers) > MAX_WORKERS:
                self._workers.pop(next(iter(self._workers)))
        return worker

    async def run(self, worker: ProgramWorker, inputs: Mapping[str, Any], deadline: Deadline | None,
                  call: Callable[[Node], Awaitable[Prediction]]) -> Prediction:
        """Run ``call`` on the worker's tree with metrics and quarantine."""

        digest = input_hash(inputs)
        if await self.quarantine.is_quarantined(worker.program_id, digest):
            worker.metrics.quarantined_calls += 1
            raise FailedPrecondition(
                f"this input is quarantined for 'programs/{worker.program_id}' after repeated failures; an "
                "admin can release it with ProgramAdminService.ClearQuarantinedInputs",
                reason="QUARANTINED",
                metadata={"program_id": worker.program_id, "input_hash": digest},
            )
        metrics = worker.metrics
        metrics.calls += 1
        started = time.perf_counter()
        try:
            prediction = await call(worker.node)
        except BaseException as error:
            metrics.errors += 1
            metrics.observe(time.perf_counter() - started)
            reason = failure_reason(error, deadline)
            if reason is not None:
                message = getattr(error, "message", "") or str(error) or type(error).__name__
                await asyncio.shield(self.quarantine.failed(worker, digest, inputs, reason, message))
            raise
        metrics.observe(time.perf_counter() - started)
        for usage in prediction.usage:
            metrics.prompt_tokens += usage.usage.prompt_tokens
            metrics.completion_tokens += usage.usage.completion_tokens
        return prediction

"""Program workers: each program revision that runs is built once into a runtime tree and kept here,
with its call metrics; and the quarantine of inputs a program keeps failing on.

What a replica knows about a program is dropped when the change feed (store/changes.py) announces
a change, and re-read at least every ``active_revision_refresh_s`` seconds regardless.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.errors import DeadlineExceeded, DspyGrpcError, FailedPrecondition, NotFound, ParseError
from ..core.shared_reads import SharedReads
from ..lm.deadline import Deadline
from ..modules.build import build_module
from ..modules.node import Node
from ..modules.prediction import Prediction
from ..store.quarantine import QuarantineRecord, QuarantineStore
from ..store.changes import EVERYTHING, ChangeFeed
from .programs import PROGRAM_TOPIC, Program, Programs

#: Upper bounds (seconds) of the latency histogram buckets; a last +Inf bucket follows.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: The change-feed topic of a program's quarantined inputs.
QUARANTINE_TOPIC = "quarantine"
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
    #: The program's create time: a worker of an earlier program with the same id is never reused.
    generation: datetime = datetime.min.replace(tzinfo=UTC)
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)


class Quarantine:
    """Counts failures per (program, input) in a sliding window and quarantines repeat offenders.

    Both the failure windows and the quarantined set live in the store, so every replica counts
    together and refuses the same inputs. Each replica caches a program's quarantined set for at most
    ``refresh_s`` seconds, and drops it at once when the change feed announces a quarantine or a clear
    (topic ``quarantine``) on any replica.
    """

    def __init__(self, store: QuarantineStore, *, failures: int, window_s: float, changes: ChangeFeed,
                 refresh_s: float = 1.0) -> None:
        self._store = store
        self._failures = failures
        self._window_s = window_s
        self._changes = changes
        self._refresh_s = refresh_s
        self._hashes: dict[str, tuple[set[str], float]] = {}
        self._epoch = 0
        self._reads: SharedReads[str, set[str]] = SharedReads()

    @property
    def enabled(self) -> bool:
        return self._failures > 0

    async def quarantined(self, program_id: str, inputs: Mapping[str, Any]) -> str | None:
        """The inputs' hash if they are quarantined for the program, else None (hashing only when the
        program has quarantined inputs at all)."""

        if not self.enabled:
            return None
        cached = self._hashes.get(program_id)
        if cached is None or time.monotonic() - cached[1] >= self._refresh_s:
            hashes = await self._reads.read(program_id, self._epoch, lambda: self._read(program_id))
        else:
            hashes = cached[0]
        if not hashes:
            return None
        digest = input_hash(inputs)
        return digest if digest in hashes else None

    async def _read(self, program_id: str) -> set[str]:
        epoch = self._epoch
        hashes = await self._store.hashes(program_id)
        if epoch == self._epoch:
            self._hashes[program_id] = (hashes, time.monotonic())
        return hashes

    async def failed(self, worker: ProgramWorker, inputs: Mapping[str, Any], reason: str, message: str) -> None:
        if not self.enabled:
            return
        digest = input_hash(inputs)
        count = await self._store.count_failure(worker.program_id, digest, now=datetime.now(UTC),
                                                window_s=self._window_s)
        if count < self._failures:
            return
        await self._store.add(QuarantineRecord(
            worker.program_id, digest, dict(inputs), worker.revision_id, reason, message[:2000], count,
            datetime.now(UTC),
        ))
        await self.changed(worker.program_id)

    async def changed(self, program_id: str) -> None:
        """Announce that a program's quarantined set changed (here and on every other replica)."""

        await self._changes.publish(QUARANTINE_TOPIC, program_id)

    def forget(self, program_id: str) -> None:
        """Drop the cached quarantined set of a program (read again on its next call)."""

        self._epoch += 1
        self._hashes.pop(program_id, None)

    def forget_all(self) -> None:
        self._epoch += 1
        self._hashes.clear()


@dataclass
class _Known:
    """What this replica last read about a program: its active revision and its generation (the
    program's create time, which differs after a delete and a re-create of the same id)."""

    active_revision_id: str
    generation: datetime
    checked_at: float


class ProgramWorkers:
    """The registry of loaded program revisions.

    Freshness: what is known about a program (active revision, whether it still exists) is dropped
    when the change feed announces a change of it, from this replica or another, and is read again
    from the store at least every ``refresh_s`` seconds in any case (the polling fallback, which bounds
    staleness when notifications are off or their connection is down). A loaded revision whose
    program was deleted, or deleted and created again, is never run: it is dropped as soon as that is
    known, and every call checks the worker against the program's generation.
    """

    def __init__(self, programs: Programs, quarantine: Quarantine, *, refresh_s: float = 1.0) -> None:
        self._programs = programs
        self.quarantine = quarantine
        self._refresh_s = refresh_s
        self._workers: dict[tuple[str, str], ProgramWorker] = {}
        self._known: dict[str, _Known] = {}
        self._epoch = 0  # bumped by every invalidation: a read begun before it is not cached
        self._reads: SharedReads[str, _Known] = SharedReads()
        programs.changes.subscribe(self._on_change)

    def workers(self) -> list[ProgramWorker]:
        return sorted(self._workers.values(), key=lambda w: (w.program_id, w.revision_id))

    def _on_change(self, topic: str, key: str) -> None:
        if topic == PROGRAM_TOPIC:
            self.invalidate(key)
        elif topic == QUARANTINE_TOPIC:
            self.quarantine.forget(key)
        elif topic == EVERYTHING:
            self._epoch += 1
            self._known.clear()
            self.quarantine.forget_all()

    def invalidate(self, program_id: str) -> None:
        """Forget what is cached about a program (read again from the store on its next call)."""

        self._epoch += 1
        self._known.pop(program_id, None)
        self.quarantine.forget(program_id)

    def _drop_workers(self, program_id: str, keep: datetime | None = None) -> None:
        for key in [k for k, w in self._workers.items() if k[0] == program_id and w.generation != keep]:
            del self._workers[key]

    async def _read(self, program_id: str) -> _Known:
        known = self._known.get(program_id)
        if known is not None and time.monotonic() - known.checked_at < self._refresh_s:
            return known
        return await self._reads.read(program_id, self._epoch, lambda: self._read_store(program_id))

    async def _read_store(self, program_id: str) -> _Known:
        epoch = self._epoch
        try:
            program = await self._programs.get(program_id)
        except NotFound:
            self._known.pop(program_id, None)
            self._drop_workers(program_id)
            raise
        record = program.record
        known = _Known(record.revision_id, record.create_time, time.monotonic())
        self._drop_workers(program_id, keep=known.generation)
        if epoch == self._epoch:
            self._known[program_id] = known
        self._load(program)
        return known

    async def get(self, program_id: str, revision_id: str | None) -> ProgramWorker:
        known = await self._read(program_id)
        revision_id = revision_id or known.active_revision_id
        worker = self._workers.pop((program_id, revision_id), None)
        if worker is not None and worker.generation == known.generation:
            self._workers[(program_id, revision_id)] = worker  # most recently used last
            return worker
        program = await self._programs.get(program_id, revision_id)
        if program.record.create_time != known.generation:  # re-created while we read: read afresh
            self.invalidate(program_id)
            return await self.get(program_id, revision_id)
        return self._load(program)

    def _load(self, program: Program) -> ProgramWorker:
        record = program.record
        key = (record.program_id, record.revision_id)
        worker = self._workers.get(key)
        if worker is None or worker.generation != record.create_time:
            node = build_module(program.module, "program.module")
            worker = ProgramWorker(key[0], key[1], node, datetime.now(UTC), generation=record.create_time)
            self._workers[key] = worker
            while len(self._workers) > MAX_WORKERS:
                self._workers.pop(next(iter(self._workers)))
        return worker

    async def run(self, worker: ProgramWorker, inputs: Mapping[str, Any], deadline: Deadline | None,
                  call: Callable[[Node], Awaitable[Prediction]]) -> Prediction:
        """Run ``call`` on the worker's tree with metrics and quarantine."""

        digest = await self.quarantine.quarantined(worker.program_id, inputs)
        if digest is not None:
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
                await asyncio.shield(self.quarantine.failed(worker, inputs, reason, message))
            raise
        metrics.observe(time.perf_counter() - started)
        for usage in prediction.usage:
            metrics.prompt_tokens += usage.usage.prompt_tokens
            metrics.completion_tokens += usage.usage.completion_tokens
        return prediction

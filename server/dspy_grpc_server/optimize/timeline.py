"""When a job's LM calls ran, grouped by the algorithm's dependency levels: what bench-optimize
compares with the critical-path bound.

An optimizer names its levels (``timeline.level("step 1: trajectories", after=("step 0: ...",))``)
and runs each level's work inside it; every LM call the journal really makes (not replayed, not
shared) is counted in the level of the task that made it (a context variable, so concurrent
levels keep their own). ``after`` names the levels whose results a level needs: the longest chain
of ``ceil(calls / concurrency)`` rounds through them is the least time any implementation making
the same calls could take. At the end of a job the summary is logged at INFO by
``dspy_grpc_server.optimize.timeline`` as one JSON line.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

log = logging.getLogger("dspy_grpc_server.optimize.timeline")

#: Levels listed one by one in the log line (a long GEPA run has thousands; the totals cover all).
MAX_LISTED_LEVELS = 200


@dataclass
class Level:
    name: str
    after: tuple[str, ...]
    calls: int = 0
    first_start: float = math.inf
    last_end: float = 0.0
    busy_s: float = 0.0
    #: Time spent journaling the answers (the caller waits for it).
    saving_s: float = 0.0


_CURRENT: ContextVar[Level | None] = ContextVar("optimize_level", default=None)


def note_call(started: float, answered: float, saved: float) -> None:
    """Count one LM call really made (asked at ``started``, answered, then journaled), in the level of
    the running task (if any)."""

    level = _CURRENT.get()
    if level is not None:
        level.calls += 1
        level.first_start = min(level.first_start, started)
        level.last_end = max(level.last_end, answered)
        level.busy_s += answered - started
        level.saving_s += saved - answered


def now() -> float:
    return time.monotonic()


@dataclass
class Timeline:
    levels: dict[str, Level] = field(default_factory=dict)
    started: float = field(default_factory=now)

    def declare(self, name: str, after: Sequence[str] = ()) -> Level:
        level = self.levels.get(name)
        if level is None:
            level = self.levels[name] = Level(name, tuple(a for a in after if a))
        return level

    @contextmanager
    def level(self, name: str, after: Sequence[str] = ()) -> Iterator[Level]:
        """Calls made inside (by this task and the tasks it starts) count in level ``name``."""

        token = _CURRENT.set(self.declare(name, after))
        try:
            yield self.levels[name]
        finally:
            _CURRENT.reset(token)

    def bound_rounds(self, concurrency: int) -> int:
        """Rounds of LM latency on the longest dependency chain (each level ``ceil(calls / concurrency)``)."""

        longest: dict[str, int] = {}
        for name, level in self.levels.items():  # declared in an order where ``after`` comes first
            before = max((longest.get(a, 0) for a in level.after), default=0)
            longest[name] = before + math.ceil(level.calls / max(1, concurrency))
        return max(longest.values(), default=0)

    def summary(self, concurrency: int) -> dict:
        """Totals over every level; the levels that made calls, the first ``MAX_LISTED_LEVELS`` of them."""

        made = [level for level in self.levels.values() if level.calls]
        return {
            "concurrency": concurrency,
            "wall_s": round(now() - self.started, 4),
            "calls": sum(level.calls for level in made),
            "bound_rounds": self.bound_rounds(concurrency),
            "busy_s": round(sum(level.busy_s for level in made), 4),
            "saving_s": round(sum(level.saving_s for level in made), 4),
            "level_count": len(made),
            "levels": [
                {"name": level.name, "after": list(level.after), "calls": level.calls,
                 "start_s": round(level.first_start - self.started, 4),
                 "end_s": round(level.last_end - self.started, 4),
                 "busy_s": round(level.busy_s, 4), "saving_s": round(level.saving_s, 4)}
                for level in made[:MAX_LISTED_LEVELS]
            ],
        }

    def log(self, job: str, concurrency: int) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info("timeline %s %s", job, json.dumps(self.summary(concurrency), separators=(",", ":")))

"""A job's progress: phase, LM calls done and planned, examples, best score, current candidate, ETA."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    phase: str = ""
    lm_calls_done: int = 0
    lm_calls_planned: int = 0
    examples_done: int = 0
    examples_total: int = 0
    best_score: float | None = None
    current_candidate: str = ""
    #: GEPA: metric calls used of the budget, the Pareto frontier's size, the parent being reflected on.
    metric_calls_used: int = 0
    metric_calls_budget: int = 0
    pareto_front_size: int = 0
    parent_candidate: str = ""
    #: Told after every change (the app layer persists and broadcasts, throttled).
    on_change: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)
    _started: float = field(default_factory=time.monotonic, repr=False, compare=False)
    _made: int = field(default=0, repr=False, compare=False)

    def update(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.on_change()

    def lm_call(self, replayed: bool) -> None:
        self.lm_calls_done += 1
        if not replayed:
            self._made += 1
        self.lm_calls_planned = max(self.lm_calls_planned, self.lm_calls_done)
        self.on_change()

    def resume_lm_calls(self, done: int) -> None:
        """Start from ``done`` LM calls finished by earlier runs of the job (its journal)."""

        self.lm_calls_done = done
        self.lm_calls_planned = max(self.lm_calls_planned, done)
        self.on_change()

    def example_done(self) -> None:
        self.examples_done += 1
        self.on_change()

    def offer_score(self, score: float) -> None:
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.on_change()

    def eta_s(self) -> float | None:
        """Seconds left at the pace of the LM calls made since this run of the job started."""

        elapsed = time.monotonic() - self._started
        if self._made == 0 or elapsed <= 0 or self.lm_calls_planned <= self.lm_calls_done:
            return None if self.lm_calls_planned > self.lm_calls_done else 0.0
        return (self.lm_calls_planned - self.lm_calls_done) / (self._made / elapsed)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phase": self.phase, "lm_calls_done": self.lm_calls_done, "lm_calls_planned": self.lm_calls_planned,
            "examples_done": self.examples_done, "examples_total": self.examples_total,
            "current_candidate": self.current_candidate,
        }
        if self.metric_calls_budget:
            out.update(metric_calls_used=self.metric_calls_used, metric_calls_budget=self.metric_calls_budget,
                       pareto_front_size=self.pareto_front_size, parent_candidate=self.parent_candidate)
        if self.best_score is not None:
            out["best_score"] = self.best_score
        eta = self.eta_s()
        if eta is not None:
            out["eta_s"] = eta
        return out

"""Per-request state shared by the predictors of one module run."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import DeadlineExceeded
from ..lm.deadline import Deadline
from ..lm.types import Usage
from .lm_resolver import LMResolver
from .prediction import AdapterFallback, ModelUsage, TraceStep


@dataclass
class RunContext:
    """Where predictors get their LMs and time budget, and where they record usage and trace."""

    lms: LMResolver
    deadline: Deadline | None = None
    include_trace: bool = False
    usage: dict[str, ModelUsage] = field(default_factory=dict)
    trace: list[TraceStep] = field(default_factory=list)
    adapter_fallbacks: list[AdapterFallback] = field(default_factory=list)

    def remaining(self) -> float | None:
        """Seconds left for the next awaited call; raises once the deadline has passed."""

        if self.deadline is None:
            return None
        if self.deadline.expired():
            raise DeadlineExceeded("the request's deadline passed", reason="DEADLINE_EXCEEDED")
        return self.deadline.remaining()

    def record_usage(self, model: str, usage: Usage) -> None:
        entry = self.usage.setdefault(model, ModelUsage(model))
        entry.usage = entry.usage + usage
        entry.calls += 1

    def record_step(self, step: TraceStep) -> None:
        if self.include_trace:
            self.trace.append(step)

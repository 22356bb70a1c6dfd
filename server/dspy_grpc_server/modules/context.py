"""Per-request state shared by the modules and predictors of one run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import DeadlineExceeded
from ..lm.deadline import Deadline
from ..lm.types import NO_OPTIONS, LMOptions, Usage
from .events import Event
from .lm_resolver import LMResolver
from .prediction import AdapterFallback, ModelUsage, TraceStep
from .retrieval import Retrievers
from .tools import ToolRunner

if TYPE_CHECKING:
    from ..core.example import Example
    from .spec import KNNFewShotSpec, ModuleSpec


class DemoBootstrapper(Protocol):
    """DSPy's BootstrapFewShot as KNNFewShot runs it on every call. The optimize layer implements it
    (the one bootstrap loop lives there) and the app layer hands it to the engine: modules never
    import optimize."""

    async def bootstrap(self, spec: KNNFewShotSpec, trainset: Sequence[Example], ctx: RunContext) -> ModuleSpec:
        """``spec.module`` with the demos BootstrapFewShot compiles from ``trainset`` (the teacher runs
        inside ``ctx``: its deadline, LMs and usage)."""


@dataclass
class RunContext:
    """Where predictors get their LMs, time budget and tools, and where they record usage, trace and
    events. :meth:`scoped` makes a child view (BestOfN's rollouts, Refine's hints) that shares the
    usage and events of its parent but may keep its own trace."""

    lms: LMResolver
    deadline: Deadline | None = None
    include_trace: bool = False
    usage: dict[str, ModelUsage] = field(default_factory=dict)
    trace: list[TraceStep] = field(default_factory=list)
    adapter_fallbacks: list[AdapterFallback] = field(default_factory=list)
    #: Receives streaming events (None: nobody listens, and LM calls are not streamed).
    emit: Callable[[Event], None] | None = None
    #: Runs caller-executed tools (InferenceService.Run); None when the caller offers none.
    tools: ToolRunner | None = None
    #: LM options forced on every call in this scope (BestOfN/Refine: rollout_id and temperature).
    option_overrides: LMOptions = NO_OPTIONS
    #: Refine's advice by full predictor name; when set, every predictor gets a ``hint_`` input.
    hints: Mapping[str, str] | None = None
    #: Compiles KNNFewShot's per-call demos (None: KNNFewShot programs cannot run).
    bootstrapper: DemoBootstrapper | None = None
    #: Searches corpora and ColBERTv2 servers for ``retrieve`` modules (None: they cannot run).
    retrievers: Retrievers | None = None

    def remaining(self) -> float | None:
        """Seconds left for the next awaited call; raises once the deadline has passed."""

        if self.deadline is None:
            return None
        if self.deadline.expired():
            raise DeadlineExceeded("the request's deadline passed", reason="DEADLINE_EXCEEDED")
        return self.deadline.remaining()

    @property
    def streaming(self) -> bool:
        return self.emit is not None

    def send(self, event: Event) -> None:
        if self.emit is not None:
            self.emit(event)

    def scoped(self, **changes: Any) -> RunContext:
        """A child view: usage, fallbacks and events are shared; ``trace`` too unless given."""

        return replace(self, **changes)

    def record_usage(self, model: str, usage: Usage) -> None:
        entry = self.usage.setdefault(model, ModelUsage(model))
        entry.usage = entry.usage + usage
        entry.calls += 1

    def record_step(self, step: TraceStep) -> None:
        if self.include_trace:
            self.trace.append(step)

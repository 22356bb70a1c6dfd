"""What every optimizer is given, and what it hands back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ..core.example import Example
from ..modules.spec import ModuleSpec
from .evaluate import DEFAULT_MAX_ERRORS, Evaluation, evaluate
from ..modules.metrics import Metric
from .runner import ProgramRunner

Examples = Sequence[tuple[int, Example]]


@dataclass(frozen=True)
class Candidate:
    """A candidate program an optimizer evaluated (``score`` 0-100, DSPy's scale)."""

    index: int
    label: str
    module: ModuleSpec
    score: float | None = None
    #: Lineage (GEPA): the candidates it came from, the predictors it changed, its per-example scores.
    parents: tuple[int, ...] = ()
    changed_predictors: tuple[str, ...] = ()
    instance_scores: tuple[float, ...] = ()


@dataclass(frozen=True)
class Outcome:
    module: ModuleSpec
    best_score: float | None = None
    best_candidate: int = 0


async def _ignore(_candidate: Candidate) -> None:
    return None


@dataclass
class OptimizeContext:
    runner: ProgramRunner
    #: None only for KNNFewShot's per-call bootstrap (DSPy's ``metric=None``: every run counts).
    metric: Metric | None
    trainset: Examples
    #: None: the optimizer picks its valset as DSPy does.
    valset: Examples | None = None
    max_errors: int = DEFAULT_MAX_ERRORS
    #: Told about each evaluated candidate, in proposal order (persisted by the app layer).
    record_candidate: Callable[[Candidate], Awaitable[None]] = field(default=_ignore)

    @property
    def progress(self):
        return self.runner.progress

    async def evaluate(self, module: ModuleSpec, examples: Examples, *, priority: int = 0) -> Evaluation:
        """``priority``: lower numbers get the job's slots first (see ``ProgramRunner.slot``)."""

        return await evaluate(self.runner, module, examples, self.metric, max_errors=self.max_errors,
                              priority=priority)


def examples_only(examples: Examples) -> list[Example]:
    return [example for _, example in examples]

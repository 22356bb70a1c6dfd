"""What evaluation and optimization jobs share: checking their inputs at create time, and building
the per-job engine (journaled LMs) and program runner when they run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core import bounds
from ..core.bounds import Limits, Range
from ..core.errors import invalid
from ..core.example import Example
from ..modules.engine import Engine
from ..modules.spec import LMChoice, ModuleSpec
from ..optimize import program as program_view
from ..optimize.evaluate import DEFAULT_MAX_ERRORS
from ..optimize.journal import JournaledRegistry, LMJournal
from ..optimize.knn_few_shot import ServingBootstrapper
from ..optimize.live_traffic import LiveTraffic
from ..modules.metrics import Metric, validate_metric
from ..optimize.progress import Progress
from ..optimize.runner import ProgramRunner

#: DSPy's default num_threads.
DEFAULT_NUM_THREADS = 8


def num_threads(value: int, path: str, limits: Limits) -> int:
    """0 means DSPy's default; at most ``limits.max_num_threads``."""

    Range(0, limits.max_num_threads).check(value, path)
    return value or DEFAULT_NUM_THREADS


def max_errors(value: int | None, path: str) -> int:
    if value is None:
        return DEFAULT_MAX_ERRORS
    Range(1, bounds.MAX_ERRORS.high).check(value, path)
    return value


def common_keys(examples: Sequence[tuple[int, Example]]) -> set[str]:
    """The fields every example has (what a metric may rely on)."""

    keys: set[str] | None = None
    for _, example in examples:
        keys = set(example.data) if keys is None else keys & set(example.data)
    return keys or set()


def check_metric(metric: Metric, module: ModuleSpec, examples: Sequence[tuple[int, Example]], path: str) -> None:
    validate_metric(
        metric, outputs=program_view.output_fields(module), predictor_outputs=program_view.predictor_outputs(module),
        example_keys=common_keys(examples), path=path,
    )


def check_inputs(module: ModuleSpec, examples: Sequence[tuple[int, Example]], path: str) -> None:
    """Every input field of the program must be an input key of every example."""

    needed = program_view.required_inputs(module)
    for index, example in examples:
        missing = [name for name in needed if name not in example.input_keys]
        if missing:
            raise invalid(path, f"example {index} lacks the program's input field(s) {', '.join(missing)}")


def build_runner(registry: Any, default_model: str, journal: LMJournal, progress: Progress, *,
                 task_lm: LMChoice, teacher_lm: LMChoice | None = None, prompt_lm: LMChoice | None = None,
                 threads: int = DEFAULT_NUM_THREADS, program: ModuleSpec | None = None,
                 retrievers: Any = None, live: LiveTraffic | None = None) -> ProgramRunner:
    journaled = JournaledRegistry(registry, journal)
    engine = Engine(journaled, default_model=default_model, bootstrapper=ServingBootstrapper(), retrievers=retrievers)
    return ProgramRunner(engine, task_lm=task_lm, teacher_lm=teacher_lm, prompt_lm=prompt_lm, num_threads=threads,
                         progress=progress, registry=journaled, default_model=default_model,
                         program_lm=program_view.own_lm(program) if program is not None else None, live=live)

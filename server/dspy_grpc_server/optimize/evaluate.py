"""DSPy's ``Evaluate``: run a program over examples in parallel and average the metric.

Examples run ``num_threads`` at a time. A failed run (or metric) scores ``failure_score``; once
``max_errors`` runs have failed the evaluation stops with ``TOO_MANY_ERRORS``. The summary score is
DSPy's: ``round(100 * sum(scores) / n, 2)``. Results already known (a resumed job) are not rerun.
``priority`` places the examples among the job's other work waiting for a slot (lower goes first).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import telemetry
from ..core.errors import DspyGrpcError, FailedPrecondition
from ..core.example import Example
from ..modules.spec import LMChoice, ModuleSpec
from ..modules.metrics import Metric
from .runner import ProgramRunner

#: DSPy's default ``max_errors`` (dspy.settings.max_errors).
DEFAULT_MAX_ERRORS = 10


@dataclass(frozen=True)
class ExampleResult:
    index: int
    outputs: Mapping[str, Any] = field(default_factory=dict)
    score: float = 0.0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"outputs": dict(self.outputs), "score": self.score, "error": self.error}

    @classmethod
    def from_dict(cls, index: int, data: Mapping[str, Any]) -> ExampleResult:
        return cls(index, dict(data.get("outputs", {})), float(data.get("score", 0.0)), data.get("error", ""))


@dataclass(frozen=True)
class Evaluation:
    score: float
    results: tuple[ExampleResult, ...]

    @property
    def subscores(self) -> list[float]:
        return [r.score for r in self.results]


def summary_score(scores: Sequence[float]) -> float:
    return round(100 * sum(scores) / len(scores), 2) if scores else 0.0


def describe_error(error: BaseException) -> str:
    if isinstance(error, DspyGrpcError):
        return f"{error.reason}: {error.message}"
    return f"{type(error).__name__}: {error}"


def too_many_errors(count: int, last: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"stopped after {count} failed program runs (max_errors); last error: {last}",
        reason="TOO_MANY_ERRORS", metadata={"errors": str(count)},
    )


#: Tasks started between two yields to the event loop (starting thousands at once would hold it up).
_START_BATCH = 200


async def _run_all(calls: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run every call concurrently (as gather would), yielding to the event loop while starting them;
    if this is cancelled or one call fails, the others are cancelled and awaited."""

    tasks: list[asyncio.Future[None]] = []
    try:
        for count, call in enumerate(calls, 1):
            tasks.append(asyncio.ensure_future(call()))
            if count % _START_BATCH == 0:
                await asyncio.sleep(0)
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def evaluate(
    runner: ProgramRunner,
    module: ModuleSpec,
    examples: Sequence[tuple[int, Example]],
    metric: Metric,
    *,
    max_errors: int = DEFAULT_MAX_ERRORS,
    failure_score: float = 0.0,
    lm: LMChoice | None = None,
    known: Mapping[int, ExampleResult] | None = None,
    on_result: Callable[[ExampleResult], Awaitable[None]] | None = None,
    priority: int = 0,
) -> Evaluation:
    known = dict(known or {})
    results: dict[int, ExampleResult] = {i: r for i, r in known.items()}
    errors = sum(1 for r in results.values() if r.error)
    if errors >= max_errors:
        raise too_many_errors(errors, next(r.error for r in reversed(list(results.values())) if r.error))
    stop = asyncio.Event()

    async def one(index: int, example: Example) -> None:
        nonlocal errors
        async with runner.slot(priority):
            if stop.is_set():
                return
            with telemetry.evaluation_example(index) as span:
                try:
                    run = await runner.run(module, example, lm=lm)
                    value = await runner.score(metric, example, run)
                    result = ExampleResult(index, run.outputs, float(value))
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception as error:  # noqa: BLE001 - a failed example is data, as in DSPy
                    result = ExampleResult(index, {}, failure_score, describe_error(error))
                    telemetry.mark_failed(span, telemetry.error_type(error))
                    errors += 1
                    if errors >= max_errors:
                        stop.set()
                telemetry.record_score(span, result.score)
        results[index] = result
        runner.progress.example_done()
        if on_result is not None:
            await on_result(result)

    pending = [(i, e) for i, e in examples if i not in known]
    await _run_all([functools.partial(one, i, e) for i, e in pending])
    if errors >= max_errors:
        raise too_many_errors(errors, next(r.error for r in results.values() if r.error))
    ordered = tuple(results[i] for i, _ in examples)
    return Evaluation(summary_score([r.score for r in ordered]), ordered)

"""DSPy's ``BootstrapFewShot``: demos from the teacher's successful traces, topped up with labels.

The teacher (the student with ``max_labeled_demos`` labeled demos, unless a teacher is given) runs
on the training examples in order; a run the metric accepts (bootstrapping mode) contributes its
trace -- each predictor's inputs and outputs -- as an augmented demo. DSPy stops at
``max_bootstrapped_demos`` accepted examples and tries each example up to ``max_rounds`` times
(later rounds at temperature 1.0 with a fresh rollout id). The examples that were not bootstrapped,
shuffled with ``random.Random(0)``, fill each predictor up to ``max_labeled_demos``.

DSPy runs the teacher one example after another. Here the teacher runs ahead on as many of the next
examples as demos are still missing (at most ``num_threads``), and the attempts are accepted strictly
in DSPy's order: the result is the same, in a fraction of the wall time. Attempts that turn out not
to be needed are cancelled.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.example import Example
from ..modules.spec import ModuleSpec
from . import program
from .context import OptimizeContext, Outcome, examples_only
from .evaluate import describe_error, too_many_errors
from .labeled_few_shot import labeled_few_shot
from .runner import with_rollout


@dataclass(frozen=True)
class BootstrapConfig:
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    metric_threshold: float | None = None


@dataclass(frozen=True)
class _Attempt:
    success: bool
    traces: dict[str, list[Example]]
    error: str = ""


def _pick_one(demos: list[Example]) -> list[Example]:
    """DSPy keeps one of several traces of the same predictor in one run: 50/50 the last one or one
    of the others, with a generator seeded by the demos (DSPy hashes the objects; we hash their JSON)."""

    if len(demos) <= 1:
        return demos
    digest = hashlib.sha256(json.dumps([dict(d.data) for d in demos], sort_keys=True, default=str).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return [rng.choice(demos[:-1]) if rng.random() < 0.5 else demos[-1]]


class BootstrapFewShot:
    def __init__(self, ctx: OptimizeContext, config: BootstrapConfig) -> None:
        self.ctx = ctx
        self.config = config

    async def compile(self, student: ModuleSpec, trainset: Sequence[Example], *, teacher: ModuleSpec | None = None,
                      max_bootstraps: int | None = None) -> ModuleSpec:
        config = self.config
        limit = max_bootstraps or config.max_bootstrapped_demos
        student_copy = program.reset(student)
        teacher_module = teacher if teacher is not None else student
        if self.ctx.runner.teacher_override is not None:
            teacher_module = program.with_lm(teacher_module, self.ctx.runner.teacher_override)
        if config.max_labeled_demos:
            teacher_module = labeled_few_shot(teacher_module, trainset, k=config.max_labeled_demos)
        names = [view.name for view in program.predictors(student_copy)]
        traces: dict[str, list[Example]] = {name: [] for name in names}
        bootstrapped: set[int] = set()
        errors = 0
        attempts: dict[tuple[int, int], asyncio.Task[_Attempt]] = {}
        window = max(1, self.ctx.runner.num_threads)

        def launch(index: int, round_index: int) -> asyncio.Task[_Attempt]:
            key = (index, round_index)
            if key not in attempts:
                attempts[key] = asyncio.ensure_future(self._attempt(teacher_module, trainset[index], round_index))
            return attempts[key]

        try:
            for index in range(len(trainset)):
                if len(bootstrapped) >= limit:
                    break
                # Run ahead only as far as the demos still missing could take us: no LM call is
                # spent on examples DSPy would not reach when every attempt succeeds.
                ahead = min(window, limit - len(bootstrapped))
                for later in range(index, min(len(trainset), index + ahead)):
                    launch(later, 0)
                for round_index in range(config.max_rounds):
                    attempt = await launch(index, round_index)
                    if attempt.error:
                        errors += 1
                        if errors >= self.ctx.max_errors:
                            raise too_many_errors(errors, attempt.error)
                    if attempt.success:
                        bootstrapped.add(index)
                        for name, demos in attempt.traces.items():
                            if name in traces:
                                traces[name].extend(_pick_one(demos))
                        break
        finally:
            for task in attempts.values():
                task.cancel()
            await asyncio.gather(*attempts.values(), return_exceptions=True)

        validation = [example for i, example in enumerate(trainset) if i not in bootstrapped]
        random.Random(0).shuffle(validation)
        rng = random.Random(0)
        demos: dict[str, tuple[Example, ...]] = {}
        for name in names:
            augmented = traces[name][: config.max_bootstrapped_demos]
            size = max(0, min(config.max_labeled_demos - len(augmented), len(validation)))
            demos[name] = tuple(augmented) + tuple(rng.sample(validation, size))
        return program.with_demos(student_copy, demos)

    async def _attempt(self, teacher: ModuleSpec, example: Example, round_index: int) -> _Attempt:
        runner = self.ctx.runner
        # The example itself is not among the teacher's demos while it is being bootstrapped.
        without_example = {
            view.name: tuple(d for d in view.demos if dict(d.data) != dict(example.data))
            for view in program.predictors(teacher)
        }
        module = program.with_demos(teacher, without_example)
        lm = runner.teacher_lm if round_index == 0 else with_rollout(runner.teacher_lm, round_index, 1.0)
        async with runner.slot():
            try:
                run = await runner.run(module, example, lm=lm)
                # Without a metric (KNNFewShot's per-call bootstrap) every completed run is accepted.
                value = 1.0 if self.ctx.metric is None else await runner.score(
                    self.ctx.metric, example, run, bootstrapping=True)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as error:  # noqa: BLE001 - DSPy counts it and moves on
                return _Attempt(False, {}, describe_error(error))
        threshold = self.config.metric_threshold
        success = value >= threshold if threshold else bool(value)
        if not success:
            return _Attempt(False, {})
        traces: dict[str, list[Example]] = {}
        for step in run.trace:
            if step.is_retrieval:  # a retrieve module's search: no predictor to give a demo
                continue
            traces.setdefault(step.predictor, []).append(
                Example({**step.inputs, **step.outputs}, augmented=True)
            )
        return _Attempt(True, traces)


def planned_calls(trainset_size: int, config: BootstrapConfig) -> int:
    """A rough LM-call estimate for progress: one teacher run per example until enough succeed."""

    return min(trainset_size, max(1, config.max_bootstrapped_demos) * 2)


async def run_bootstrap_few_shot(ctx: OptimizeContext, student: ModuleSpec, config: BootstrapConfig) -> Outcome:
    ctx.progress.update(phase="bootstrap", lm_calls_planned=planned_calls(len(ctx.trainset), config))
    compiled = await BootstrapFewShot(ctx, config).compile(student, examples_only(ctx.trainset))
    return Outcome(compiled)

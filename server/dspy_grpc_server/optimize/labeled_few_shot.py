"""DSPy's ``LabeledFewShot``: up to ``k`` training examples as every predictor's demos."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.example import Example
from ..modules.spec import ModuleSpec
from . import program
from .context import OptimizeContext, Outcome, examples_only

DEFAULT_K = 16


@dataclass(frozen=True)
class LabeledFewShotConfig:
    k: int = DEFAULT_K
    sample: bool = True


def labeled_few_shot(student: ModuleSpec, trainset: Sequence[Example], *, k: int = DEFAULT_K,
                     sample: bool = True) -> ModuleSpec:
    """Demos for each predictor: ``random.Random(0).sample(trainset, k)`` (one generator for all
    predictors, in order), or the first ``k`` without sampling. An empty trainset gives no demos."""

    module = program.reset(student)
    if not trainset:
        return module
    rng = random.Random(0)
    demos = {}
    for view in program.predictors(module):
        count = min(k, len(trainset))
        demos[view.name] = tuple(rng.sample(list(trainset), count) if sample else list(trainset)[:count])
    return program.with_demos(module, demos)


async def run_labeled_few_shot(ctx: OptimizeContext, student: ModuleSpec, config: LabeledFewShotConfig) -> Outcome:
    ctx.progress.update(phase="labeled", lm_calls_planned=0)
    return Outcome(labeled_few_shot(student, examples_only(ctx.trainset), k=config.k, sample=config.sample))

"""DSPy's ``BootstrapFewShotWithRandomSearch``.

Candidates, in DSPy's order: seed -3 the zero-shot student, -2 labeled demos only, -1 an
unshuffled bootstrap, then for seeds 0..n-1 a bootstrap on the trainset shuffled with
``random.Random(seed)`` keeping ``random.Random(seed).randint(1, max_bootstrapped_demos)`` demos.
Each is scored on the valset (the trainset unless one is given); the first candidate with the
highest score wins, and ``stop_at_score`` ends the search early.

DSPy builds and scores the candidates one after another. Here they are built and scored at the same
time (sharing the job's ``num_threads`` slots) and then taken in DSPy's order, so the choice is the
same; candidates after an early stop are cancelled.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from ..modules.spec import ModuleSpec
from . import program
from .bootstrap import BootstrapConfig, BootstrapFewShot
from .context import Candidate, OptimizeContext, Outcome, examples_only
from .labeled_few_shot import labeled_few_shot


@dataclass(frozen=True)
class RandomSearchConfig:
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    metric_threshold: float | None = None
    num_candidate_programs: int = 16
    stop_at_score: float | None = None
    labeled_sample: bool = True


def seed_label(seed: int) -> str:
    return {-3: "zero-shot", -2: "labeled", -1: "bootstrap (unshuffled)"}.get(seed, f"seed {seed}")


class RandomSearch:
    def __init__(self, ctx: OptimizeContext, config: RandomSearchConfig) -> None:
        self.ctx = ctx
        self.config = config

    async def _candidate(self, student: ModuleSpec, seed: int) -> ModuleSpec:
        config, trainset = self.config, examples_only(self.ctx.trainset)
        bootstrap = BootstrapConfig(
            max_bootstrapped_demos=config.max_bootstrapped_demos, max_labeled_demos=config.max_labeled_demos,
            max_rounds=config.max_rounds, metric_threshold=config.metric_threshold,
        )
        if seed == -3:
            return program.reset(student)
        if seed == -2:
            return labeled_few_shot(student, trainset, k=config.max_labeled_demos, sample=config.labeled_sample)
        if seed == -1:
            return await BootstrapFewShot(self.ctx, bootstrap).compile(student, trainset)
        shuffled = list(trainset)
        random.Random(seed).shuffle(shuffled)
        size = random.Random(seed).randint(1, config.max_bootstrapped_demos)
        sized = BootstrapConfig(size, config.max_labeled_demos, config.max_rounds, config.metric_threshold)
        return await BootstrapFewShot(self.ctx, sized).compile(student, shuffled)

    async def _scored(self, student: ModuleSpec, seed: int) -> tuple[ModuleSpec, float]:
        module = await self._candidate(student, seed)
        valset = self.ctx.valset if self.ctx.valset is not None else self.ctx.trainset
        evaluation = await self.ctx.evaluate(module, valset)
        self.ctx.progress.offer_score(evaluation.score)
        return module, evaluation.score

    async def compile(self, student: ModuleSpec) -> Outcome:
        seeds = list(range(-3, self.config.num_candidate_programs))
        tasks = [asyncio.ensure_future(self._scored(student, seed)) for seed in seeds]
        best: Candidate | None = None
        try:
            for index, (seed, task) in enumerate(zip(seeds, tasks, strict=True)):
                self.ctx.progress.update(current_candidate=seed_label(seed))
                module, score = await task
                candidate = Candidate(index, seed_label(seed), module, score)
                await self.ctx.record_candidate(candidate)
                if best is None or score > (best.score or 0.0):
                    best = candidate
                if self.config.stop_at_score is not None and score >= self.config.stop_at_score:
                    break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert best is not None
        return Outcome(best.module, best.score, best.index)


def planned_calls(trainset_size: int, valset_size: int, config: RandomSearchConfig) -> int:
    candidates = config.num_candidate_programs + 3
    bootstraps = config.num_candidate_programs + 1
    per_bootstrap = min(trainset_size, config.max_bootstrapped_demos * 2)
    return candidates * valset_size + bootstraps * per_bootstrap


async def run_random_search(ctx: OptimizeContext, student: ModuleSpec, config: RandomSearchConfig) -> Outcome:
    valset = ctx.valset if ctx.valset is not None else ctx.trainset
    ctx.progress.update(phase="search", lm_calls_planned=planned_calls(len(ctx.trainset), len(valset), config),
                        examples_total=(config.num_candidate_programs + 3) * len(valset))
    return await RandomSearch(ctx, config).compile(student)

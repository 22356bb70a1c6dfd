"""DSPy's ``Ensemble`` teleprompter: stored programs combined into one ensemble module.

DSPy's ``Ensemble(reduce_fn, size).compile(programs)`` needs no data. The job resolves the program
revisions when it is created (so the result does not depend on later changes to those programs) and
writes an :class:`~..modules.spec.EnsembleSpec` holding their modules. Given a dataset and a metric
it also scores each program and the ensemble on the valset, so that the gain is visible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ..modules.spec import EnsembleSpec, ModuleSpec
from .context import Candidate, OptimizeContext, Outcome


@dataclass(frozen=True)
class EnsembleConfig:
    #: (program id, revision id or None for the active revision), as the request named them.
    programs: tuple[tuple[str, str | None], ...] = ()
    reduce: str = "none"
    size: int = 0
    seed: int = 0
    field: str = ""

    def module(self, programs: Sequence[ModuleSpec]) -> EnsembleSpec:
        return EnsembleSpec(tuple(programs), self.reduce, self.size, self.seed, self.field)


async def run_ensemble(ctx: OptimizeContext, ensemble: ModuleSpec, config: EnsembleConfig) -> Outcome:
    """``ensemble`` is the module built when the job was created; with examples, score its programs
    (candidates "programs[i]") and then the ensemble itself (the last candidate, the result)."""

    assert isinstance(ensemble, EnsembleSpec)
    if not ctx.trainset:
        ctx.progress.update(phase="ensemble", lm_calls_planned=0)
        return Outcome(ensemble)
    valset = ctx.valset if ctx.valset is not None else ctx.trainset
    members = list(ensemble.programs)
    runs_per_example = len(members) + (config.size or len(members))
    ctx.progress.update(phase="evaluate", examples_total=(len(members) + 1) * len(valset),
                        lm_calls_planned=runs_per_example * len(valset))
    evaluations = await asyncio.gather(*(ctx.evaluate(member, valset) for member in members))
    for index, (member, evaluation) in enumerate(zip(members, evaluations, strict=True)):
        await ctx.record_candidate(Candidate(index, f"programs[{index}]", member, evaluation.score))
        ctx.progress.offer_score(evaluation.score)
    ctx.progress.update(current_candidate="ensemble")
    combined = await ctx.evaluate(ensemble, valset)
    await ctx.record_candidate(Candidate(len(members), "ensemble", ensemble, combined.score))
    ctx.progress.offer_score(combined.score)
    return Outcome(ensemble, combined.score, len(members))

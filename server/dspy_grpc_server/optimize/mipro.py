"""DSPy's ``MIPROv2``: bootstrapped demo sets x proposed instructions, searched with optuna's TPE.

1. Demo candidates: DSPy's ``create_n_fewshot_demo_sets`` (zero-shot, labeled, unshuffled and
   shuffled bootstraps), drawn from one ``random.Random(seed)`` shared with the rest of the run.
2. Instruction candidates from the grounded proposer (:mod:`.proposer`).
3. The default program is scored on the whole valset; then ``num_trials`` trials, each choosing an
   instruction and a demo set per predictor with optuna's multivariate TPE sampler (seeded), scored on
   a minibatch of the valset; every ``minibatch_full_eval_steps`` trials (and at the end) the
   combination with the best mean minibatch score is scored on the whole valset. The best full score
   wins. ``auto`` ("light", "medium", "heavy") picks the budgets as DSPy does.

Trials run one after another (each depends on the sampler's view of the previous ones), as in DSPy;
the examples of each evaluation, the demo-set bootstraps and the instruction proposals run at once,
and the trainset summary and the default program's score run alongside the bootstraps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..core.errors import DspyGrpcError, invalid
from ..core.example import Example
from ..modules.spec import ModuleSpec
from . import program
from .bootstrap import BootstrapConfig, BootstrapFewShot
from .context import Candidate, Examples, OptimizeContext, Outcome, examples_only
from .labeled_few_shot import labeled_few_shot
from .program import PredictorUpdate
from .proposer import ProposerConfig, dataset_summary_or_none, propose_instructions

AUTO_RUN_SETTINGS = {"light": {"n": 6, "val_size": 100}, "medium": {"n": 12, "val_size": 300},
                     "heavy": {"n": 18, "val_size": 1000}}
MIN_MINIBATCH_SIZE = 50
BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT = 3
LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT = 0


@dataclass(frozen=True)
class MiproConfig:
    auto: str | None = "light"
    num_candidates: int | None = None
    num_trials: int | None = None
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 4
    minibatch: bool = True
    minibatch_size: int = 35
    minibatch_full_eval_steps: int = 5
    init_temperature: float = 1.0
    seed: int = 9
    metric_threshold: float | None = None
    max_rounds: int = 1
    program_aware_proposer: bool = True
    data_aware_proposer: bool = True
    tip_aware_proposer: bool = True
    fewshot_aware_proposer: bool = True
    view_data_batch_size: int = 10

    @property
    def zeroshot(self) -> bool:
        return self.max_bootstrapped_demos == 0 and self.max_labeled_demos == 0


def split_sets(trainset: Examples, valset: Examples | None) -> tuple[list, list]:
    """DSPy's default valset: the last 80% of the trainset (at most 1000 examples)."""

    if valset is not None:
        return list(trainset), list(valset)
    size = min(1000, max(1, int(len(trainset) * 0.80)))
    cutoff = len(trainset) - size
    return list(trainset[:cutoff]), list(trainset[cutoff:])


def num_trials_for(predictors: int, zeroshot: bool, candidates: int) -> int:
    variables = predictors * (1 if zeroshot else 2)
    return int(max(2 * variables * math.log2(candidates), 1.5 * candidates))


def validate(config: MiproConfig, predictors: int, trainset_size: int, valset_size: int | None, path: str) -> None:
    """DSPy's checks, made at create time: budgets that cannot run one trial are rejected."""

    if config.auto is not None and config.auto not in AUTO_RUN_SETTINGS:
        raise invalid(f"{path}.auto", "must be light, medium or heavy (or empty with num_candidates and num_trials)")
    if config.auto is not None and (config.num_candidates is not None or config.num_trials is not None):
        raise invalid(f"{path}.auto", "cannot be combined with num_candidates or num_trials (auto sets both)")
    if config.auto is None:
        if config.num_candidates is None or config.num_trials is None:
            raise invalid(f"{path}.num_trials", "num_candidates and num_trials are required without auto")
        if config.num_candidates < 1:
            raise invalid(f"{path}.num_candidates", "must be at least 1")
        if config.num_trials < 1:
            raise invalid(f"{path}.num_trials", "must be at least 1: a budget too small to run one trial")
    if config.minibatch_full_eval_steps < 1:
        raise invalid(f"{path}.minibatch_full_eval_steps", "must be at least 1")
    if config.minibatch_size < 1:
        raise invalid(f"{path}.minibatch_size", "must be at least 1")
    if valset_size is None:
        if trainset_size < 2:
            raise invalid("optimization.dataset", "MIPROv2 needs at least 2 examples when no split gives a valset")
        valset_size = min(1000, max(1, int(trainset_size * 0.80)))
    minibatch = config.minibatch
    if config.auto is not None:
        valset_size = min(valset_size, AUTO_RUN_SETTINGS[config.auto]["val_size"])
        minibatch = valset_size > MIN_MINIBATCH_SIZE
    if minibatch and config.minibatch_size > valset_size:
        raise invalid(f"{path}.minibatch_size", f"cannot exceed the valset size ({valset_size})")


class Mipro:
    def __init__(self, ctx: OptimizeContext, config: MiproConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.rng = random.Random(config.seed)
        self._next_index = 0

    async def _demo_candidates(self, student: ModuleSpec, trainset: list[Example], count: int
                               ) -> dict[str, list[tuple[Example, ...]]]:
        """DSPy's ``create_n_fewshot_demo_sets``: shuffles drawn in order from the shared rng, then all
        the bootstraps run at once."""

        config = self.config
        labeled = LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT if config.zeroshot else config.max_labeled_demos
        boot = BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT if config.zeroshot else config.max_bootstrapped_demos
        plans: list[tuple[str, list[Example], int]] = []
        for seed in range(-3, count - 3):
            if seed == -3:
                plans.append(("zero-shot", trainset, 0))
            elif seed == -2 and labeled > 0:
                plans.append(("labeled", trainset, 0))
            elif seed == -1:
                plans.append(("bootstrap", trainset, boot))
            else:
                shuffled = list(trainset)
                self.rng.shuffle(shuffled)
                plans.append(("bootstrap", shuffled, self.rng.randint(1, boot)))

        async def build(kind: str, examples: list[Example], size: int) -> ModuleSpec:
            if kind == "zero-shot":
                return program.reset(student)
            if kind == "labeled":
                return labeled_few_shot(student, examples, k=labeled)
            bootstrap = BootstrapConfig(size, labeled, config.max_rounds, config.metric_threshold)
            return await BootstrapFewShot(self.ctx, bootstrap).compile(student, examples)

        modules = await asyncio.gather(*(build(*plan) for plan in plans))
        return {view.name: [next(v.demos for v in program.predictors(m) if v.name == view.name) for m in modules]
                for view in program.predictors(student)}

    async def _score(self, module: ModuleSpec, examples: list[tuple[int, Example]]) -> float:
        try:
            evaluation = await self.ctx.evaluate(module, examples)
        except DspyGrpcError:
            return 0.0  # DSPy's eval_candidate_program scores a failed evaluation 0
        return evaluation.score

    async def _record(self, label: str, module: ModuleSpec, score: float) -> None:
        index = self._next_index
        self._next_index += 1
        await self.ctx.record_candidate(Candidate(index, label, module, score))

    async def _full_evaluation(self, study: Any, distributions: dict, by_params: dict, fully_evaluated: set[str],
                               valset: list, trial_num: int) -> tuple[float, ModuleSpec, int] | None:
        """Score the untried combination with the best mean minibatch score on the whole valset."""

        import optuna

        means = sorted(
            ((k, sum(s for s, _, _ in v) / len(v), v[0][1], v[0][2]) for k, v in by_params.items()),
            key=lambda item: item[1], reverse=True,
        )
        pick = next((item for item in means if item[0] not in fully_evaluated), None)
        if pick is None:
            return None
        key, _, module, params = pick
        self.ctx.progress.update(current_candidate=f"full evaluation after trial {trial_num}")
        full = await self._score(module, valset)
        index = self._next_index
        await self._record(f"full evaluation after trial {trial_num}", module, full)
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=full))
        fully_evaluated.add(key)
        self.ctx.progress.offer_score(full)
        return full, module, index

    async def compile(self, student: ModuleSpec) -> Outcome:
        import optuna

        config, progress = self.config, self.ctx.progress
        trainset, valset = split_sets(self.ctx.trainset, self.ctx.valset)
        views = program.predictors(student)
        minibatch = config.minibatch
        if config.auto is not None:
            settings = AUTO_RUN_SETTINGS[config.auto]
            size = min(settings["val_size"], len(valset))
            valset = [valset[i] for i in self.rng.sample(range(len(valset)), size)]
            minibatch = len(valset) > MIN_MINIBATCH_SIZE
            instruct_n = settings["n"] if config.zeroshot else int(settings["n"] * 0.5)
            fewshot_n = settings["n"]
            num_trials = num_trials_for(len(views), config.zeroshot, settings["n"])
        else:
            instruct_n = fewshot_n = config.num_candidates or 1
            num_trials = config.num_trials or 1
        steps = config.minibatch_full_eval_steps
        full_evals = num_trials // steps + 1
        evaluated = len(valset) + (min(config.minibatch_size, len(valset)) * num_trials + len(valset) * full_evals
                                   if minibatch else len(valset) * num_trials)
        progress.update(phase="bootstrap", examples_total=evaluated, lm_calls_planned=(
            10 + instruct_n * len(views) * 3 + fewshot_n * max(1, config.max_bootstrapped_demos) + evaluated))

        # The trainset summary and the default program's score depend on nothing the bootstrap or the
        # proposals draw from the shared rng: they run alongside them.
        proposer = ProposerConfig(config.program_aware_proposer, config.data_aware_proposer, config.tip_aware_proposer,
                                  config.fewshot_aware_proposer, config.view_data_batch_size, config.init_temperature)
        summary = asyncio.ensure_future(dataset_summary_or_none(self.ctx.runner, examples_only(trainset), proposer))
        default = asyncio.ensure_future(self._score(student, valset))
        try:
            demo_candidates = await self._demo_candidates(student, examples_only(trainset), fewshot_n)
            progress.update(phase="propose")
            instructions = await propose_instructions(
                self.ctx.runner, student, demo_candidates, instruct_n, self.rng, proposer, await summary)
            progress.update(phase="search", current_candidate="default program")
            default_score = await default
        finally:
            for task in (summary, default):
                task.cancel()
            await asyncio.gather(summary, default, return_exceptions=True)
        demos = None if config.zeroshot else demo_candidates
        progress.offer_score(default_score)
        await self._record("default program", student, default_score)
        best_score, best_module, best_index = default_score, student, 0

        distributions = {}
        for i, view in enumerate(views):
            distributions[f"{i}_predictor_instruction"] = optuna.distributions.CategoricalDistribution(
                range(len(instructions[view.name])))
            if demos:
                distributions[f"{i}_predictor_demos"] = optuna.distributions.CategoricalDistribution(
                    range(len(demos[view.name])))
        optuna.logging.set_verbosity(logging.WARNING)
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=config.seed, multivariate=True))
        study.add_trial(optuna.trial.create_trial(params={key: 0 for key in distributions},
                                                  distributions=distributions, value=default_score))
        adjusted = num_trials + num_trials // steps + 1 + (1 if num_trials % steps else 0) if minibatch else num_trials
        by_params: dict[str, list[tuple[float, ModuleSpec, dict[str, Any]]]] = defaultdict(list)
        fully_evaluated: set[str] = set()

        for _ in range(num_trials):
            trial = study.ask()
            trial_num = trial.number + 1
            updates, chosen = {}, {}
            for i, view in enumerate(views):
                instruction_index = trial.suggest_categorical(f"{i}_predictor_instruction",
                                                              range(len(instructions[view.name])))
                chosen[f"{i}_predictor_instruction"] = instruction_index
                update = PredictorUpdate(instructions=instructions[view.name][instruction_index])
                if demos:
                    demos_index = trial.suggest_categorical(f"{i}_predictor_demos", range(len(demos[view.name])))
                    chosen[f"{i}_predictor_demos"] = demos_index
                    update = PredictorUpdate(demos=demos[view.name][demos_index], instructions=update.instructions)
                updates[view.name] = update
            candidate = program.updated(student, updates)
            progress.update(current_candidate=f"trial {trial_num}")
            if minibatch and config.minibatch_size < len(valset):
                batch = [valset[i] for i in self.rng.sample(range(len(valset)), config.minibatch_size)]
                score = await self._score(candidate, batch)
                await self._record(f"trial {trial_num} (minibatch)", candidate, score)
            else:
                score = await self._score(candidate, valset)
                index = self._next_index
                await self._record(f"trial {trial_num}", candidate, score)
                progress.offer_score(score)
                if score > best_score:
                    best_score, best_module, best_index = score, candidate, index
            key = ",".join(f"{name}={value}" for name, value in chosen.items())
            by_params[key].append((score, candidate, chosen))
            if minibatch and (trial_num % (steps + 1) == 0 or trial_num == adjusted - 1):
                full_score = await self._full_evaluation(study, distributions, by_params, fully_evaluated, valset,
                                                         trial_num)
                if full_score is not None and full_score[0] > best_score:
                    best_score, best_module, best_index = full_score
            # As in DSPy's objective, the trial completes after the full evaluation it triggered.
            study.tell(trial, score)
        return Outcome(best_module, best_score, best_index)


async def run_mipro(ctx: OptimizeContext, student: ModuleSpec, config: MiproConfig) -> Outcome:
    return await Mipro(ctx, config).compile(student)

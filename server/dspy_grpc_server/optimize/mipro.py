"""DSPy's ``MIPROv2``: bootstrapped demo sets x proposed instructions, searched with optuna's TPE.

1. Demo candidates: DSPy's ``create_n_fewshot_demo_sets`` (zero-shot, labeled, unshuffled and
   shuffled bootstraps), drawn from one ``random.Random(seed)`` shared with the rest of the run.
2. Instruction candidates from the grounded proposer (:mod:`.proposer`).
3. The default program is scored on the whole valset; then ``num_trials`` trials, each choosing an
   instruction and a demo set per predictor with optuna's multivariate TPE sampler (seeded), scored on
   a minibatch of the valset; every ``minibatch_full_eval_steps`` trials (and at the end) the
   combination with the best mean minibatch score is scored on the whole valset. The best full score
   wins. ``auto`` ("light", "medium", "heavy") picks the budgets as DSPy does.

The result is DSPy's for the same seed; the wall time is not. DSPy runs each phase after the
other; here the demo-set bootstraps, the trainset summary, the instruction proposals and every
evaluation's examples run at once within the job's ``num_threads`` slots. The trial loop itself
asks, records, evaluates and tells in DSPy's order, but work is started before its turn whenever
no pending score can change it:

* the trials whose parameters optuna's TPE draws at random (until the study has
  ``N_STARTUP_TRIALS`` completed trials) do not depend on scores at all: they are scored from the
  moment the proposals are known, alongside the default program;
* while a trial is scored, the full evaluation it triggers and the next trial are started when
  every score it can get (the lowest and the highest the metric allows) leads to the same
  combination and the same draw.

Slot priorities (lower first, in DSPy's order) keep the work the next step waits for first in line,
and every early evaluation is checked against the parameters DSPy's order really gives before its
score is used.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# Imported with the server, not on a job's clock: optuna (with numpy) takes a quarter of a second
# or more to import, time no LM call could use.
import optuna

from ..core.errors import DspyGrpcError, invalid
from ..core.example import Example
from ..modules.spec import ModuleSpec
from . import program
from .bootstrap import BootstrapConfig, BootstrapFewShot
from .context import Candidate, Examples, OptimizeContext, Outcome, examples_only
from .labeled_few_shot import labeled_few_shot
from ..modules.metrics import score_range
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


@dataclass(frozen=True)
class Plan:
    """How much work a MIPROv2 run will do, known before it starts (progress and admission use it)."""

    instruct_n: int
    fewshot_n: int
    num_trials: int
    minibatch: bool
    #: Program runs on valset examples (trials, minibatches, full evaluations, the default program).
    evaluated: int
    #: A rough count of the run's LM calls (program runs counted as one call each).
    lm_calls: int


def plan(config: MiproConfig, predictors: int, valset_size: int) -> Plan:
    minibatch = config.minibatch
    if config.auto is not None:
        settings = AUTO_RUN_SETTINGS[config.auto]
        valset_size = min(settings["val_size"], valset_size)
        minibatch = valset_size > MIN_MINIBATCH_SIZE
        instruct_n = settings["n"] if config.zeroshot else int(settings["n"] * 0.5)
        fewshot_n = settings["n"]
        num_trials = num_trials_for(predictors, config.zeroshot, settings["n"])
    else:
        instruct_n = fewshot_n = config.num_candidates or 1
        num_trials = config.num_trials or 1
    full_evals = num_trials // config.minibatch_full_eval_steps + 1
    evaluated = valset_size + (min(config.minibatch_size, valset_size) * num_trials + valset_size * full_evals
                               if minibatch else valset_size * num_trials)
    lm_calls = 10 + instruct_n * predictors * 3 + fewshot_n * max(1, config.max_bootstrapped_demos) + evaluated
    return Plan(instruct_n, fewshot_n, num_trials, minibatch, evaluated, lm_calls)


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
    # The ranges of the numbers (num_candidates, num_trials, minibatch sizes, seed) are checked before this.
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

    async def _score(self, module: ModuleSpec, examples: list[tuple[int, Example]], priority: int) -> float:
        try:
            evaluation = await self.ctx.evaluate(module, examples, priority=priority)
        except DspyGrpcError:
            return 0.0  # DSPy's eval_candidate_program scores a failed evaluation 0
        return evaluation.score

    async def _record(self, label: str, module: ModuleSpec, score: float) -> None:
        index = self._next_index
        self._next_index += 1
        await self.ctx.record_candidate(Candidate(index, label, module, score))

    async def _full_evaluation(self, study: Any, search: _Search, pick: _Combination, valset: list,
                               trial_num: int, started: _Started | None, priority: int) -> tuple[float, int]:
        """Score ``pick`` (the untried combination with the best mean minibatch score) on the whole
        valset and add it to the study as a completed trial."""

        self.ctx.progress.update(current_candidate=f"full evaluation after trial {trial_num}")
        full = await _take(started, pick.params, functools.partial(self._score, pick.module, valset, priority))
        index = self._next_index
        await self._record(f"full evaluation after trial {trial_num}", pick.module, full)
        study.add_trial(optuna.trial.create_trial(params=pick.params, distributions=search.distributions, value=full))
        self.ctx.progress.offer_score(full)
        return full, index

    async def compile(self, student: ModuleSpec) -> Outcome:
        config, progress = self.config, self.ctx.progress
        trainset, valset = split_sets(self.ctx.trainset, self.ctx.valset)
        views = program.predictors(student)
        if config.auto is not None:
            size = min(AUTO_RUN_SETTINGS[config.auto]["val_size"], len(valset))
            valset = [valset[i] for i in self.rng.sample(range(len(valset)), size)]
        budget = plan(config, len(views), len(valset))
        instruct_n, fewshot_n, num_trials, minibatch = (budget.instruct_n, budget.fewshot_n, budget.num_trials,
                                                        budget.minibatch)
        steps = config.minibatch_full_eval_steps
        progress.update(phase="bootstrap", examples_total=budget.evaluated, lm_calls_planned=budget.lm_calls)

        # The trainset summary and the default program's score depend on nothing the bootstrap or the
        # proposals draw from the shared rng: they run alongside them, the summary until the proposals
        # need it, the default program's examples whenever no bootstrap or proposal call waits for a slot.
        proposer = ProposerConfig(config.program_aware_proposer, config.data_aware_proposer, config.tip_aware_proposer,
                                  config.fewshot_aware_proposer, config.view_data_batch_size, config.init_temperature)
        summary = asyncio.ensure_future(dataset_summary_or_none(self.ctx.runner, examples_only(trainset), proposer))
        default = asyncio.ensure_future(self._score(student, valset, DEFAULT_PRIORITY))
        early: dict[int, _Started] = {}
        try:
            demo_candidates = await self._demo_candidates(student, examples_only(trainset), fewshot_n)
            progress.update(phase="propose")
            instructions = await propose_instructions(
                self.ctx.runner, student, demo_candidates, instruct_n, self.rng, proposer, summary)
            search = _Search(views, instructions, None if config.zeroshot else demo_candidates, config.seed,
                             num_trials, steps, minibatch)
            # Every trial's minibatch, drawn in DSPy's order (nothing else draws from the rng from here on).
            batches = [[valset[i] for i in self.rng.sample(range(len(valset)), config.minibatch_size)]
                       if minibatch and config.minibatch_size < len(valset) else valset for _ in range(num_trials)]
            # The trials whose parameters the sampler draws at random are scored from now on, each
            # with the priority of its turn, so the job's slots never wait for the trial loop.
            for position, params in enumerate(search.random_trials()):
                early[position] = _Started(params, asyncio.ensure_future(
                    self._score(search.candidate(student, params), batches[position], _trial_priority(position))))
            progress.update(phase="search", current_candidate="default program")
            default_score = await default
            progress.offer_score(default_score)
            await self._record("default program", student, default_score)
            return await self._search(student, search, default_score, valset, batches, early)
        finally:
            pending = [summary, default, *(started.task for started in early.values())]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _search(self, student: ModuleSpec, search: _Search, default_score: float, valset: list,
                      batches: list[list], early: dict[int, _Started]) -> Outcome:
        """DSPy's trial loop, in DSPy's order: ask, score (or take the score started early), record,
        full evaluation when due, tell.

        While a trial is being scored, what comes next is started too when no score it could get
        changes it: the full evaluation it triggers (if every possible score picks the same
        combination) and the next trial (if the sampler draws the same parameters whatever the
        pending scores turn out to be). Each is checked against what DSPy's order really gives
        before its score is used (and cancelled if it differs, which the look-ahead rules out)."""

        progress = self.ctx.progress
        best_score, best_module, best_index = default_score, student, 0
        study = search.study(default_score)
        by_params: dict[str, list[tuple[float, ModuleSpec, dict[str, int]]]] = defaultdict(list)
        fully_evaluated: set[str] = set()
        low, high = (100 * bound for bound in score_range(self.ctx.metric))
        # Any evaluation's score: the metric's range, or 0 (a failed run or evaluation).
        scores = (min(low, 0.0), max(high, 0.0))
        full_early: dict[int, _Started] = {}
        scoring: asyncio.Future[float] | None = None
        try:
            for position in range(search.num_trials):
                # TPE's draws (and the look-ahead's study copies below) are CPU work that grows with the
                # trials: done in a thread, so live traffic on the event loop is not held up by them.
                trial = await asyncio.to_thread(study.ask)
                trial_num = trial.number + 1
                chosen = search.suggest(trial)
                candidate = search.candidate(student, chosen)
                progress.update(current_candidate=f"trial {trial_num}")
                batch = batches[position]
                scoring = asyncio.ensure_future(_take(early.pop(position, None), chosen, functools.partial(
                    self._score, candidate, batch, _trial_priority(position))))
                due = search.full_evaluation_due(trial_num)
                await self._look_ahead(study, search, student, trial, position, candidate, chosen, by_params,
                                 fully_evaluated, due, scores, valset, batches, early, full_early)
                score = await scoring
                if batch is not valset:
                    await self._record(f"trial {trial_num} (minibatch)", candidate, score)
                else:
                    index = self._next_index
                    await self._record(f"trial {trial_num}", candidate, score)
                    progress.offer_score(score)
                    if score > best_score:
                        best_score, best_module, best_index = score, candidate, index
                by_params[_params_key(chosen)].append((score, candidate, chosen))
                if due:
                    pick = _best_untried(by_params, fully_evaluated)
                    if pick is not None:
                        full, index = await self._full_evaluation(
                            study, search, pick, valset, trial_num, full_early.pop(position, None),
                            _trial_priority(position) + 1)
                        fully_evaluated.add(pick.key)
                        if full > best_score:
                            best_score, best_module, best_index = full, pick.module, index
                # As in DSPy's objective, the trial completes after the full evaluation it triggered.
                study.tell(trial, score)
        finally:
            pending = [started.task for started in full_early.values()] + ([scoring] if scoring else [])
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return Outcome(best_module, best_score, best_index)

    async def _look_ahead(self, study: Any, search: _Search, student: ModuleSpec, trial: Any, position: int,
                    candidate: ModuleSpec, chosen: dict[str, int], by_params: dict, fully_evaluated: set[str],
                    due: bool, scores: tuple[float, float], valset: list, batches: list[list],
                    early: dict[int, _Started], full_early: dict[int, _Started]) -> None:
        """Start what follows the trial being scored, when its score cannot change it.

        The full evaluation's pick moves monotonically with the pending score, and TPE only looks at
        which completed trials rank among the best few: the lowest and highest scores the metric
        allows reach every case, so agreeing answers for both are the answer."""

        pick: _Combination | None = None
        if due:
            picks = {_key_or_none(_best_untried(_with_score(by_params, chosen, candidate, score), fully_evaluated))
                     for score in scores}
            if len(picks) != 1:
                return  # the next trial's draw depends on which combination the full evaluation scores
            pick = _best_untried(_with_score(by_params, chosen, candidate, scores[0]), fully_evaluated)
            if pick is not None and position not in full_early:
                full_early[position] = _Started(pick.params, asyncio.ensure_future(
                    self._score(pick.module, valset, _trial_priority(position) + 1)))
        following = position + 1
        if following >= search.num_trials or following in early:
            return
        params = await asyncio.to_thread(search.next_params, study, trial.number, scores, pick)
        if params is not None:
            early[following] = _Started(params, asyncio.ensure_future(self._score(
                search.candidate(student, params), batches[following], _trial_priority(following))))


@dataclass(frozen=True)
class _Started:
    """An evaluation started ahead of its turn, for the parameters it was started with."""

    params: dict[str, int]
    task: asyncio.Future[float]


async def _take(started: _Started | None, params: dict[str, int],
                evaluate: Callable[[], Awaitable[float]]) -> float:
    """The score of ``params``: from the evaluation started early when it was started for them."""

    if started is not None and started.params == params:
        return await started.task
    if started is not None:
        started.task.cancel()  # a look-ahead that guessed wrong: never used
    return await evaluate()


@dataclass(frozen=True)
class _Combination:
    key: str
    module: ModuleSpec
    params: dict[str, int]


def _best_untried(by_params: dict, fully_evaluated: set[str]) -> _Combination | None:
    """DSPy's pick for a full evaluation: the best mean minibatch score (first tried among equals)
    of the combinations not yet scored on the whole valset."""

    means = sorted(((key, sum(s for s, _, _ in runs) / len(runs), runs[0][1], runs[0][2])
                    for key, runs in by_params.items()), key=lambda item: item[1], reverse=True)
    pick = next((item for item in means if item[0] not in fully_evaluated), None)
    return None if pick is None else _Combination(pick[0], pick[2], pick[3])


def _key_or_none(pick: _Combination | None) -> str | None:
    return None if pick is None else pick.key


def _with_score(by_params: dict, chosen: dict[str, int], candidate: ModuleSpec, score: float) -> dict:
    key = _params_key(chosen)
    return {**by_params, key: [*by_params.get(key, []), (score, candidate, chosen)]}


#: Slot priorities (lower goes first): the bootstraps' and the proposals' LM calls (priority 0,
#: everything the trials wait for), then the default program's examples, then each trial's
#: minibatch and the full evaluation it triggers, in the trials' order.
DEFAULT_PRIORITY = 1


def _trial_priority(position: int) -> int:
    return 2 + 2 * position


def _params_key(chosen: dict[str, int]) -> str:
    return ",".join(f"{name}={value}" for name, value in chosen.items())


#: optuna's default, spelled out because the look-ahead relies on it: TPE draws the parameters of a
#: trial at random until the study has this many completed trials.
N_STARTUP_TRIALS = 10


class _Search:
    """The search space and the sampler of one MIPROv2 run.

    ``random_trials`` finds, before any trial is scored, the parameters of the trials optuna's TPE
    draws at random (while the study has fewer than ``N_STARTUP_TRIALS`` completed trials): it
    replays DSPy's sequence of asks, tells and added full-evaluation trials on a twin study with
    placeholder scores. A random draw never looks at scores and the sequence (hence the trial
    numbers and the draws) does not depend on them, so the twin draws what the real study will.
    """

    def __init__(self, views: list, instructions: dict[str, list[str]],
                 demos: dict[str, list[tuple[Example, ...]]] | None, seed: int, num_trials: int, steps: int,
                 minibatch: bool) -> None:
        self.views, self.instructions, self.demos = views, instructions, demos
        self.seed, self.num_trials, self.steps, self.minibatch = seed, num_trials, steps, minibatch
        self.distributions = {}
        for i, view in enumerate(views):
            self.distributions[f"{i}_predictor_instruction"] = optuna.distributions.CategoricalDistribution(
                range(len(instructions[view.name])))
            if demos:
                self.distributions[f"{i}_predictor_demos"] = optuna.distributions.CategoricalDistribution(
                    range(len(demos[view.name])))

    def study(self, default_score: float) -> Any:
        """A study holding the default program's trial (all parameters 0), as DSPy starts it."""

        optuna.logging.set_verbosity(logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=self.seed, multivariate=True, n_startup_trials=N_STARTUP_TRIALS)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.add_trial(optuna.trial.create_trial(params={key: 0 for key in self.distributions},
                                                  distributions=self.distributions, value=default_score))
        return study

    def suggest(self, trial: Any) -> dict[str, int]:
        chosen = {}
        for i, view in enumerate(self.views):
            name = f"{i}_predictor_instruction"
            chosen[name] = trial.suggest_categorical(name, range(len(self.instructions[view.name])))
            if self.demos:
                name = f"{i}_predictor_demos"
                chosen[name] = trial.suggest_categorical(name, range(len(self.demos[view.name])))
        return chosen

    def candidate(self, student: ModuleSpec, chosen: dict[str, int]) -> ModuleSpec:
        updates = {}
        for i, view in enumerate(self.views):
            instruction = self.instructions[view.name][chosen[f"{i}_predictor_instruction"]]
            demos = self.demos[view.name][chosen[f"{i}_predictor_demos"]] if self.demos else None
            updates[view.name] = PredictorUpdate(demos=demos, instructions=instruction)
        return program.updated(student, updates)

    def full_evaluation_due(self, trial_num: int) -> bool:
        """DSPy's schedule: every ``steps + 1`` trial numbers, and at the last one of its adjusted count."""

        if not self.minibatch:
            return False
        trials, steps = self.num_trials, self.steps
        adjusted = trials + trials // steps + 1 + (1 if trials % steps else 0)
        return trial_num % (steps + 1) == 0 or trial_num == adjusted - 1

    def random_trials(self) -> list[dict[str, int]]:
        twin = self.study(0.0)
        tried: set[str] = set()
        full_evaluations = 0
        planned: list[dict[str, int]] = []
        for _ in range(self.num_trials):
            completed = twin.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                optuna.trial.TrialState.PRUNED))
            if len(completed) >= N_STARTUP_TRIALS:
                break  # from here on TPE's draws depend on the scores
            trial = twin.ask()
            chosen = self.suggest(trial)
            planned.append(chosen)
            tried.add(_params_key(chosen))
            # A full evaluation adds a trial when some tried combination has no full score yet
            # (which one does not matter to a random draw).
            if self.full_evaluation_due(trial.number + 1) and len(tried) > full_evaluations:
                full_evaluations += 1
                twin.add_trial(optuna.trial.create_trial(params=chosen, distributions=self.distributions, value=0.0))
            twin.tell(trial, 0.0)
        return planned

    def next_params(self, study: Any, running: int, scores: tuple[float, float],
                    pick: _Combination | None) -> dict[str, int] | None:
        """The parameters the sampler draws next once trial ``running`` (and the full evaluation of
        ``pick`` it triggers, if any) completes, when they are the same for every score they can
        get; None otherwise. Asked of copies of the study: the real one is left as it is."""

        drawn = set()
        for score in scores:
            for full in (scores if pick is not None else (None,)):
                twin = copy.deepcopy(study)
                if pick is not None:
                    twin.add_trial(optuna.trial.create_trial(params=pick.params, distributions=self.distributions,
                                                             value=full))
                twin.tell(running, score)
                drawn.add(tuple(self.suggest(twin.ask()).items()))
                if len(drawn) > 1:
                    return None
        return dict(drawn.pop())


async def run_mipro(ctx: OptimizeContext, student: ModuleSpec, config: MiproConfig) -> Outcome:
    return await Mipro(ctx, config).compile(student)

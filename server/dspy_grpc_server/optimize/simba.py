"""DSPy's ``SIMBA`` (Stochastic Introspective Mini-Batch Ascent), with DSPy 3.4.1's semantics.

Each of ``max_steps`` steps takes the next mini-batch of ``bsize`` training examples (a seeded
shuffle, reshuffled when it runs out) and:

1. runs every example ``num_candidates`` times, each time with a program drawn from the pool's top
   ``num_candidates`` (the baseline always among them) by a softmax over their average mini-batch
   scores at ``temperature_for_sampling``, all of its predictors on the base LM with rollout id
   ``start + i`` and temperature 1.0 for the ``i``-th run;
2. groups the runs by example into buckets, sorted by (best - worst, best, best - average);
3. for bucket after bucket until ``num_candidates + 1`` new programs exist: draws a source program
   (softmax at ``temperature_for_candidates``), drops a Poisson-distributed number of demos from its
   predictors, and applies a random strategy: *append a demo* (the best run's predictor calls become
   demos) or *append a rule* (the prompt model compares the best and the worst run -- DSPy's
   OfferFeedback -- and each predictor's instructions get its advice appended);
4. scores the new programs on the mini-batch, keeps the best as the step's winner and adds them all
   to the pool.

Finally the baseline and evenly spaced winners are scored on the whole trainset; the best wins.

Scheduling (same draws, calls and results): a step's rules are written at once, each new program's
mini-batch runs start as soon as it is built, and a finalist's trainset runs start as soon as it is
certain to be a finalist whatever the remaining steps produce (the baseline from the start), behind
the steps' work, so that they fill the slots the steps leave idle.
Random draws use ``random.Random(seed)`` and ``numpy.random.default_rng(seed)`` in DSPy's order, and
every run is scored by the job's metric (its feedback is the ``reward_info`` the rule-writer sees),
so the same LM answers give DSPy's program. The program code shown to the prompt model is the
program's DSPy construction (DSPy shows its Python source).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import invalid
from ..core.example import Example
from ..core.signature import Field, Role, Signature
from ..core.types import FLOAT, STR, dict_of, list_of
from ..modules.build import describe_module
from ..modules.rollouts import describe_modules
from ..modules.spec import LMChoice, ModuleSpec, PredictorSpec
from . import program
from .context import Candidate, OptimizeContext, Outcome
from .program import PredictorUpdate
from .runner import with_rollout
from .timeline import Timeline

log = logging.getLogger("dspy_grpc_server.optimize.simba")

MAX_BSIZE = 1_000
MAX_CANDIDATES = 64
MAX_STEPS = 100
MAX_DEMOS = 64
MAX_FIELD_LENGTH = 1_000_000
MAX_TEMPERATURE = 100.0
#: Program runs a SIMBA job may plan (checked when the job is created).
MAX_RUNS = 100_000
#: Slot priority of the finalists' runs on the trainset, started early (lower goes first; the steps' work is 0).
BACKGROUND = 1


@dataclass(frozen=True)
class SimbaConfig:
    bsize: int = 32
    num_candidates: int = 6
    max_steps: int = 8
    max_demos: int = 4
    demo_input_field_maxlen: int = 100_000
    temperature_for_sampling: float = 0.2
    temperature_for_candidates: float = 0.2
    seed: int = 0


def planned_runs(config: SimbaConfig, trainset_size: int) -> int:
    per_step = config.bsize * config.num_candidates + (config.num_candidates + 1) * config.bsize
    return config.max_steps * per_step + (config.num_candidates + 1) * trainset_size


def validate(config: SimbaConfig, trainset_size: int, path: str) -> None:
    """Check what ranges cannot (app.optimizations.config_ranges checks those first)."""

    if config.bsize > trainset_size:
        raise invalid(f"{path}.bsize", f"is larger than the trainset ({trainset_size} examples)")
    for key in ("temperature_for_sampling", "temperature_for_candidates"):
        if not 0 < getattr(config, key) <= MAX_TEMPERATURE:
            raise invalid(f"{path}.{key}", f"must be positive and at most {MAX_TEMPERATURE:g}")
    runs = planned_runs(config, trainset_size)
    if runs > MAX_RUNS:
        raise invalid(f"{path}.max_steps", f"plans {runs} program runs; at most {MAX_RUNS} are allowed")


#: DSPy's SIMBA ``OfferFeedback`` signature.
OFFER_FEEDBACK = Signature(
    (
        Field("program_code", Role.INPUT, STR, "The code of the program that we are analyzing"),
        Field("modules_defn", Role.INPUT, STR, "The definition of each module in the program, including its I/O"),
        Field("program_inputs", Role.INPUT, STR, "The inputs to the program that we are analyzing"),
        Field("oracle_metadata", Role.INPUT, STR,
              "Any (hidden) metadata about the training set instance we're analyzing"),
        Field("worse_program_trajectory", Role.INPUT, STR,
              "The trajectory of the program's execution, showing each module's I/O"),
        Field("worse_program_outputs", Role.INPUT, STR, "The outputs of the program that we are analyzing"),
        Field("worse_reward_value", Role.INPUT, FLOAT, "The reward value assigned to the program's outputs"),
        Field("worse_reward_info", Role.INPUT, STR,
              "Additional information that might be helpful to understanding the assigned reward value."),
        Field("better_program_trajectory", Role.INPUT, STR,
              "The trajectory of the program's execution, showing each module's I/O"),
        Field("better_program_outputs", Role.INPUT, STR, "The outputs of the program that we are analyzing"),
        Field("better_reward_value", Role.INPUT, FLOAT, "The reward value assigned to the program's outputs"),
        Field("better_reward_info", Role.INPUT, STR,
              "Additional information that might be helpful to understanding the assigned reward value."),
        Field("module_names", Role.INPUT, list_of(STR),
              "The names of the modules in the program, for which we seek advice"),
        Field("discussion", Role.OUTPUT, STR, "Discussing blame of where each module went wrong, if it did"),
        Field("module_advice", Role.OUTPUT, dict_of(STR, STR),
              "For each module, describe very concretely: If the module receives ${description of input or patterns "
              "therein}, then it should ${description of content, behavior, or strategies to adopt and/or others to "
              "avoid}. Basically, your advice be such that if the module has access to your tip, it would be much "
              "more likely to act like the successful trajectory rather than the lower-scoring trajectory."),
    ),
    "You will be given two trajectories of an LLM-driven program's execution. Your goal is to help the program's "
    "modules\nbuild up experience on how to maximize the reward value assigned to the program's outputs if it were "
    "to receive\nsimilar inputs in the future.\n\nThe module won't see its own history. It will rely on your advice "
    "balancing being concrete and being generalizable.\n\nIn your advice:\n- Avoid boilerplate. Offer advice that "
    "would change the module's behavior for the better in the future.\n- Ensure that advice offered to a module M "
    "is specific to that M's specific sub-task, not the overall program.\n- Rely on contrasting the behavior of the "
    "worse trajectory against the better trajectory in making recommendations.\n- Ensure each unique module name "
    "appears exactly once as a key in the advice dictionary.",
)


def _dumps(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)


@dataclass
class _Run:
    """One run of a program on an example (DSPy's ``wrap_program`` output)."""

    example: Example
    outputs: Mapping[str, Any] | None
    trace: list[tuple[str, dict[str, Any], dict[str, Any]]]
    score: Any
    info: dict[str, Any]


class Simba:
    def __init__(self, ctx: OptimizeContext, config: SimbaConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.rng = random.Random(config.seed)
        self.rng_np = np.random.default_rng(config.seed)
        self.programs: list[ModuleSpec] = []
        self.scores: dict[int, list[float]] = {}
        self.timeline = Timeline()

    # -- helpers (DSPy's closures)

    def average(self, index: int) -> float:
        scores = self.scores.get(index, [])
        return sum(scores) / len(scores) if scores else 0.0

    def top_k_plus_baseline(self, k: int) -> list[int]:
        ranked = sorted(range(len(self.programs)), key=self.average, reverse=True)
        top = ranked[:k]
        if 0 not in top and top:
            top[-1] = 0
        return list(dict.fromkeys(top))

    def softmax_sample(self, indexes: list[int], temperature: float) -> int:
        exps = [np.exp(self.average(i) / temperature) for i in indexes]
        total = sum(exps)
        if total <= 0:
            return self.rng.choice(indexes)
        return self.rng.choices(indexes, weights=[e / total for e in exps], k=1)[0]

    async def run(self, module: ModuleSpec, example: Example, priority: int = 0) -> _Run:
        runner = self.ctx.runner
        async with runner.slot(priority):
            outputs, trace = None, []
            try:
                result = await runner.run(module, example)
                outputs = dict(result.outputs)
                trace = [(step.predictor, dict(step.inputs), dict(step.outputs)) for step in result.trace]
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as error:  # noqa: BLE001 - DSPy logs a failed run and scores it 0
                log.info("SIMBA: a program run failed: %s", error)
            score, info = 0.0, {}
            if outputs is not None:
                try:
                    assessment = await runner.assess(self.ctx.metric, example, result)  # type: ignore[arg-type]
                    score, info = assessment.score, {"feedback": assessment.feedback()}
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception as error:  # noqa: BLE001 - as in DSPy: the metric failed, score 0
                    log.info("SIMBA: the metric failed: %s", error)
        runner.progress.example_done()
        return _Run(example, outputs, trace, score, info)

    # -- strategies

    def append_a_demo(self, bucket: list[_Run], system: ModuleSpec, p10: float, p90: float) -> ModuleSpec:
        good = bucket[0]
        if good.score <= p10:
            return system
        limit = self.config.demo_input_field_maxlen
        demos: dict[str, Example] = {}
        for name, inputs, outputs in good.trace:
            for key, value in inputs.items():
                if limit and len(str(value)) > limit:
                    inputs[key] = f"{str(value)[:limit]}\n\t\t... <TRUNCATED FOR BREVITY>"
            demos[name] = Example({**inputs, **outputs}, augmented=True)
        views = {view.name: view for view in program.predictors(system)}
        return program.updated(system, {
            name: PredictorUpdate(demos=tuple(views[name].demos) + (demo,)) for name, demo in demos.items()
            if name in views
        })

    async def append_a_rule(self, bucket: list[_Run], system: ModuleSpec, p10: float, p90: float) -> ModuleSpec:
        good, bad = bucket[0], bucket[-1]
        if good.score <= p10 or bad.score >= p90:
            return system
        good_trace, bad_trace = good.trace, bad.trace
        good_score, bad_score = good.score, bad.score
        good_outputs: Any = good.outputs
        bad_outputs: Any = bad.outputs
        if good.score <= bad.score:
            if good.score > p90:
                bad_trace, bad_score, bad_outputs = [], "N/A", {"N/A": "Prediction not available"}
            else:
                good_trace, good_score, good_outputs = [], "N/A", {"N/A": "Prediction not available"}
        if good_outputs is None:
            raise ValueError("the better run has no prediction")
        views = program.predictors(system)
        names = {view.name for view in views}

        def trajectory(trace: list[tuple[str, dict, dict]]) -> list[dict[str, Any]]:
            return [{"module_name": name, "inputs": inputs, "outputs": outputs}
                    for name, inputs, outputs in trace if name in names]

        values = {
            "program_code": describe_module(system),
            "modules_defn": describe_modules([(view.name, view.signature) for view in views]),
            "program_inputs": good.example.inputs(),
            "oracle_metadata": good.example.labels(),
            "better_program_trajectory": trajectory(good_trace),
            "better_program_outputs": dict(good_outputs),
            "worse_program_trajectory": trajectory(bad_trace),
            "worse_program_outputs": dict(bad_outputs or {}),
            "worse_reward_value": bad_score,
            "better_reward_value": good_score,
            "worse_reward_info": bad.info,
            "better_reward_info": good.info,
            "module_names": [view.name for view in views],
        }
        runner = self.ctx.runner
        async with runner.slot():
            outputs = await runner.engine.call("offer_feedback", PredictorSpec(signature=OFFER_FEEDBACK),
                                               {k: _dumps(v) for k, v in values.items()}, request_lm=runner.prompt_lm)
        advice = outputs.get("module_advice") or {}
        return program.updated(system, {
            view.name: PredictorUpdate(instructions=view.signature.effective_instructions + "\n\n" + advice[view.name])
            for view in views if view.name in advice
        })

    def draw(self, bucket: list[_Run], strategies: list[str]) -> tuple[ModuleSpec, str]:
        """DSPy's draws for one bucket: the source program, the demos dropped, the strategy."""

        config = self.config
        source = self.softmax_sample(self.top_k_plus_baseline(config.num_candidates), config.temperature_for_candidates)
        system = self.programs[source]
        views = program.predictors(system)
        cap = config.max_demos if config.max_demos > 0 else 3
        most = max((len(view.demos) for view in views), default=0)
        drop = min(max(int(self.rng_np.poisson(most / cap)), int(most >= cap)), most)
        dropped = {self.rng.randrange(most) for _ in range(drop)}
        if dropped:
            system = program.updated(system, {view.name: PredictorUpdate(
                demos=tuple(d for i, d in enumerate(view.demos) if i not in dropped)) for view in views})
        return system, self.rng.choice(strategies)

    async def apply(self, strategy: str, bucket: list[_Run], system: ModuleSpec, p10: float,
                    p90: float) -> ModuleSpec | None:
        try:
            if strategy == "append_a_demo":
                return self.append_a_demo(bucket, system, p10, p90)
            return await self.append_a_rule(bucket, system, p10, p90)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as error:  # noqa: BLE001 - DSPy logs a failed strategy and moves on
            log.info("SIMBA: strategy %s failed: %s", strategy, error)
            return None

    async def new_candidates(self, buckets: list[list[_Run]], strategies: list[str], p10: float, p90: float,
                             batch: list[Example], step: int) -> list[tuple[ModuleSpec, list[_Run]]]:
        """Up to ``num_candidates + 1`` new programs, bucket after bucket as DSPy builds them, each with
        its runs on the mini-batch. DSPy applies one strategy at a time and stops once it has enough; a
        strategy's outcome never changes the next bucket's draws, so here the draws are made for
        exactly as many buckets as programs are still missing (the same draws, in the same order, as
        DSPy's loop makes), their strategies (rule-writing LM calls) run at once, and each program's
        evaluation starts as soon as it is built."""

        wanted = self.config.num_candidates + 1
        built: list[tuple[ModuleSpec, asyncio.Future[list[_Run]]]] = []
        levels = self.levels(step)

        async def build(bucket: list[_Run], system: ModuleSpec, strategy: str) -> None | tuple[ModuleSpec, Any]:
            with self.timeline.level(levels["rules"]):
                made = await self.apply(strategy, bucket, system, p10, p90)
            if made is None:
                return None
            kind = "evaluation (rules)" if strategy == "append_a_rule" else "evaluation (demos)"
            with self.timeline.level(levels[kind]):
                return made, asyncio.ensure_future(asyncio.gather(*(self.run(made, e) for e in batch)))

        try:
            position = 0
            while len(built) < wanted and position < len(buckets):
                wave = buckets[position:position + wanted - len(built)]
                position += len(wave)
                drawn = [(bucket, *self.draw(bucket, strategies)) for bucket in wave]
                made = await asyncio.gather(*(build(bucket, system, strategy) for bucket, system, strategy in drawn))
                built.extend(item for item in made if item is not None)
            return [(system, list(await runs)) for system, runs in built]
        finally:
            for _, runs in built:
                runs.cancel()

    def levels(self, step: int) -> dict[str, str]:
        """The names of step ``step``'s dependency levels (see :mod:`.timeline`), declared in order."""

        names = {kind: f"step {step + 1}: {kind}" for kind in (
            "trajectories", "rules", "evaluation (demos)", "evaluation (rules)")}
        previous = () if step == 0 else (f"step {step}: evaluation (demos)", f"step {step}: evaluation (rules)")
        self.timeline.declare(names["trajectories"], after=previous)
        self.timeline.declare(names["rules"], after=(names["trajectories"],))
        self.timeline.declare(names["evaluation (demos)"], after=(names["trajectories"],))
        self.timeline.declare(names["evaluation (rules)"], after=(names["rules"],))
        return names

    def finalist_indexes(self, count: int) -> list[int]:
        """DSPy's finalists among ``count`` step winners: the baseline (0) and evenly spaced winners."""

        wanted = self.config.num_candidates + 1
        indexes = [0] * wanted if count < 1 else [round(i * count / (wanted - 1)) for i in range(wanted)]
        return list(dict.fromkeys(indexes))

    def certain_finalists(self, count: int, steps_left: int) -> set[int]:
        """The winners that are finalists however many of the remaining steps produce a winner."""

        possible = [set(self.finalist_indexes(count + more)) for more in range(steps_left + 1)]
        return set.intersection(*possible)

    def evaluate_finalist(self, finalist: ModuleSpec, trainset: list[Example], level: str,
                          after: tuple[str, ...]) -> asyncio.Future[list[_Run]]:
        """The finalist's runs on the trainset, started now behind every step's work (a lower priority),
        so they fill the slots the steps leave idle."""

        self.timeline.declare(level, after=after)
        with self.timeline.level(level):
            return asyncio.ensure_future(asyncio.gather(
                *(self.run(finalist, e, priority=BACKGROUND) for e in trainset)))

    # -- the run

    def base_lm(self, student: ModuleSpec) -> LMChoice:
        own = program.own_lm(student)
        return own if own.is_set else self.ctx.runner.task_lm

    async def compile(self, student: ModuleSpec) -> Outcome:
        config, ctx = self.config, self.ctx
        trainset = [example for _, example in ctx.trainset]
        strategies = ["append_a_demo", "append_a_rule"] if config.max_demos > 0 else ["append_a_rule"]
        self.programs, self.scores = [student], {0: []}
        base = self.base_lm(student)
        start = base.options.rollout_id or 0
        models = [with_rollout(base, start + i, 1.0) for i in range(config.num_candidates)]
        # Each finalist's runs on the trainset start as soon as it is certain to be one (the baseline
        # always is): they are the runs DSPy makes at the end, made earlier in slots left idle.
        finals = {0: self.evaluate_finalist(student, trainset, "final: baseline", ())}
        try:
            return await self.steps(student, trainset, strategies, models, finals)
        finally:
            for runs in finals.values():
                runs.cancel()

    async def steps(self, student: ModuleSpec, trainset: list[Example], strategies: list[str],
                    models: list[LMChoice], finals: dict[int, asyncio.Future[list[_Run]]]) -> Outcome:
        config, ctx = self.config, self.ctx
        winners = [student]
        #: The dependency levels each winner's step ended with.
        made_after: list[tuple[str, ...]] = [()]
        order = list(range(len(trainset)))
        self.rng.shuffle(order)
        position = 0
        for step in range(config.max_steps):
            ctx.progress.update(phase=f"step {step + 1}/{config.max_steps}", current_candidate="")
            if position + config.bsize > len(trainset):
                self.rng.shuffle(order)
                position = 0
            batch = [trainset[i] for i in order[position:position + config.bsize]]
            position += config.bsize
            top = self.top_k_plus_baseline(config.num_candidates)
            pairs = []
            for model in models:
                for example in batch:
                    chosen = self.softmax_sample(top, config.temperature_for_sampling)
                    pairs.append((program.with_lm(self.programs[chosen], model), example))
            levels = self.levels(step)
            with self.timeline.level(levels["trajectories"]):
                outputs = list(await asyncio.gather(*(self.run(m, e) for m, e in pairs)))
            all_scores = [float(o.score) for o in outputs]
            p10, p90 = float(np.percentile(all_scores, 10)), float(np.percentile(all_scores, 90))
            buckets = []
            for index in range(len(batch)):
                bucket = [outputs[i] for i in range(index, len(outputs), config.bsize)]
                bucket.sort(key=lambda run: run.score, reverse=True)
                best, worst = float(bucket[0].score), float(bucket[-1].score)
                average = sum(run.score for run in bucket) / len(bucket)
                buckets.append((bucket, (best - worst, best, best - average)))
            buckets.sort(key=lambda item: item[1], reverse=True)

            evaluated = await self.new_candidates([bucket for bucket, _ in buckets], strategies, p10, p90, batch,
                                                  step)
            ctx.progress.update(current_candidate=f"step {step + 1}: {len(evaluated)} new programs")
            averages = [sum(float(r.score) for r in runs) / len(runs) for _, runs in evaluated]
            if averages:
                winners.append(evaluated[averages.index(max(averages))][0])
                made_after.append((levels["evaluation (demos)"], levels["evaluation (rules)"]))
                ctx.progress.offer_score(round(100 * max(averages), 2))
            for candidate, runs in evaluated:
                self.programs.append(candidate)
                self.scores[len(self.programs) - 1] = [float(r.score) for r in runs]
            for index in sorted(self.certain_finalists(len(winners) - 1, config.max_steps - step - 1) - set(finals)):
                finals[index] = self.evaluate_finalist(winners[index], trainset, f"final: winner of step {index}",
                                                       made_after[index])

        indexes = self.finalist_indexes(len(winners) - 1)
        finalists = [winners[i] for i in indexes]
        ctx.progress.update(phase="validate", current_candidate="")
        for index in indexes:
            if index not in finals:
                finals[index] = self.evaluate_finalist(winners[index], trainset, f"final: winner of step {index}",
                                                       made_after[index])
        runs = [run for index in indexes for run in await finals[index]]
        totals = []
        for index, finalist in enumerate(finalists):
            scores = [float(r.score) for r in runs[index * len(trainset):(index + 1) * len(trainset)]]
            total = sum(scores) / len(scores) if scores else 0.0
            totals.append(total)
            label = "baseline" if indexes[index] == 0 else f"winner of step {indexes[index]}"
            await ctx.record_candidate(Candidate(index, label, finalist, round(100 * total, 2)))
        best = totals.index(max(totals))
        ctx.progress.offer_score(round(100 * totals[best], 2))
        return Outcome(finalists[best], round(100 * totals[best], 2), best)


async def run_simba(ctx: OptimizeContext, student: ModuleSpec, config: SimbaConfig) -> Outcome:
    ctx.progress.update(phase="start", lm_calls_planned=planned_runs(config, len(ctx.trainset)))
    simba = Simba(ctx, config)
    outcome = await simba.compile(student)
    simba.timeline.log("SIMBA", ctx.runner.num_threads)
    return outcome

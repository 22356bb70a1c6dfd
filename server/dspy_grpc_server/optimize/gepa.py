"""DSPy's ``GEPA``: reflective prompt evolution, on the ``gepa`` engine DSPy 3.4.1 pins (0.1.4).

The engine (candidate selection over the Pareto frontier, minibatch sampling, acceptance, merges,
budget) is the ``gepa`` package's, called as ``dspy.GEPA.compile`` calls it. What DSPy's
``DspyAdapter`` does around it is done here, against our engine:

* **evaluate**: the candidate's texts become the predictors' instructions; each example runs
  ``num_threads`` at a time and is scored by the job's metric (a failed run scores
  ``failure_score``); with traces, each run's trace and the metric's assessment (score and
  feedback) are kept;
* **reflective dataset**: per predictor to update, for each run whose trace called a predictor
  with the same signature, one such call (a seeded ``random.Random(seed)`` choice, as DSPy's) with
  its inputs, outputs and the metric's feedback for that predictor;
* **proposal**: DSPy's ``InstructionProposer``: ``ProposeInstruction`` through the JSON adapter on the
  reflection LM, one call per predictor to update.

The engine is synchronous: it runs in a worker thread and every step that needs the event loop
(program runs, LM calls, recording a candidate) is handed to the loop and waited for. LM calls go
through the job's journal, so a resumed job replays the whole run without calling the LM again and
reaches the same candidates. Cancelling stops the engine at its next step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import random
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

# Imported with the server, not by the first GEPA job (which would wait ~0.1 s for it).
import gepa

from ..core.errors import invalid
from ..core.example import Example
from ..core.signature import Signature, parse_signature
from ..modules.metrics import Assessment
from ..modules.spec import ModuleSpec, PredictorSpec, PredictSpec
from ..modules.storage import lm_from_dict
from . import program
from .context import Candidate, OptimizeContext, Outcome
from .program import PredictorUpdate
from .runner import Run
from .timeline import Timeline

log = logging.getLogger("dspy_grpc_server.optimize.gepa")

T = TypeVar("T")

#: DSPy's AUTO_RUN_SETTINGS: candidates per auto level.
AUTO_CANDIDATES = {"light": 6, "medium": 12, "heavy": 18}
MAX_METRIC_CALLS = 100_000
MAX_FULL_EVALS = 1_000
MAX_MINIBATCH = 100
MAX_MERGES = 100


@dataclass(frozen=True)
class GepaConfig:
    auto: str = ""
    max_full_evals: int | None = None
    max_metric_calls: int | None = None
    #: The reflection LM, as ``lm_to_dict`` writes it (the config is stored as JSON).
    reflection_lm: dict[str, Any] = field(default_factory=dict)
    reflection_minibatch_size: int = 3
    candidate_selection_strategy: str = "pareto"
    skip_perfect_score: bool = True
    component_selector: str = "round_robin"
    use_merge: bool = True
    max_merge_invocations: int = 5
    failure_score: float = 0.0
    perfect_score: float = 1.0
    seed: int = 0


def auto_budget(num_preds: int, num_candidates: int, valset_size: int, minibatch_size: int = 35,
                full_eval_steps: int = 5) -> int:
    """DSPy's ``GEPA.auto_budget``: metric calls for an auto level."""

    trials = int(max(2 * (num_preds * 2) * math.log2(num_candidates), 1.5 * num_candidates))
    total = valset_size + num_candidates * 5 + trials * minibatch_size
    if trials == 0:
        return total
    periodic = (trials + 1) // full_eval_steps + 1
    final = 1 if trials < full_eval_steps else 0
    return total + (periodic + final) * valset_size


def metric_budget(config: GepaConfig, num_predictors: int, trainset_size: int, valset_size: int | None) -> int:
    """The metric calls the run may make, as DSPy's compile computes them (``valset_size`` None: the
    trainset is the valset)."""

    if config.auto:
        return auto_budget(max(num_predictors, 1), AUTO_CANDIDATES[config.auto],
                           valset_size if valset_size is not None else trainset_size)
    if config.max_full_evals is not None:
        return config.max_full_evals * (trainset_size + (valset_size or 0))
    assert config.max_metric_calls is not None
    return config.max_metric_calls


def validate(config: GepaConfig, num_predictors: int, trainset_size: int, valset_size: int | None, path: str) -> int:
    """Check the settings that ranges cannot (app.optimizations.config_ranges checks those first); the
    metric-call budget they give (at most MAX_METRIC_CALLS)."""

    chosen = [name for name, value in (("auto", config.auto), ("max_full_evals", config.max_full_evals),
                                       ("max_metric_calls", config.max_metric_calls)) if value not in ("", None)]
    if len(chosen) != 1:
        raise invalid(f"{path}.auto", "set exactly one of auto, max_full_evals and max_metric_calls"
                      + (f" (set: {', '.join(chosen)})" if chosen else ""))
    if config.auto and config.auto not in AUTO_CANDIDATES:
        raise invalid(f"{path}.auto", "must be light, medium or heavy")
    if not lm_from_dict(config.reflection_lm).is_set:
        raise invalid(f"{path}.reflection_lm", "is required: the model that reflects and proposes instructions")
    if config.candidate_selection_strategy not in ("pareto", "current_best"):
        raise invalid(f"{path}.candidate_selection_strategy", "must be pareto or current_best")
    if config.component_selector not in ("round_robin", "all"):
        raise invalid(f"{path}.component_selector", "must be round_robin or all")
    budget = metric_budget(config, num_predictors, trainset_size, valset_size)
    if budget > MAX_METRIC_CALLS:
        raise invalid(f"{path}.auto" if config.auto else f"{path}.max_full_evals",
                      f"gives {budget} metric calls; at most {MAX_METRIC_CALLS} are allowed")
    return budget


# --------------------------------------------------------------------------- DSPy's instruction proposer

#: DSPy's ``ProposeInstruction`` signature (GEPA's standard reflection prompt).
PROPOSE_INSTRUCTION: Signature = parse_signature(
    "current_instruction: str, examples_with_feedback: list[dict[str, Any]] -> new_instruction: str",
    "I provided an assistant with instructions to perform a task for me. You are given those instructions, along "
    "with examples of different task inputs provided to the assistant, the assistant's response for each of them, "
    "and some feedback on how the assistant's response could be better.\n\n"
    "Your task is to write a new instruction for the assistant.\n\n"
    "Read the inputs carefully and identify the input format and infer detailed task description about the task "
    "I wish to solve with the assistant.\n\n"
    "Read all the assistant responses and the corresponding feedback. Identify all niche and domain specific "
    "factual information about the task and include it in the instruction, as a lot of it may not be available "
    "to the assistant in the future. The assistant may have utilized a generalizable strategy to solve the task, "
    "if so, include that in the instruction as well.",
)
for _name, _description in (
    ("current_instruction", "The instructions I provided to the assistant."),
    ("examples_with_feedback", "Task inputs provided to the assistant, the assistant's response for each, and "
                               "feedback on how the response could be better."),
    ("new_instruction", "The new instruction for the assistant."),
):
    PROPOSE_INSTRUCTION = PROPOSE_INSTRUCTION.with_field(_name, description=_description)


# --------------------------------------------------------------------------- the bridge to the event loop


class _Stopped(Exception):
    """Raised in the engine's thread once the job is cancelled."""


class _Bridge:
    """Runs coroutines on the job's event loop for the engine's thread, and stops it on cancel."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stopped = threading.Event()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        #: The engine is sequential: each call is a dependency level after the one before.
        self.timeline = Timeline()
        self._levels = 0
        self._what = ""

    def call(self, make: Callable[[], Awaitable[T]], what: str = "") -> T:
        if self.stopped.is_set():
            raise _Stopped()
        self._levels += 1
        name, after = f"{self._levels}: {what}", f"{self._levels - 1}: {self._what}" if self._levels > 1 else ""
        self._what = what

        async def run() -> T:
            with self.timeline.level(name, after=(after,)):
                return await make()

        future = asyncio.run_coroutine_threadsafe(run(), self.loop)
        with self._lock:
            self._pending.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise _Stopped() from None
        finally:
            with self._lock:
                self._pending.discard(future)

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.cancel()


class _StopWhenCancelled:
    """A gepa stop condition: true once the job is cancelled."""

    def __init__(self, bridge: _Bridge) -> None:
        self.bridge = bridge

    def __call__(self, _state: Any) -> bool:
        return self.bridge.stopped.is_set()


class _Log:
    def log(self, message: str) -> None:
        log.debug("%s", message)


# --------------------------------------------------------------------------- the adapter


@dataclass
class _Trajectory:
    example: Example
    outputs: Mapping[str, Any]
    trace: tuple[Any, ...]
    assessment: Assessment


class GepaAdapter:
    """What DSPy's ``DspyAdapter`` does, on our engine (see the module docstring)."""

    propose_new_texts: Any  # set in __init__ (gepa checks the attribute)

    def __init__(self, ctx: OptimizeContext, student: ModuleSpec, config: GepaConfig, bridge: _Bridge) -> None:
        self.ctx = ctx
        self.student = student
        self.config = config
        self.bridge = bridge
        self.rng = random.Random(config.seed)
        self.reflection_lm = lm_from_dict(config.reflection_lm)
        self.propose_new_texts = self._propose_new_texts
        #: Each successful run by (candidate texts, example): its outputs, score and trajectory. The engine
        #: evaluates a program on the same example again and again (a parent's minibatch, a child's
        #: minibatch then the valset); those runs' LM calls are in the journal, so running them again would
        #: only replay the same answers -- they are answered from here, with no trip to the event loop.
        self._runs: dict[tuple[tuple[tuple[str, str], ...], int], tuple[Any, float, _Trajectory]] = {}

    # -- programs

    def build(self, candidate: Mapping[str, str]) -> ModuleSpec:
        names = {view.name for view in program.predictors(self.student)}
        return program.updated(self.student, {
            name: PredictorUpdate(instructions=text) for name, text in candidate.items() if name in names
        })

    @staticmethod
    def _key(candidate: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(candidate.items()))

    async def _evaluate(self, batch: Sequence[Example], candidate: Mapping[str, str], capture_traces: bool) -> Any:
        module = self.build(candidate)
        runner = self.ctx.runner
        key = self._key(candidate)

        async def one(example: Example) -> tuple[Any, float, _Trajectory | None]:
            known = self._runs.get((key, id(example)))
            if known is not None:
                runner.progress.example_done()
                return known
            async with runner.slot():
                try:
                    run: Run = await runner.run(module, example)
                    assessment = await runner.assess(self.ctx.metric, example, run)  # type: ignore[arg-type]
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception as error:  # noqa: BLE001 - a failed example scores failure_score, as in DSPy
                    log.info("GEPA: a program run failed: %s", error)
                    return None, self.config.failure_score, None
            runner.progress.example_done()
            result = self._runs[(key, id(example))] = (
                dict(run.outputs), assessment.score, _Trajectory(example, run.outputs, run.trace, assessment))
            return result

        return self._batch(await asyncio.gather(*(one(example) for example in batch)), capture_traces)

    @staticmethod
    def _batch(results: Sequence[tuple[Any, float, _Trajectory | None]], capture_traces: bool) -> Any:
        return gepa.EvaluationBatch(
            outputs=[r[0] for r in results], scores=[r[1] for r in results],
            trajectories=[r[2] for r in results if r[2] is not None] if capture_traces else None,
        )

    def _known(self, batch: Sequence[Example], candidate: Mapping[str, str]) -> list[Any] | None:
        """The batch's remembered runs if every one of them is (no trip to the event loop), else None."""

        key = self._key(candidate)
        results = [self._runs.get((key, id(example))) for example in batch]
        return None if any(result is None for result in results) else results

    def _count(self, examples: int) -> None:
        progress = self.ctx.progress
        self.bridge.loop.call_soon_threadsafe(lambda: [progress.example_done() for _ in range(examples)])

    def evaluate(self, batch: Sequence[Example], candidate: dict[str, str], capture_traces: bool = False,
                 num_threads: int | None = None) -> Any:
        known = self._known(batch, candidate)
        if known is not None:
            self._count(len(known))
            return self._batch(known, capture_traces)
        return self.bridge.call(lambda: self._evaluate(batch, candidate, capture_traces),
                                f"evaluate on {len(batch)} examples")

    def batch_evaluate(self, items: Sequence[tuple[dict[str, str], list[Example]]], *,
                       capture_traces: bool = True) -> list[Any]:
        known = [self._known(batch, candidate) for candidate, batch in items]
        if all(results is not None for results in known):
            self._count(sum(len(results) for results in known))  # type: ignore[arg-type]
            return [self._batch(results, capture_traces) for results in known]  # type: ignore[arg-type]

        async def all_of() -> list[Any]:
            return list(await asyncio.gather(*(self._evaluate(batch, candidate, capture_traces)
                                               for candidate, batch in items)))

        return self.bridge.call(all_of, f"evaluate {len(items)} candidates")

    def get_adapter_state(self) -> dict[str, Any]:
        return {"rng_state": self.rng.getstate()}

    def set_adapter_state(self, state: dict[str, Any]) -> None:
        if "rng_state" in state:
            self.rng.setstate(state["rng_state"])

    # -- reflection

    def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: Any,
                                components_to_update: list[str]) -> dict[str, list[dict[str, Any]]]:
        signatures = {view.name: view.signature for view in program.predictors(self.build(candidate))}
        dataset: dict[str, list[dict[str, Any]]] = {}
        for name in components_to_update:
            target = signatures[name]
            same = {other for other, signature in signatures.items() if signature == target}
            items = []
            for trajectory in eval_batch.trajectories or []:
                calls = [step for step in trajectory.trace if step.predictor in same]
                if not calls:
                    continue
                chosen = self.rng.choice(calls)
                items.append({
                    "Inputs": dict(chosen.inputs),
                    "Generated Outputs": dict(chosen.outputs),
                    "Feedback": trajectory.assessment.feedback(name),
                })
            if not items:
                log.info("GEPA: no reflective examples for %s", name)
                continue
            dataset[name] = items
        if not dataset:
            raise ValueError("No valid predictions found for any module.")
        return dataset

    async def _propose(self, current: str, examples: list[dict[str, Any]]) -> str:
        spec = PredictSpec(predictor=PredictorSpec(signature=PROPOSE_INSTRUCTION, adapter="json"))
        async with self.ctx.runner.slot():
            prediction = await self.ctx.runner.engine.run(
                spec, {"current_instruction": current, "examples_with_feedback": examples},
                request_lm=self.reflection_lm,
            )
        draft = str(prediction.outputs.get("new_instruction") or "").strip()
        if not draft:
            raise ValueError("The reflection LM returned an empty instruction.")
        return draft

    def _propose_new_texts(self, candidate: dict[str, str], reflective_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
                           components_to_update: list[str]) -> dict[str, str]:
        results: dict[str, str] = {}
        for name in components_to_update:
            if name not in candidate or name not in reflective_dataset:
                continue
            examples = [dict(item) for item in reflective_dataset[name]]
            results[name] = self.bridge.call(lambda: self._propose(candidate[name], examples), f"reflect on {name}")
        return results


# --------------------------------------------------------------------------- progress and candidates


class _Progress:
    """gepa callbacks -> the job's progress and candidate records (run on the loop, waited for)."""

    def __init__(self, ctx: OptimizeContext, adapter: GepaAdapter, bridge: _Bridge, budget: int,
                 valset_size: int) -> None:
        self.ctx, self.adapter, self.bridge = ctx, adapter, bridge
        self.budget = budget
        self.valset_size = valset_size
        self.texts: dict[int, dict[str, str]] = {}

    def _update(self, **changes: Any) -> None:
        self.bridge.loop.call_soon_threadsafe(lambda: self.ctx.progress.update(**changes))

    def on_budget_updated(self, event: Mapping[str, Any]) -> None:
        self._update(metric_calls_used=event["metric_calls_used"], metric_calls_budget=self.budget)

    def on_candidate_selected(self, event: Mapping[str, Any]) -> None:
        self._update(phase="reflect", current_candidate=f"child of candidate {event['candidate_idx']}",
                     parent_candidate=f"candidate {event['candidate_idx']}")

    def on_merge_attempted(self, event: Mapping[str, Any]) -> None:
        parents = " and ".join(f"candidate {p}" for p in event["parent_ids"])
        self._update(phase="merge", current_candidate="merge", parent_candidate=parents)

    def on_pareto_front_updated(self, event: Mapping[str, Any]) -> None:
        self._update(pareto_front_size=len(set(event["new_front"])))

    def on_valset_evaluated(self, event: Mapping[str, Any]) -> None:
        index = int(event["candidate_idx"])
        texts = dict(event["candidate"])
        self.texts[index] = texts
        parents = [int(p) for p in event.get("parent_ids") or () if p is not None]
        changed = [] if not parents else sorted(
            name for name, text in texts.items() if self.texts.get(parents[0], {}).get(name) != text
        )
        scores = event["scores_by_val_id"]
        instance_scores = [float(scores[key]) for key in sorted(scores)]
        score = round(100 * float(event["average_score"]), 2)
        label = "seed" if index == 0 else ("merge" if len(parents) > 1 else "reflection") + f" {index}"
        candidate = Candidate(index, label, self.adapter.build(texts), score, parents=tuple(parents),
                              changed_predictors=tuple(changed), instance_scores=tuple(instance_scores))
        self.bridge.call(lambda: self.ctx.record_candidate(candidate), "record")
        self._update(current_candidate=label)
        self.bridge.loop.call_soon_threadsafe(self.ctx.progress.offer_score, score)
        if index == 0:
            self._update(pareto_front_size=1)


# --------------------------------------------------------------------------- the run


def _run_engine(adapter: GepaAdapter, progress: _Progress, config: GepaConfig, seed: dict[str, str],
                trainset: list[Example], valset: list[Example], budget: int) -> Any:
    return gepa.optimize(
        seed_candidate=seed, trainset=trainset, valset=valset, adapter=adapter,
        candidate_selection_strategy=config.candidate_selection_strategy,
        skip_perfect_score=config.skip_perfect_score,
        reflection_minibatch_size=config.reflection_minibatch_size,
        module_selector=config.component_selector, perfect_score=config.perfect_score,
        use_merge=config.use_merge, max_merge_invocations=config.max_merge_invocations,
        max_metric_calls=budget, stop_callbacks=[_StopWhenCancelled(adapter.bridge)],
        logger=_Log(), callbacks=[progress], track_best_outputs=False, display_progress_bar=False,
        raise_on_exception=True, seed=config.seed,
    )


async def run_gepa(ctx: OptimizeContext, student: ModuleSpec, config: GepaConfig) -> Outcome:
    trainset = [example for _, example in ctx.trainset]
    valset = [example for _, example in ctx.valset] if ctx.valset is not None else trainset
    views = program.predictors(student)
    budget = metric_budget(config, len(views), len(trainset), len(ctx.valset) if ctx.valset is not None else None)
    seed = {view.name: view.signature.effective_instructions for view in views}
    bridge = _Bridge(asyncio.get_running_loop())
    adapter = GepaAdapter(ctx, student, config, bridge)
    progress = _Progress(ctx, adapter, bridge, budget, len(valset))
    ctx.progress.update(phase="evaluate seed", metric_calls_budget=budget, metric_calls_used=0)
    # A thread of its own (not the loop's shared executor, which a long run would hold for its
    # whole length): the engine spends nearly all its time waiting for the loop.
    thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gepa-engine")
    worker = asyncio.get_running_loop().run_in_executor(
        thread, _run_engine, adapter, progress, config, seed, trainset, valset, budget)
    try:
        result = await asyncio.shield(worker)
    except asyncio.CancelledError:
        bridge.stop()
        try:
            await worker
        except BaseException:  # noqa: BLE001 - the job is cancelled; how the engine stopped does not matter
            pass
        raise
    finally:
        thread.shutdown(wait=False)
    bridge.timeline.log("GEPA", ctx.runner.num_threads)
    best = int(result.best_idx)
    best_score = round(100 * float(result.val_aggregate_scores[best]), 2)
    return Outcome(adapter.build(result.best_candidate), best_score, best)

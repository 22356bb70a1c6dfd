"""Modules that run another module several times: BestOfN, Refine and majority voting.

Each attempt runs with its own rollout id (``start + i``, where ``start`` is the enclosing rollout id
or 0) so that otherwise identical LM requests get distinct completions and cache entries, as in DSPy.
BestOfN and Refine also force ``temperature=1.0``, as DSPy does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..adapters.base import field_descriptions
from ..core.errors import DeadlineExceeded, DspyGrpcError, InvalidArgument
from ..core.signature import Field, Role, Signature, with_reasoning
from ..core.types import FLOAT, STR, dict_of, list_of
from .context import RunContext
from .metrics import LMJudgeMetric, Metric, Scored, describe, normalize_text, score
from .node import Node, join
from .predictor import NamedPredictor, call_predictor
from .spec import LMChoice, PredictorSpec

log = logging.getLogger("dspy_grpc_server.modules")


class ContextJudge:
    """Runs LM-judge metrics inside a request (their calls count in its usage and trace)."""

    def __init__(self, ctx: RunContext, name: str) -> None:
        self.ctx, self.name = ctx, name

    async def __call__(self, metric: LMJudgeMetric, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        signature = metric.judge.signature
        if metric.chain_of_thought:
            signature = with_reasoning(signature)
        judge = NamedPredictor(join(self.name, "reward.judge"), metric.judge, signature)
        return await call_predictor(judge, inputs, self.ctx, inputs_path="reward.judge.inputs")


def _recoverable(error: BaseException) -> bool:
    """Attempt failures BestOfN/Refine absorb (bad requests and the deadline end the run at once)."""

    return isinstance(error, DspyGrpcError) and not isinstance(error, (InvalidArgument, DeadlineExceeded))


class _Rollouts(Node):
    """Shared by BestOfN and Refine: attempts at temperature 1.0 scored by a reward metric."""

    def __init__(self, name: str, module: Node, n: int, reward: Metric, threshold: float,
                 fail_count: int | None) -> None:
        super().__init__(name)
        self.module = module
        self.n = n
        self.reward = reward
        self.threshold = threshold
        self.fail_count = fail_count

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return self.module.input_fields

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.module.output_names

    def predictors(self) -> list[NamedPredictor]:
        return self.module.predictors()

    def needs_caller_tools(self) -> tuple[str, ...]:
        return self.module.needs_caller_tools()

    def attempt_context(self, ctx: RunContext, rollout_id: int, **changes: Any) -> RunContext:
        overrides = replace(ctx.option_overrides, rollout_id=rollout_id, temperature=1.0)
        return ctx.scoped(option_overrides=overrides, trace=[], include_trace=True, **changes)

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        start = ctx.option_overrides.rollout_id or 0
        judge = ContextJudge(ctx, self.name)
        best: dict[str, Any] | None = None
        best_trace: list = []
        best_reward = -float("inf")
        fail_count = self.fail_count or self.n
        last_error: BaseException | None = None
        advice: dict[str, str] | None = None
        for idx in range(self.n):
            hints = self.hints(advice)
            attempt = self.attempt_context(ctx, start + idx, hints=ctx.hints if hints is None else hints)
            try:
                outputs = await self.module(inputs, attempt, path)
                last_calls = {step.predictor: step.outputs for step in attempt.trace}
                reward = await score(self.reward, inputs, Scored(outputs, last_calls), judge=judge)
            except Exception as error:
                if not _recoverable(error):
                    raise
                log.info("%s: attempt %d (rollout id %d) failed: %s", self.kind, idx + 1, start + idx, error)
                last_error = error
                if idx > fail_count:
                    raise
                fail_count -= 1
                continue
            if reward > best_reward:
                best, best_trace, best_reward = outputs, attempt.trace, reward
            if reward >= self.threshold or idx == self.n - 1:
                break
            advice = await self.advise(inputs, outputs, reward, attempt, ctx) or advice
        if best is None:
            assert last_error is not None
            raise last_error
        if ctx.include_trace:
            ctx.trace.extend(best_trace)
        return best

    def hints(self, advice: Mapping[str, str] | None) -> Mapping[str, str] | None:
        return None

    async def advise(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any], reward: float,
                     attempt: RunContext, ctx: RunContext) -> dict[str, str] | None:
        return None


class BestOfNNode(_Rollouts):
    kind = "best_of_n"


OFFER_FEEDBACK = Signature(
    (
        Field("program_code", Role.INPUT, STR, "The code of the program that we are analyzing"),
        Field("modules_defn", Role.INPUT, STR, "The definition of each module in the program, including its I/O"),
        Field("program_inputs", Role.INPUT, STR, "The inputs to the program that we are analyzing"),
        Field("program_trajectory", Role.INPUT, STR,
              "The trajectory of the program's execution, showing each module's I/O"),
        Field("program_outputs", Role.INPUT, STR, "The outputs of the program that we are analyzing"),
        Field("reward_code", Role.INPUT, STR, "The code of the reward function that we are analyzing"),
        Field("target_threshold", Role.INPUT, FLOAT, "The target threshold for the reward function"),
        Field("reward_value", Role.INPUT, FLOAT, "The reward value assigned to the program's outputs"),
        Field("module_names", Role.INPUT, list_of(STR),
              "The names of the modules in the program, for which we seek advice"),
        Field("discussion", Role.OUTPUT, STR, "Discussing blame of where each module went wrong, if it did"),
        Field("advice", Role.OUTPUT, dict_of(STR, STR),
              "For each module, describe very concretely, in this order: the specific scenarios in which it has "
              "made mistakes in the past and what each mistake was, followed by what it should do differently "
              "in that kind ofscenario in the future. If the module is not to blame, write N/A."),
    ),
    "In the discussion, assign blame to each module that contributed to the final reward being below the "
    "threshold, if\nany. Then, prescribe concrete advice of how the module should act on its future input when "
    "we retry the process, if\nit were to receive the same or similar inputs. If a module is not to blame, the "
    "advice should be N/A.\nThe module will not see its own history, so it needs to rely on entirely concrete "
    "and actionable advice from you\nto avoid the same mistake on the same or similar inputs.",
)


def _dumps(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def describe_modules(predictors: list[tuple[str, Signature]]) -> str:
    """The module definitions Refine shows its feedback step (DSPy's ``inspect_modules``)."""

    separator = "-" * 80
    parts = [separator]
    for name, signature in predictors:
        instructions = textwrap.dedent(signature.effective_instructions)
        instructions = ("\n" + "\t" * 2).join([""] + instructions.splitlines())
        parts.append(f"Module {name}")
        parts.append("\n\tInput Fields:")
        parts.append(("\n" + "\t" * 2).join([""] + field_descriptions(signature.input_fields).splitlines()))
        parts.append("\tOutput Fields:")
        parts.append(("\n" + "\t" * 2).join([""] + field_descriptions(signature.output_fields).splitlines()))
        parts.append(f"\tOriginal Instructions: {instructions}")
        parts.append(separator)
    return "\n".join(part.strip("\n") for part in parts)


class RefineNode(_Rollouts):
    """BestOfN plus DSPy's feedback step: after a low-reward attempt an LM assigns blame and gives each
    predictor advice, passed to the next attempt as a ``hint_`` input."""

    kind = "refine"

    def __init__(self, name: str, module: Node, n: int, reward: Metric, threshold: float,
                 fail_count: int | None, feedback_lm: LMChoice, program_code: str) -> None:
        super().__init__(name, module, n, reward, threshold, fail_count)
        self.feedback_lm = feedback_lm
        self.program_code = program_code
        prefix = join(name, "module")
        self.relative = {p.name: p.name[len(prefix) + 1:] if p.name.startswith(prefix + ".") else p.name
                         for p in module.predictors()}

    def hints(self, advice: Mapping[str, str] | None) -> Mapping[str, str] | None:
        if advice is None:
            return None
        return {full: str(advice.get(relative, "N/A")) for full, relative in self.relative.items()}

    def _feedback_lm(self, ctx: RunContext) -> LMChoice:
        if self.feedback_lm.is_set:
            return self.feedback_lm
        try:
            return ctx.lms.choose(LMChoice())
        except InvalidArgument as error:
            if error.reason != "NO_LM":
                raise
            first = self.module.predictors()[0]
            return first.spec.lm

    async def advise(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any], reward: float,
                     attempt: RunContext, ctx: RunContext) -> dict[str, str] | None:
        predictors = self.module.predictors()
        trajectory = [
            {"module_name": self.relative.get(step.predictor, step.predictor), "inputs": step.inputs,
             "outputs": step.outputs}
            for step in attempt.trace
            if step.predictor in self.relative
        ]
        values = {
            "program_code": self.program_code,
            "modules_defn": describe_modules([(self.relative[p.name], p.signature) for p in predictors]),
            "program_inputs": _dumps(dict(inputs)),
            "program_trajectory": _dumps(trajectory),
            "program_outputs": _dumps(dict(outputs)),
            "reward_code": describe(self.reward),
            "target_threshold": _dumps(self.threshold),
            "reward_value": _dumps(reward),
            "module_names": _dumps([self.relative[p.name] for p in predictors]),
        }
        spec = PredictorSpec(OFFER_FEEDBACK, lm=self._feedback_lm(ctx))
        feedback = NamedPredictor(join(self.name, "offer_feedback"), spec, OFFER_FEEDBACK)
        try:
            result = await call_predictor(feedback, values, ctx, validate=False)
        except Exception as error:
            if not _recoverable(error):
                raise
            log.info("refine: the feedback step failed: %s", error)
            return None
        advice = result.get("advice")
        return dict(advice) if isinstance(advice, Mapping) else None


class MajorityNode(Node):
    """``dspy.majority``: ``n`` runs of the module, the most common normalized ``field`` value wins (ties:
    the earliest run); values that normalize to nothing are ignored unless all do."""

    kind = "majority"

    def __init__(self, name: str, module: Node, n: int, field: str) -> None:
        super().__init__(name)
        self.module, self.n = module, n
        self.field = field or module.output_names[-1]

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return self.module.input_fields

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.module.output_names

    def predictors(self) -> list[NamedPredictor]:
        return self.module.predictors()

    def needs_caller_tools(self) -> tuple[str, ...]:
        return self.module.needs_caller_tools()

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        start = ctx.option_overrides.rollout_id or 0
        runs = [
            self.module(inputs, ctx.scoped(option_overrides=replace(ctx.option_overrides, rollout_id=start + i)), path)
            for i in range(self.n)
        ]
        completions = await gather_all(runs)
        return vote(completions, self.field)


def _normalized(value: Any) -> str | None:
    return normalize_text(value if isinstance(value, str) else json.dumps(value)) or None


def vote(completions: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """The first completion carrying the most common normalized ``field`` value."""

    normalized = [_normalized(c.get(field)) for c in completions]
    counted = [value for value in normalized if value is not None] or normalized
    counts: dict[str | None, int] = {}
    for value in counted:
        counts[value] = counts.get(value, 0) + 1
    winner = max(counts, key=lambda value: counts[value])
    return completions[normalized.index(winner)]


async def gather_all(runs: list) -> list[dict[str, Any]]:
    """Run concurrently; on the first failure cancel the rest and raise it."""

    tasks = [asyncio.ensure_future(run) for run in runs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

"""DSPy's ``COPRO``: coordinate ascent over each predictor's instructions and output prefix.

Every named predictor of the program takes part (graph steps, ReAct's ``react`` and
``extract.predict``, ...), in DSPy's order. The prefix belongs to the predictor's last output field;
when a module derives that field (ReAct's ``next_tool_args``) the proposed prefix cannot be stored
and only the instruction changes.

The prompt model first proposes ``breadth - 1`` instructions (one LM call with ``n = breadth - 1`` at
``init_temperature``) to which the current instruction is added. For ``depth`` rounds every new
candidate is scored on the trainset; the predictor then keeps its best candidate, and (except after
the last round) the prompt model sees the best attempts so far, worst first, and proposes
``breadth`` more. The best candidate overall wins (the first one on ties).

DSPy scores the candidates of a round one after another; here they are scored at the same time and
taken in DSPy's order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..core.signature import Signature, parse_signature
from ..modules.spec import ModuleSpec
from . import program
from .context import Candidate, OptimizeContext, Outcome
from .program import PredictorUpdate


@dataclass(frozen=True)
class CoproConfig:
    breadth: int = 10
    depth: int = 3
    init_temperature: float = 1.4


_PROPOSED = {
    "proposed_instruction": "The improved instructions for the language model",
    "proposed_prefix_for_output_field": (
        "The string at the end of the prompt, which will help the model start solving the task"
    ),
}


def _with_descriptions(signature: Signature, descriptions: dict[str, str]) -> Signature:
    for name, description in descriptions.items():
        signature = signature.with_field(name, description=description)
    return signature


#: DSPy's BasicGenerateInstruction.
BASIC_GENERATE_INSTRUCTION = _with_descriptions(
    parse_signature(
        "basic_instruction -> proposed_instruction, proposed_prefix_for_output_field",
        "You are an instruction optimizer for large language models. I will give you a ``signature`` of fields "
        "(inputs and outputs) in English. Your task is to propose an instruction that will lead a good language "
        "model to perform the task well. Don't be afraid to be creative.",
    ),
    {"basic_instruction": "The initial instructions before optimization", **_PROPOSED},
)

#: DSPy's GenerateInstructionGivenAttempts.
GENERATE_INSTRUCTION_GIVEN_ATTEMPTS = _with_descriptions(
    parse_signature(
        "attempted_instructions -> proposed_instruction, proposed_prefix_for_output_field",
        "You are an instruction optimizer for large language models. I will give some task instructions I've "
        "tried, along with their corresponding validation scores. The instructions are arranged in increasing "
        "order based on their scores, where higher scores indicate better quality.\n\nYour task is to propose a "
        "new instruction that will lead a good language model to perform the task even better. Don't be afraid "
        "to be creative.",
    ),
    _PROPOSED,
)


@dataclass
class _Scored:
    score: float
    module: ModuleSpec
    instruction: str
    prefix: str
    index: int


def _clean(text: object) -> str:
    return str(text or "").strip('"').strip()


class Copro:
    def __init__(self, ctx: OptimizeContext, config: CoproConfig) -> None:
        self.ctx = ctx
        self.config = config
        self._next_index = 0

    async def _propose(self, signature: Signature, inputs: dict, n: int) -> list[tuple[str, str]]:
        async with self.ctx.runner.slot():
            outputs = await self.ctx.runner.predict_n(signature, inputs, n=n, temperature=self.config.init_temperature)
        return [(o.get("proposed_instruction", ""), o.get("proposed_prefix_for_output_field", "")) for o in outputs]

    async def compile(self, student: ModuleSpec) -> Outcome:
        config, runner = self.config, self.ctx.runner
        views = program.predictors(student)
        candidates: dict[str, list[tuple[str, str]]] = {}
        for view in views:
            last = view.signature.output_fields[-1]
            basic = view.signature.effective_instructions
            proposals = await self._propose(BASIC_GENERATE_INSTRUCTION, {"basic_instruction": basic}, config.breadth - 1)
            candidates[view.name] = proposals + [(basic, last.effective_prefix)]
        all_candidates = {name: list(items) for name, items in candidates.items()}
        latest = candidates
        evaluated: dict[str, dict[tuple[str, str], _Scored]] = {view.name: {} for view in views}
        current = student
        for depth in range(config.depth):
            for view in views:
                pool = latest[view.name] if len(views) == 1 else all_candidates[view.name]
                last_name = view.signature.output_fields[-1].name
                modules = []
                for instruction, prefix in pool:
                    instruction, prefix = _clean(instruction), _clean(prefix)
                    update = PredictorUpdate(instructions=instruction, prefix=(last_name, prefix))
                    modules.append((instruction, prefix, program.updated(current, {view.name: update})))
                runner.progress.update(phase=f"search (depth {depth + 1}/{config.depth})")
                scores = await asyncio.gather(*(self._score(m) for _, _, m in modules))
                for (instruction, prefix, module), score in zip(modules, scores, strict=True):
                    index = self._next_index
                    self._next_index += 1
                    await self.ctx.record_candidate(Candidate(index, f"depth {depth + 1} #{index + 1}", module, score))
                    previous = evaluated[view.name].get((instruction, prefix))
                    if previous is None or previous.score < score:
                        evaluated[view.name][(instruction, prefix)] = _Scored(score, module, instruction, prefix, index)
                best = max(evaluated[view.name].values(), key=lambda c: c.score)
                current = program.updated(current, {view.name: PredictorUpdate(
                    instructions=best.instruction, prefix=(last_name, best.prefix))})
            if depth == config.depth - 1:
                break
            new: dict[str, list[tuple[str, str]]] = {}
            for view in views:
                ranked = sorted(evaluated[view.name].values(), key=lambda c: c.score, reverse=True)
                shortest = min(len(ranked), config.breadth)
                attempts = []
                for i in range(shortest - 1, -1, -1):
                    attempts += [f"Instruction #{shortest - i}: {ranked[i].instruction}",
                                 f"Prefix #{shortest - i}: {ranked[i].prefix}",
                                 f"Resulting Score #{shortest - i}: {ranked[i].score}"]
                new[view.name] = await self._propose(
                    GENERATE_INSTRUCTION_GIVEN_ATTEMPTS, {"attempted_instructions": attempts}, config.breadth
                )
                all_candidates[view.name].extend(new[view.name])
            latest = new
        final = sorted((c for items in evaluated.values() for c in items.values()), key=lambda c: c.score, reverse=True)
        best = final[0]
        return Outcome(best.module, best.score, best.index)

    async def _score(self, module: ModuleSpec) -> float:
        evaluation = await self.ctx.evaluate(module, self.ctx.trainset)
        self.ctx.progress.offer_score(evaluation.score)
        return evaluation.score


def planned_calls(trainset_size: int, config: CoproConfig) -> int:
    evaluations = config.breadth + (config.depth - 1) * config.breadth
    return evaluations * trainset_size + config.depth


async def run_copro(ctx: OptimizeContext, student: ModuleSpec, config: CoproConfig) -> Outcome:
    evaluations = (config.breadth + (config.depth - 1) * config.breadth) * len(program.predictors(student))
    ctx.progress.update(phase="propose", lm_calls_planned=planned_calls(len(ctx.trainset), config),
                        examples_total=evaluations * len(ctx.trainset))
    return await Copro(ctx, config).compile(student)

"""Single-predictor modules: Predict, ChainOfThought and MultiChainComparison."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..core.errors import invalid
from ..core.signature import Field, Role, with_reasoning
from ..core.types import ANY, STR, dict_of, list_of
from ..lm.types import LMOptions
from .context import RunContext
from .derive import mcc_signature
from .node import Node, join
from .predictor import NamedPredictor, call_predictor
from .spec import PredictorSpec


class PredictorNode(Node):
    """A module that is one predictor running a (possibly derived) signature."""

    def __init__(self, name: str, predictor: NamedPredictor) -> None:
        super().__init__(name)
        self.predictor = predictor

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return self.predictor.signature.input_fields

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.predictor.signature.output_fields)

    def predictors(self) -> list[NamedPredictor]:
        return [self.predictor]

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        return await call_predictor(self.predictor, inputs, ctx, inputs_path=path)


class PredictNode(PredictorNode):
    kind = "predict"

    def __init__(self, name: str, spec: PredictorSpec) -> None:
        # DSPy names a top-level Predict "self" and a Predict attribute by its attribute name.
        super().__init__(name, NamedPredictor(name or "self", spec, spec.signature))


class ChainOfThoughtNode(PredictorNode):
    kind = "chain_of_thought"

    def __init__(self, name: str, spec: PredictorSpec) -> None:
        super().__init__(name, NamedPredictor(join(name, "predict"), spec, with_reasoning(spec.signature)))


COMPLETIONS = "completions"


class MultiChainComparisonNode(Node):
    """Compares M attempts (each with ``rationale`` or ``reasoning`` and the last output field) and
    writes a corrected ``rationale`` and the outputs, as ``dspy.MultiChainComparison``."""

    kind = "multi_chain_comparison"

    def __init__(self, name: str, spec: PredictorSpec, m: int, temperature: float, generator: Node | None) -> None:
        super().__init__(name)
        self.m = m
        self.base = spec.signature
        self.last_key = spec.signature.output_fields[-1].name
        self.predictor = NamedPredictor(
            join(name, "predict"), spec, mcc_signature(spec.signature, m), config=LMOptions(temperature=temperature)
        )
        self.generator = generator

    @property
    def input_fields(self) -> tuple[Field, ...]:
        completions = Field(COMPLETIONS, Role.INPUT, list_of(dict_of(STR, ANY)))
        return self.base.input_fields + (completions,)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.predictor.signature.output_fields)

    def predictors(self) -> list[NamedPredictor]:
        return [self.predictor] + (self.generator.predictors() if self.generator else [])

    def needs_caller_tools(self) -> tuple[str, ...]:
        return self.generator.needs_caller_tools() if self.generator else ()

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        values = dict(inputs)
        completions = values.pop(COMPLETIONS, None)
        if completions is None:
            if self.generator is None:
                raise invalid(f"{path}.{COMPLETIONS}", f"is required: a list of {self.m} earlier predictions")
            completions = await self._generate(values, ctx, path)
        attempts = self._attempts(completions, f"{path}.{COMPLETIONS}")
        values.update({f"reasoning_attempt_{i + 1}": attempt for i, attempt in enumerate(attempts)})
        return await call_predictor(self.predictor, values, ctx, inputs_path=path)

    async def _generate(self, values: dict[str, Any], ctx: RunContext, path: str) -> list[dict[str, Any]]:
        assert self.generator is not None
        start = ctx.option_overrides.rollout_id or 0
        runs = [
            self.generator(values, ctx.scoped(option_overrides=replace(
                ctx.option_overrides, rollout_id=start + i, temperature=1.0)), path)
            for i in range(self.m)
        ]
        return list(await asyncio.gather(*runs))

    def _attempts(self, completions: Any, path: str) -> list[str]:
        if not isinstance(completions, list) or len(completions) != self.m:
            raise invalid(path, f"must be a list of exactly M={self.m} predictions")
        attempts = []
        for index, completion in enumerate(completions):
            if not isinstance(completion, Mapping):
                raise invalid(f"{path}[{index}]", "must be an object of output values")
            rationale = completion.get("rationale", completion.get("reasoning"))
            if not isinstance(rationale, str) or self.last_key not in completion:
                raise invalid(f"{path}[{index}]", f"needs 'rationale' (or 'reasoning') and {self.last_key!r}")
            rationale = rationale.strip().split("\n")[0].strip()
            answer = str(completion[self.last_key]).strip().split("\n")[0].strip()
            attempts.append(f"«I'm trying to {rationale} I'm not sure but my prediction is {answer}»")
        return attempts


"""Runs modules: the entry point the API layer (and in-process embedders) call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.errors import invalid
from ..core.signature import with_reasoning
from ..lm.deadline import Deadline
from ..lm.registry import LMRegistry
from .context import RunContext
from .lm_resolver import LMResolver
from .prediction import Prediction
from .predictor import NamedPredictor, RenderedPrompt, call_predictor, parse, render
from .spec import LMChoice, ModuleKind, ModuleSpec

#: The predictor names DSPy gives a top-level module of each kind.
PREDICTOR_NAMES = {ModuleKind.PREDICT: "self", ModuleKind.CHAIN_OF_THOUGHT: "predict"}


def named_predictors(module: ModuleSpec) -> list[NamedPredictor]:
    """The module's predictors, named and with the signatures they run, in DSPy's order."""

    signature = module.predictor.signature
    if module.kind is ModuleKind.CHAIN_OF_THOUGHT:
        signature = with_reasoning(signature)
    return [NamedPredictor(PREDICTOR_NAMES[module.kind], module.predictor, signature)]


def find_predictor(module: ModuleSpec, name: str, field: str = "predictor") -> NamedPredictor:
    predictors = named_predictors(module)
    if not name and len(predictors) == 1:
        return predictors[0]
    for predictor in predictors:
        if predictor.name == name:
            return predictor
    known = ", ".join(p.name for p in predictors)
    raise invalid(field, f"no predictor named {name!r}; this module has: {known}")


class Engine:
    """Runs :class:`ModuleSpec` s against the configured LMs. No gRPC here."""

    def __init__(self, registry: LMRegistry, *, default_model: str = "") -> None:
        self._registry = registry
        self._default_model = default_model

    def _resolver(self, request_lm: LMChoice | None) -> LMResolver:
        return LMResolver(self._registry, request_choice=request_lm or LMChoice(), default_model=self._default_model)

    async def run(
        self,
        module: ModuleSpec,
        inputs: Mapping[str, Any],
        *,
        request_lm: LMChoice | None = None,
        deadline: Deadline | None = None,
        include_trace: bool = False,
    ) -> Prediction:
        ctx = RunContext(lms=self._resolver(request_lm), deadline=deadline, include_trace=include_trace)
        (predictor,) = named_predictors(module)
        outputs = await call_predictor(predictor, inputs, ctx)
        return Prediction(
            outputs=outputs, usage=list(ctx.usage.values()), trace=ctx.trace, adapter_fallbacks=ctx.adapter_fallbacks
        )

    def render(self, module: ModuleSpec, inputs: Mapping[str, Any], *, predictor: str = "",
               adapter: str | None = None) -> tuple[str, RenderedPrompt]:
        """The prompt a predictor would send (no LM call); returns the predictor's name too."""

        named = find_predictor(module, predictor)
        supports_schema = True
        choice = named.spec.lm
        if choice.model:
            supports_schema = self._registry.config(choice.model).supports_json_schema
        return named.name, render(named, inputs, adapter_name=adapter, supports_json_schema=supports_schema)

    def parse(self, module: ModuleSpec, completion: str, *, predictor: str = "",
              adapter: str | None = None) -> tuple[str, dict[str, Any]]:
        named = find_predictor(module, predictor)
        name = adapter or named.spec.adapter
        return name, parse(named, completion, adapter_name=name)

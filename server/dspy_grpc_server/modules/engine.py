"""Runs modules: the entry point the API layer (and in-process embedders) call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.signature import with_reasoning
from ..lm.deadline import Deadline
from ..lm.registry import LMRegistry
from .context import RunContext
from .lm_resolver import LMResolver
from .prediction import Prediction
from .predictor import call_predictor
from .spec import LMChoice, ModuleKind, ModuleSpec

#: The predictor names DSPy gives a top-level module of each kind.
PREDICTOR_NAMES = {ModuleKind.PREDICT: "self", ModuleKind.CHAIN_OF_THOUGHT: "predict"}


class Engine:
    """Runs :class:`ModuleSpec` s against the configured LMs. No gRPC here."""

    def __init__(self, registry: LMRegistry, *, default_model: str = "") -> None:
        self._registry = registry
        self._default_model = default_model

    async def run(
        self,
        module: ModuleSpec,
        inputs: Mapping[str, Any],
        *,
        request_lm: LMChoice | None = None,
        deadline: Deadline | None = None,
        include_trace: bool = False,
    ) -> Prediction:
        resolver = LMResolver(
            self._registry, request_choice=request_lm or LMChoice(), default_model=self._default_model
        )
        ctx = RunContext(lms=resolver, deadline=deadline, include_trace=include_trace)
        signature = module.predictor.signature
        if module.kind is ModuleKind.CHAIN_OF_THOUGHT:
            signature = with_reasoning(signature)
        outputs = await call_predictor(
            PREDICTOR_NAMES[module.kind], module.predictor, signature, inputs, ctx
        )
        return Prediction(outputs=outputs, usage=list(ctx.usage.values()), trace=ctx.trace)

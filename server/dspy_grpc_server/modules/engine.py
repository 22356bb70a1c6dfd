"""Runs modules: the entry point the API layer (and in-process embedders) call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..core.errors import invalid
from ..lm.deadline import Deadline
from ..lm.registry import LMRegistry
from .build import build_module
from .context import DemoBootstrapper, RunContext
from .events import Event
from .lm_resolver import LMResolver
from .node import Node
from .prediction import Prediction
from .predictor import NamedPredictor, RenderedPrompt, call_predictor, parse, render
from .retrieval import Retrievers
from .spec import NO_CHOICE, LMChoice, ModuleSpec, PredictorSpec
from .tools import ToolRunner


def named_predictors(module: ModuleSpec | Node) -> list[NamedPredictor]:
    """The module's predictors, named as DSPy names them, in DSPy's order."""

    return Engine.build(module).predictors()


def find_predictor(node: Node, name: str, field: str = "predictor") -> NamedPredictor:
    """The predictor called ``name`` (DSPy's name, e.g. "generate.predict"); empty: the only one."""

    predictors = node.predictors()
    if not name and len(predictors) == 1:
        return predictors[0]
    for predictor in predictors:
        if predictor.name == name:
            return predictor
    known = ", ".join(p.name for p in predictors)
    if not name:
        raise invalid(field, f"this module has several predictors; name one of: {known}")
    raise invalid(field, f"no predictor named {name!r}; this module has: {known}")


class Engine:
    """Runs modules against the configured LMs. No gRPC here."""

    def __init__(self, registry: LMRegistry, *, default_model: str = "",
                 bootstrapper: DemoBootstrapper | None = None, retrievers: Retrievers | None = None) -> None:
        self._registry = registry
        self._default_model = default_model
        #: What KNNFewShot programs bootstrap their per-call demos with (given by the app layer).
        self.bootstrapper = bootstrapper
        #: What ``retrieve`` modules search (given by the app layer).
        self.retrievers = retrievers

    def _resolver(self, request_lm: LMChoice | None) -> LMResolver:
        return LMResolver(self._registry, request_choice=request_lm or NO_CHOICE, default_model=self._default_model)

    @staticmethod
    def build(module: ModuleSpec | Node, path: str = "module") -> Node:
        """The runtime tree of a module spec (checked: InvalidArgument names ``path``)."""

        return module if isinstance(module, Node) else build_module(module, path)

    async def run(
        self,
        module: ModuleSpec | Node,
        inputs: Mapping[str, Any],
        *,
        request_lm: LMChoice | None = None,
        deadline: Deadline | None = None,
        include_trace: bool = False,
        emit: Callable[[Event], None] | None = None,
        tools: ToolRunner | None = None,
    ) -> Prediction:
        node = self.build(module)
        ctx = RunContext(lms=self._resolver(request_lm), deadline=deadline, include_trace=include_trace,
                         emit=emit, tools=tools, bootstrapper=self.bootstrapper,
                         retrievers=self.retrievers)
        outputs = await node(inputs, ctx)
        return Prediction(
            outputs=outputs, usage=list(ctx.usage.values()), trace=ctx.trace, adapter_fallbacks=ctx.adapter_fallbacks
        )

    async def call(self, name: str, spec: PredictorSpec, inputs: Mapping[str, Any], *,
                   request_lm: LMChoice | None = None) -> dict[str, Any]:
        """One predictor call on values the server wrote itself (formatted as given, unvalidated, as
        DSPy's optimizers pass their prompts' inputs) -- e.g. SIMBA's OfferFeedback."""

        ctx = RunContext(lms=self._resolver(request_lm), bootstrapper=self.bootstrapper)
        return await call_predictor(NamedPredictor(name, spec, spec.signature), inputs, ctx, validate=False)

    def render(self, module: ModuleSpec | Node, inputs: Mapping[str, Any], *, predictor: str = "",
               adapter: str | None = None) -> tuple[str, RenderedPrompt]:
        """The prompt a predictor would send (no LM call); returns the predictor's name too."""

        named = find_predictor(self.build(module), predictor)
        supports_schema = True
        choice = named.spec.lm
        if choice.model:
            supports_schema = self._registry.config(choice.model).supports_json_schema
        return named.name, render(named, inputs, adapter_name=adapter, supports_json_schema=supports_schema)

    def parse(self, module: ModuleSpec | Node, completion: str, *, predictor: str = "",
              adapter: str | None = None) -> tuple[str, dict[str, Any]]:
        named = find_predictor(self.build(module), predictor)
        name = adapter or named.spec.adapter
        return name, parse(named, completion, adapter_name=name)

"""One predictor call: format with the adapter, call the LM, parse — DSPy's Predict.forward."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..adapters import Adapter, Message, get_adapter, normalize_demo, validate_inputs
from ..adapters.two_step import TwoStepAdapter
from ..core.errors import ParseError
from ..core.signature import Signature
from ..lm.types import LM, LMOptions, LMRequest, Usage
from .context import RunContext
from .prediction import AdapterFallback, TraceStep
from .spec import PredictorSpec

#: ChatAdapter retries a failed parse once with this adapter, as DSPy does.
FALLBACKS = {"chat": "json"}


@dataclass(frozen=True)
class NamedPredictor:
    """A predictor of a module, under the name DSPy gives it, with the signature it really runs
    (ChainOfThought's includes ``reasoning``)."""

    name: str
    spec: PredictorSpec
    signature: Signature


@dataclass(frozen=True)
class RenderedPrompt:
    messages: list[Message]
    options: LMOptions
    adapter: str


def _demos(predictor: NamedPredictor) -> list[dict[str, Any]]:
    return [normalize_demo(predictor.signature, demo.as_demo()) for demo in predictor.spec.demos]


def render(predictor: NamedPredictor, inputs: Mapping[str, Any], *, adapter_name: str | None = None,
           supports_json_schema: bool = True, inputs_path: str = "inputs") -> RenderedPrompt:
    """The messages and request options the predictor would send, without calling an LM."""

    name = adapter_name or predictor.spec.adapter
    adapter = get_adapter(name)
    values = validate_inputs(predictor.signature, inputs, field_path=inputs_path)
    demos = _demos(predictor)
    messages = adapter.format(predictor.signature, demos, values)
    extra = adapter.lm_options(predictor.signature, supports_json_schema=supports_json_schema)
    return RenderedPrompt(messages, replace(predictor.spec.lm.options, **extra), name)


def parse(predictor: NamedPredictor, completion: str, *, adapter_name: str | None = None) -> dict[str, Any]:
    """Typed outputs from a completion, as the predictor's (or the named) adapter parses it."""

    adapter = get_adapter(adapter_name or predictor.spec.adapter)
    if isinstance(adapter, TwoStepAdapter):
        return adapter.parse_extraction(predictor.signature, completion)
    return adapter.parse(predictor.signature, completion)


async def call_predictor(
    predictor: NamedPredictor, inputs: Mapping[str, Any], ctx: RunContext, *, inputs_path: str = "inputs"
) -> dict[str, Any]:
    """Run one predictor on ``inputs``: format, call the LM, parse (with DSPy's one fallback)."""

    spec, signature = predictor.spec, predictor.signature
    values = validate_inputs(signature, inputs, field_path=inputs_path)
    choice = ctx.lms.choose(spec.lm)
    lm = ctx.lms.lm_for(choice)
    demos = _demos(predictor)
    started = time.perf_counter()
    adapter_name = spec.adapter
    call = _Call(ctx, lm, choice.options, signature, demos, values)
    try:
        if adapter_name == "two_step":
            outputs, usage = await call.two_step(ctx.lms.lm_for(ctx.lms.choose(spec.extraction_lm)))
        else:
            outputs, usage = await call.single(get_adapter(adapter_name))
    except ParseError as error:
        if adapter_name not in FALLBACKS:
            raise
        fallback = FALLBACKS[adapter_name]
        ctx.adapter_fallbacks.append(AdapterFallback(predictor.name, adapter_name, fallback, error.message))
        adapter_name = fallback
        outputs, usage = await call.single(get_adapter(adapter_name))
    ctx.record_step(
        TraceStep(
            predictor=predictor.name, inputs=dict(values), outputs=dict(outputs), adapter=adapter_name,
            model=call.model, usage=usage, latency_s=time.perf_counter() - started,
        )
    )
    return outputs


class _Call:
    """The LM round trips of one predictor call; ``usage`` adds up over them."""

    def __init__(self, ctx: RunContext, lm: LM, options: LMOptions, signature: Signature,
                 demos: Sequence[Mapping[str, Any]], values: Mapping[str, Any]) -> None:
        self.ctx, self.lm, self.options = ctx, lm, options
        self.signature, self.demos, self.values = signature, demos, values
        self.model = lm.name
        self.usage = Usage()

    async def _complete(self, lm: LM, messages: list[Message], options: LMOptions) -> str:
        response = await lm.complete(LMRequest(tuple(messages), options), timeout=self.ctx.remaining())
        self.ctx.record_usage(response.model, response.usage)
        self.usage = self.usage + response.usage
        self.model = response.model
        return response.texts[0]

    async def single(self, adapter: Adapter) -> tuple[dict[str, Any], Usage]:
        messages = adapter.format(self.signature, self.demos, self.values)
        extra = adapter.lm_options(self.signature, supports_json_schema=self.lm.supports_json_schema)
        text = await self._complete(self.lm, messages, replace(self.options, **extra))
        return adapter.parse(self.signature, text), self.usage

    async def two_step(self, extraction_lm: LM) -> tuple[dict[str, Any], Usage]:
        adapter = TwoStepAdapter()
        answer = await self._complete(self.lm, adapter.format(self.signature, self.demos, self.values), self.options)
        extracted = await self._complete(
            extraction_lm, adapter.extraction_messages(self.signature, answer), LMOptions()
        )
        return adapter.parse_extraction(self.signature, extracted), self.usage

"""One predictor call: format with the adapter, call the LM, parse — DSPy's Predict.forward."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..adapters import Adapter, Message, get_adapter, normalize_demo, validate_inputs
from ..adapters.two_step import TwoStepAdapter
from ..core import telemetry
from ..core.errors import ParseError
from ..core.signature import Signature
from ..lm.types import LM, NO_OPTIONS, LMOptions, LMRequest, Usage
from .context import RunContext
from .derive import with_hint
from .events import FieldDelta
from .prediction import AdapterFallback, TraceStep
from .spec import PredictorSpec
from .streaming import field_stream

#: ChatAdapter retries a failed parse once with this adapter, as DSPy does.
FALLBACKS = {"chat": "json"}
#: Predictor calls answered from the LM cache that are remembered (over all predictors; see _recall).
MAX_RECALLED = 4096


@dataclass(frozen=True)
class NamedPredictor:
    """A predictor of a module, under the name DSPy gives it, with the signature it really runs
    (ChainOfThought's includes ``reasoning``) and the demos it formats."""

    name: str
    spec: PredictorSpec
    signature: Signature
    #: Options this predictor forces on its LM calls (MultiChainComparison's temperature).
    config: LMOptions = NO_OPTIONS
    #: The signature completions are parsed with, when it differs (ReAct reads tool names leniently).
    parse_signature: Signature | None = None


@dataclass(frozen=True)
class RenderedPrompt:
    messages: list[Message]
    options: LMOptions
    adapter: str


def _demos(predictor: NamedPredictor, signature: Signature) -> list[dict[str, Any]]:
    return [normalize_demo(signature, demo.as_demo()) for demo in predictor.spec.demos]


def render(predictor: NamedPredictor, inputs: Mapping[str, Any], *, adapter_name: str | None = None,
           supports_json_schema: bool = True, inputs_path: str = "inputs") -> RenderedPrompt:
    """The messages and request options the predictor would send, without calling an LM."""

    name = adapter_name or predictor.spec.adapter
    adapter = get_adapter(name)
    values = validate_inputs(predictor.signature, inputs, field_path=inputs_path)
    messages = adapter.format(predictor.signature, _demos(predictor, predictor.signature), values)
    extra = adapter.lm_options(predictor.signature, supports_json_schema=supports_json_schema)
    options = predictor.config.merged_over(predictor.spec.lm.options)
    return RenderedPrompt(messages, replace(options, **extra), name)


def parse(predictor: NamedPredictor, completion: str, *, adapter_name: str | None = None) -> dict[str, Any]:
    """Typed outputs from a completion, as the predictor's (or the named) adapter parses it."""

    adapter = get_adapter(adapter_name or predictor.spec.adapter)
    signature = predictor.parse_signature or predictor.signature
    if isinstance(adapter, TwoStepAdapter):
        return adapter.parse_extraction(signature, completion)
    return adapter.parse(signature, completion)


async def call_predictor(
    predictor: NamedPredictor, inputs: Mapping[str, Any], ctx: RunContext, *, inputs_path: str = "inputs",
    validate: bool = True,
) -> dict[str, Any]:
    """Run one predictor on ``inputs``: format, call the LM, parse (with DSPy's one fallback).

    ``validate=False`` formats the values as given (for prompts the server itself fills in)."""

    attributes = {"dspy.predictor": predictor.name, "dspy.adapter": predictor.spec.adapter}
    with telemetry.span(f"dspy.predictor {predictor.name}", attributes):
        return await _call_predictor(predictor, inputs, ctx, inputs_path, validate)


@dataclass(slots=True)
class _Recalled:
    #: Held so that its id, part of the key, is not reused while the entry lives.
    predictor: NamedPredictor
    #: The LM cache key the call's one request was answered under, and what it parsed to.
    cache_key: str
    outputs: dict[str, Any]


#: A predictor call (predictor, adapter, LM, options, input values) that was answered from the LM
#: cache, by what it would send and parse again: the next identical call asks the LM cache for that
#: key straight away (``LM.recall``), without validating, formatting, hashing the prompt or parsing.
#: Only the cache's own answer counts: when it no longer holds the key, the call runs in full.
_recalled: dict[tuple[Any, ...], _Recalled] = {}


def _recall_key(predictor: NamedPredictor, adapter: str, lm: LM, options: LMOptions, ctx: RunContext,
                given: dict[str, Any], validate: bool) -> tuple[Any, ...] | None:
    """The key a call is remembered under, or None when it may not be: streamed (its deltas), traced
    (its steps and spans), with Refine's hints, two-step, an LM without a cache. (Unhashable values or
    options are found at the lookup.)"""

    if (not lm.recalls or ctx.streaming or ctx.include_trace or ctx.hints is not None or adapter == "two_step"
            or telemetry.current().tracing):
        return None
    return (id(predictor), adapter, lm, options, validate, tuple(given.items()))


async def _call_predictor(predictor: NamedPredictor, inputs: Mapping[str, Any], ctx: RunContext,
                          inputs_path: str, validate: bool) -> dict[str, Any]:
    spec = predictor.spec
    signature = predictor.signature
    parse_signature = predictor.parse_signature or signature
    given = dict(inputs)
    choice = ctx.lms.choose(spec.lm)
    lm = ctx.lms.lm_for(choice)
    options = predictor.config.merged_over(ctx.option_overrides.merged_over(choice.options))
    adapter_name = spec.adapter
    recall_key = _recall_key(predictor, adapter_name, lm, options, ctx, given, validate)
    if recall_key is not None:
        try:
            recalled = _recalled.get(recall_key)
        except TypeError:  # input values or options that cannot be hashed: not remembered
            recall_key = recalled = None
        if recalled is not None:
            ctx.remaining()  # a call whose deadline has passed fails as it would in full
            response = await lm.recall(recalled.cache_key, options)
            if response is not None:
                ctx.record_usage(response.model, response.usage)
                return dict(recalled.outputs)
            _recalled.pop(recall_key, None)
    if ctx.hints is not None:  # Refine's retry with advice
        signature, parse_signature = with_hint(signature), with_hint(parse_signature)
        given["hint_"] = ctx.hints.get(predictor.name, "N/A")
    values = validate_inputs(signature, given, field_path=inputs_path) if validate else given
    started = time.perf_counter()
    call = _Call(ctx, predictor.name, lm, options, signature, parse_signature,
                 _demos(predictor, signature), values)
    try:
        if adapter_name == "two_step":
            outputs = await call.two_step(ctx.lms.lm_for(ctx.lms.choose(spec.extraction_lm)))
        else:
            outputs = await call.single(adapter_name, stream=ctx.streaming)
    except ParseError as error:
        if adapter_name not in FALLBACKS:
            raise
        fallback = FALLBACKS[adapter_name]
        ctx.adapter_fallbacks.append(AdapterFallback(predictor.name, adapter_name, fallback, error.message))
        adapter_name = fallback
        outputs = await call.single(adapter_name, stream=False)
    if recall_key is not None and call.calls == 1 and call.cache_key and adapter_name == spec.adapter:
        _remember(recall_key, _Recalled(predictor, call.cache_key, dict(outputs)))
    if ctx.include_trace:
        ctx.record_step(
            TraceStep(
                predictor=predictor.name, inputs=dict(values), outputs=dict(outputs), adapter=adapter_name,
                model=call.model, usage=call.usage, latency_s=time.perf_counter() - started,
                lm_call_ids=tuple(call.call_ids), cache_hit=call.calls > 0 and call.cache_hits == call.calls,
            )
        )
    return outputs


def _remember(key: tuple[Any, ...], recalled: _Recalled) -> None:
    if key not in _recalled and len(_recalled) >= MAX_RECALLED:
        del _recalled[next(iter(_recalled))]  # the oldest
    _recalled[key] = recalled


class _Call:
    """The LM round trips of one predictor call; ``usage`` adds up over them."""

    def __init__(self, ctx: RunContext, name: str, lm: LM, options: LMOptions, signature: Signature,
                 parse_signature: Signature, demos: Sequence[Mapping[str, Any]], values: Mapping[str, Any]) -> None:
        self.ctx, self.name, self.lm, self.options = ctx, name, lm, options
        self.signature, self.parse_signature = signature, parse_signature
        self.demos, self.values = demos, values
        self.model = lm.name
        self.usage = Usage()
        self.call_ids: list[str] = []
        self.calls = 0
        self.cache_hits = 0
        #: The LM cache key of the last answer, when it came from the cache.
        self.cache_key = ""

    def _record(self, model: str, usage: Usage, call_id: str, cache_hit: bool) -> None:
        self.ctx.record_usage(model, usage)
        self.usage = self.usage + usage
        self.model = model or self.model
        self.calls += 1
        self.cache_hits += int(cache_hit)
        if call_id:
            self.call_ids.append(call_id)

    async def _complete(self, lm: LM, messages: list[Message], options: LMOptions) -> str:
        response = await lm.complete(LMRequest(tuple(messages), options), timeout=self.ctx.remaining())
        self._record(response.model, response.usage, response.response_id, response.cache_hit)
        self.cache_key = response.cache_key
        return response.text

    async def _stream(self, lm: LM, messages: list[Message], options: LMOptions, adapter: str) -> str:
        """The completion, streamed: output field deltas are sent as they arrive (none on a cache hit)."""

        fields = field_stream(adapter, [f.name for f in self.parse_signature.output_fields])
        parts: list[str] = []
        usage, model, cache_hit = Usage(), "", False
        async for chunk in lm.stream_chunks(LMRequest(tuple(messages), options), timeout=self.ctx.remaining()):
            cache_hit = cache_hit or chunk.cache_hit
            if chunk.text:
                parts.append(chunk.text)
                if fields is not None and not cache_hit:
                    self._send(fields.feed(chunk.text))
            if chunk.usage is not None:
                usage = chunk.usage
            model = chunk.model or model
        if fields is not None and not cache_hit:
            self._send(fields.close())
        self._record(model or lm.name, usage, "", cache_hit)
        return "".join(parts)

    def _send(self, deltas: list[tuple[str, str, bool]]) -> None:
        for name, text, last in deltas:
            self.ctx.send(FieldDelta(self.name, name, text, last))

    async def single(self, adapter_name: str, *, stream: bool) -> dict[str, Any]:
        """One adapter round trip: a ``dspy.adapter`` span holding its format step, the LM request
        and its parse step, in that order."""

        adapter: Adapter = get_adapter(adapter_name)
        attributes = {"dspy.adapter": adapter_name}
        with telemetry.span(f"dspy.adapter {adapter_name}", attributes):
            with telemetry.span("dspy.adapter.format", attributes):
                messages = adapter.format(self.signature, self.demos, self.values)
                extra = adapter.lm_options(self.signature, supports_json_schema=self.lm.supports_json_schema)
            options = replace(self.options, **extra) if extra else self.options
            if stream:
                text = await self._stream(self.lm, messages, options, adapter_name)
            else:
                text = await self._complete(self.lm, messages, options)
            with telemetry.span("dspy.adapter.parse", attributes):
                return adapter.parse(self.parse_signature, text)

    async def two_step(self, extraction_lm: LM) -> dict[str, Any]:
        adapter = TwoStepAdapter()
        attributes = {"dspy.adapter": "two_step"}
        with telemetry.span("dspy.adapter two_step", attributes):
            with telemetry.span("dspy.adapter.format", attributes):
                messages = adapter.format(self.signature, self.demos, self.values)
            answer = await self._complete(self.lm, messages, self.options)
            with telemetry.span("dspy.adapter.format", attributes):
                extraction = adapter.extraction_messages(self.parse_signature, answer)
            extracted = await self._complete(extraction_lm, extraction, LMOptions())
            with telemetry.span("dspy.adapter.parse", attributes):
                return adapter.parse_extraction(self.parse_signature, extracted)

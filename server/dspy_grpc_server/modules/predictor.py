"""One predictor call: format with the adapter, call the LM, parse — DSPy's Predict.forward."""

from __future__ import annotations

import time
from dataclasses import replace
from collections.abc import Mapping
from typing import Any

from ..adapters import get_adapter, validate_inputs
from ..core.errors import ParseError
from ..core.signature import Signature
from ..lm.types import LMOptions, LMRequest
from .context import RunContext
from .prediction import TraceStep
from .spec import PredictorSpec

#: ChatAdapter retries a failed parse once with this adapter, as DSPy does.
FALLBACK_ADAPTER = "json"


async def call_predictor(
    name: str,
    spec: PredictorSpec,
    signature: Signature,
    inputs: Mapping[str, Any],
    ctx: RunContext,
    *,
    inputs_path: str = "inputs",
) -> dict[str, Any]:
    """Run ``spec`` with ``signature`` (the spec's, possibly extended by the module) on ``inputs``."""

    values = validate_inputs(signature, inputs, field_path=inputs_path)
    choice = ctx.lms.choose(spec.lm)
    lm = ctx.lms.lm_for(choice)
    demos = [demo.as_demo() for demo in spec.demos]
    started = time.perf_counter()
    adapter_name = spec.adapter
    try:
        outputs, model, usage = await _attempt(adapter_name, signature, demos, values, lm, choice.options, ctx)
    except ParseError:
        if adapter_name != "chat":
            raise
        adapter_name = FALLBACK_ADAPTER
        outputs, model, usage = await _attempt(adapter_name, signature, demos, values, lm, choice.options, ctx)
    ctx.record_step(
        TraceStep(
            predictor=name,
            inputs=dict(values),
            outputs=dict(outputs),
            adapter=adapter_name,
            model=model,
            usage=usage,
            latency_s=time.perf_counter() - started,
        )
    )
    return outputs


async def _attempt(adapter_name, signature, demos, values, lm, options: LMOptions, ctx: RunContext):
    adapter = get_adapter(adapter_name)
    messages = adapter.format(signature, demos, values)
    extra = adapter.lm_options(signature)
    request = LMRequest(messages=tuple(messages), options=replace(options, **extra))
    response = await lm.complete(request, timeout=ctx.remaining())
    ctx.record_usage(response.model, response.usage)
    return adapter.parse(signature, response.texts[0]), response.model, response.usage


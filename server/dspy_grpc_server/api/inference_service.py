"""InferenceService: translation between requests and :class:`~..app.inference.Inference`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc

from ..app.caller_tools import CallerTools
from ..app.inference import Inference, ProgramRef
from ..core.bounds import TOOL_TIMEOUT_S
from ..core.errors import DspyGrpcError, invalid
from ..modules.spec import NO_CHOICE, LMChoice, ModuleSpec
from .convert import (
    adapter_from_proto,
    lm_from_proto,
    module_from_proto,
    prediction_to_proto,
    program_ref,
    rendered_prompt_to_proto,
    json_object,
    struct_to_dict,
    values_fields,
    values_of,
)
from .deadlines import deadline_of
from .stream_convert import batch_item_to_proto, event_to_proto, tool_output

log = logging.getLogger("dspy_grpc_server.api")


class InferenceService(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, inference: Inference) -> None:
        self._inference = inference

    async def Predict(self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext):
        result = await self._inference.predict(
            _target(request),
            _inputs(request),
            request_lm=_request_lm(request),
            deadline=deadline_of(context),
            include_trace=request.include_trace,
        )
        response = inference_pb2.PredictResponse()
        prediction_to_proto(result.prediction, program_id=result.program_id, revision_id=result.revision_id,
                            into=response.prediction)
        return response

    async def RenderPrompt(self, request: inference_pb2.RenderPromptRequest, context: grpc.aio.ServicerContext):
        predictor, rendered = await self._inference.render_prompt(
            _target(request),
            _inputs(request),
            predictor=request.predictor,
            adapter=adapter_from_proto(request.adapter),
        )
        return rendered_prompt_to_proto(predictor, rendered)

    async def ParseCompletion(self, request: inference_pb2.ParseCompletionRequest, context: grpc.aio.ServicerContext):
        adapter, outputs = await self._inference.parse_completion(
            _target(request), request.completion, predictor=request.predictor,
            adapter=adapter_from_proto(request.adapter),
        )
        return inference_pb2.ParseCompletionResponse(**values_fields("outputs", outputs), adapter=adapter)

    async def StreamPredict(self, request: inference_pb2.StreamPredictRequest, context: grpc.aio.ServicerContext):
        events = self._inference.stream_predict(
            _target(request), _inputs(request), request_lm=_request_lm(request),
            deadline=deadline_of(context), include_trace=request.include_trace,
        )
        async with _closing(events):
            async for item in events:
                yield event_to_proto(item)

    async def BatchPredict(self, request: inference_pb2.BatchPredictRequest, context: grpc.aio.ServicerContext):
        if request.max_concurrency < 0:
            raise invalid("max_concurrency", "must not be negative")
        items = self._inference.batch_predict(
            _target(request), _batch_inputs(request),
            request_lm=_request_lm(request), deadline=deadline_of(context), include_trace=request.include_trace,
            max_concurrency=request.max_concurrency,
        )
        async with _closing(items):
            async for item in items:
                yield batch_item_to_proto(item)

    async def Run(self, request_iterator: AsyncIterator[inference_pb2.RunRequest], context: grpc.aio.ServicerContext):
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("message") != "start":
            raise invalid("start", "the first message of Run must be start")
        start = first.start
        if not start.HasField("request"):
            raise invalid("start.request", "is required")
        request = start.request
        queue: asyncio.Queue = asyncio.Queue()
        timeout = None
        if start.HasField("tool_timeout"):
            timeout = start.tool_timeout.seconds + start.tool_timeout.nanos / 1e9
            if timeout <= 0:
                raise invalid("start.tool_timeout", "must be positive")
            TOOL_TIMEOUT_S.check(timeout, "start.tool_timeout")
        tools = CallerTools(start.tools, queue.put_nowait, timeout_s=timeout)
        events = self._inference.stream_predict(
            _target(request, "start.request."), _inputs(request, "start.request."),
            request_lm=_request_lm(request, "start.request."),
            deadline=deadline_of(context), include_trace=request.include_trace, tools=tools, extra_events=queue,
        )
        # Started once nothing above can fail, so that it is always cancelled and awaited below.
        reader = asyncio.ensure_future(_read_tool_results(request_iterator, tools))
        try:
            async with _closing(events):
                async for item in events:
                    yield event_to_proto(item)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def _read_tool_results(requests: AsyncIterator[inference_pb2.RunRequest], tools: CallerTools) -> None:
    """Hand the caller's tool results to the waiting calls."""

    index = 0
    try:
        async for message in requests:
            index += 1
            if not _take_tool_result(message, index, tools):
                return
    except DspyGrpcError as error:  # a message that could not be decoded (MALFORMED_REQUEST)
        tools.fail(error)


def _take_tool_result(message: inference_pb2.RunRequest, index: int, tools: CallerTools) -> bool:
    """Hand one tool result on; False (after failing the tools) when the message breaks the protocol."""

    if message.WhichOneof("message") != "tool_result":
        tools.fail(invalid(f"messages[{index}]", "after start, Run accepts only tool_result messages"))
        return False
    result = message.tool_result
    error = result.error if result.WhichOneof("outcome") == "error" else None
    output = tool_output(result, f"messages[{index}].tool_result") if error is None else None
    if not tools.answer(result.call_id, output=output, error=error):
        log.info("Run: ignoring a result for call %r, which is not waiting", result.call_id)
    return True


class _closing:
    """Close an async generator when the block ends (a cancelled call cancels the run it streams)."""

    def __init__(self, generator) -> None:
        self._generator = generator

    async def __aenter__(self):
        return self._generator

    async def __aexit__(self, *exc: object) -> None:
        await self._generator.aclose()


def _request_lm(request, prefix: str = "") -> LMChoice:
    return lm_from_proto(request.lm, f"{prefix}lm") if request.HasField("lm") else NO_CHOICE


def _inputs(request, prefix: str = "") -> dict:
    """A request's input values: `inputs_json` exactly when set, else the `inputs` Struct."""

    return values_of(request.inputs, request.inputs_json, f"{prefix}inputs")


def _batch_inputs(request: inference_pb2.BatchPredictRequest) -> list[dict]:
    if request.inputs and request.inputs_json:
        raise invalid("inputs_json", "give either inputs or inputs_json, not both")
    if request.inputs_json:
        return [json_object(text, f"inputs_json[{index}]") for index, text in enumerate(request.inputs_json)]
    return [struct_to_dict(values, f"inputs[{index}]") for index, values in enumerate(request.inputs)]


def _target(request, prefix: str = "") -> ProgramRef | ModuleSpec:
    """The program or inline module a request names (its `target` oneof)."""

    kind = request.WhichOneof("target")
    if kind == "program":
        return program_ref(request.program, f"{prefix}program")
    if kind == "module":
        return module_from_proto(request.module, f"{prefix}module")
    raise invalid(f"{prefix}target", "set program (\"programs/qa\") or module (an inline module spec)")


"""Driving StreamPredict, Run (tools executed here) and BatchPredict for both clients."""

from __future__ import annotations

import asyncio
import inspect
import queue
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import duration_pb2

from .errors import DspyGrpcError, from_item_error, from_rpc_error
from .results import Prediction
from .streaming import StreamEvent, event_from_proto, tool_error_text
from .tools import Tool
from .v1 import inference_pb2
from .values import exact_or, to_json

__all__ = [
    "stream_sync", "stream_async", "run_sync", "run_async", "last_prediction", "alast_prediction",
    "batch_request", "batch_results",
]


def stream_request(request: inference_pb2.PredictRequest) -> inference_pb2.StreamPredictRequest:
    """The StreamPredictRequest with the same target, inputs, LM and trace flag."""

    streamed = inference_pb2.StreamPredictRequest(
        inputs=request.inputs, inputs_json=request.inputs_json, include_trace=request.include_trace
    )
    if request.HasField("lm"):
        streamed.lm.CopyFrom(request.lm)
    if request.WhichOneof("target") == "program":
        streamed.program = request.program
    else:
        streamed.module.CopyFrom(request.module)
    return streamed


def start_message(
    request: inference_pb2.PredictRequest, tools: Mapping[str, Tool], tool_timeout: float | None
) -> inference_pb2.RunRequest:
    start = inference_pb2.RunStart(request=request, tools=list(tools))
    if tool_timeout is not None:
        start.tool_timeout.CopyFrom(duration_pb2.Duration(seconds=int(tool_timeout), nanos=int(tool_timeout % 1 * 1e9)))
    return inference_pb2.RunRequest(start=start)


# ------------------------------------------------------------------------------------------ blocking


def stream_sync(call: Any, output_types: Mapping[str, Any] | None) -> Iterator[StreamEvent]:
    """Events of a StreamPredict call; the prediction comes last, once the call has ended cleanly."""

    final = None
    try:
        for message in call:
            event = event_from_proto(message, output_types)
            if isinstance(event, Prediction):
                final = event
            elif event is not None:
                yield event
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    finally:
        call.cancel()  # a no-op once the call has ended; stops the run when the caller stops early
    if final is not None:
        yield final


def run_sync(
    start_call: Any, start: inference_pb2.RunRequest, tools: Mapping[str, Tool],
    output_types: Mapping[str, Any] | None,
) -> Iterator[StreamEvent]:
    """Events of a Run call; each ``tool_call`` is answered by running the tool in this thread."""

    outbox: queue.Queue[inference_pb2.RunRequest | None] = queue.Queue()
    outbox.put(start)

    def requests() -> Iterator[inference_pb2.RunRequest]:
        while (item := outbox.get()) is not None:
            yield item

    call = start_call(requests())
    final = None
    try:
        for message in call:
            if message.WhichOneof("event") == "tool_call":
                outbox.put(_result(message.tool_call, tools, _call_tool_sync))
                continue
            event = event_from_proto(message, output_types)
            if isinstance(event, Prediction):
                final = event
                outbox.put(None)  # half-close: nothing more to send
            elif event is not None:
                yield event
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    finally:
        outbox.put(None)
        call.cancel()
    if final is not None:
        yield final


def _call_tool_sync(tool: Tool, args: dict[str, Any]) -> Any:
    result = tool.func(**args)  # type: ignore[misc]
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def last_prediction(events: Iterator[StreamEvent]) -> Prediction:
    prediction = None
    for event in events:
        prediction = event
    if not isinstance(prediction, Prediction):  # pragma: no cover - the server always ends with one
        raise RuntimeError("the stream ended without a prediction")
    return prediction


# ------------------------------------------------------------------------------------------- asyncio


async def stream_async(call: Any, output_types: Mapping[str, Any] | None) -> AsyncIterator[StreamEvent]:
    """Events of a StreamPredict call (asyncio)."""

    final = None
    try:
        async for message in call:
            event = event_from_proto(message, output_types)
            if isinstance(event, Prediction):
                final = event
            elif event is not None:
                yield event
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    finally:
        call.cancel()
    if final is not None:
        yield final


async def run_async(
    call: Any, start: inference_pb2.RunRequest, tools: Mapping[str, Tool], output_types: Mapping[str, Any] | None,
) -> AsyncIterator[StreamEvent]:
    """Events of a Run call (asyncio); coroutine tools are awaited, plain ones called directly."""

    final = None
    try:
        await call.write(start)
        async for message in call:
            if message.WhichOneof("event") == "tool_call":
                await call.write(await _result_async(message.tool_call, tools))
                continue
            event = event_from_proto(message, output_types)
            if isinstance(event, Prediction):
                final = event
                await call.done_writing()
            elif event is not None:
                yield event
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    finally:
        call.cancel()
    if final is not None:
        yield final


async def alast_prediction(events: AsyncIterator[StreamEvent]) -> Prediction:
    prediction = None
    async for event in events:
        prediction = event
    if not isinstance(prediction, Prediction):  # pragma: no cover - the server always ends with one
        raise RuntimeError("the stream ended without a prediction")
    return prediction


# --------------------------------------------------------------------------------------------- tools


def _result(call: inference_pb2.ToolCall, tools: Mapping[str, Tool], run: Any) -> inference_pb2.RunRequest:
    tool = tools.get(call.tool)
    try:
        if tool is None:
            raise ValueError(f"this client has no tool {call.tool!r} (it runs: {', '.join(tools)})")
        output = run(tool, tool.prepare(exact_or(call.args_json, call.args)))
    except Exception as error:  # noqa: BLE001 - a failing tool is the agent's observation, as in DSPy
        return _tool_error(call, error)
    return _tool_output(call, output)


async def _result_async(call: inference_pb2.ToolCall, tools: Mapping[str, Tool]) -> inference_pb2.RunRequest:
    tool = tools.get(call.tool)
    try:
        if tool is None:
            raise ValueError(f"this client has no tool {call.tool!r} (it runs: {', '.join(tools)})")
        output = tool.func(**tool.prepare(exact_or(call.args_json, call.args)))  # type: ignore[misc]
        if inspect.isawaitable(output):
            output = await output
    except Exception as error:  # noqa: BLE001
        return _tool_error(call, error)
    return _tool_output(call, output)


def _tool_output(call: inference_pb2.ToolCall, output: Any) -> inference_pb2.RunRequest:
    try:
        text = to_json(output)
    except (TypeError, ValueError):
        text = to_json(str(output))  # an object with no JSON form is observed as its text
    return inference_pb2.RunRequest(tool_result=inference_pb2.ToolResult(call_id=call.call_id, output_json=text))


def _tool_error(call: inference_pb2.ToolCall, error: BaseException) -> inference_pb2.RunRequest:
    return inference_pb2.RunRequest(
        tool_result=inference_pb2.ToolResult(call_id=call.call_id, error=tool_error_text(error))
    )


# --------------------------------------------------------------------------------------------- batch


def batch_request(
    request: inference_pb2.PredictRequest, items: Sequence[Mapping[str, Any]], max_concurrency: int
) -> inference_pb2.BatchPredictRequest:
    """A BatchPredictRequest with ``request``'s target, LM and trace flag, one JSON object per item."""

    batch = inference_pb2.BatchPredictRequest(
        inputs_json=[to_json(item) for item in items], include_trace=request.include_trace,
        max_concurrency=max_concurrency,
    )
    if request.HasField("lm"):
        batch.lm.CopyFrom(request.lm)
    if request.WhichOneof("target") == "program":
        batch.program = request.program
    else:
        batch.module.CopyFrom(request.module)
    return batch


def batch_results(
    responses: Iterable[inference_pb2.BatchPredictResponse], count: int, output_types: Mapping[str, Any] | None,
) -> list[Prediction | DspyGrpcError]:
    """The items' outcomes in input order: a Prediction, or the typed error the item failed with."""

    results: list[Prediction | DspyGrpcError | None] = [None] * count
    for response in responses:
        if response.WhichOneof("result") == "prediction":
            results[response.index] = Prediction(response.prediction, output_types)
        else:
            results[response.index] = from_item_error(response.error)
    if any(r is None for r in results):  # pragma: no cover - the server answers every item
        raise RuntimeError("BatchPredict ended before answering every item")
    return results  # type: ignore[return-value]

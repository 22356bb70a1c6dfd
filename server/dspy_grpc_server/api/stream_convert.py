"""Wire forms of streaming results: run events, BatchPredict items, Run's tool calls and answers."""

from __future__ import annotations

from typing import Any

from dspy_grpc.v1 import inference_pb2
from google.protobuf import struct_pb2

from ..app.caller_tools import ToolCallRequest
from ..app.inference import BatchItem, ProgramPrediction
from ..core.errors import DspyGrpcError
from ..modules.events import (
    FieldDelta,
    ModuleFinished,
    ModuleStarted,
    RetrievalFinished,
    ToolCallFinished,
    ToolCallStarted,
)
from .convert import exact_json, json_value, prediction_to_proto, struct_value, to_struct_value, values_fields
from .corpus_service import passage_to_proto
from .errors import status_code_for


def event_to_proto(item: Any) -> inference_pb2.PredictEvent:
    """A StreamPredict/Run event from a run event, a caller tool call or the final prediction."""

    # The frequent events are written into the event in place (no message built to be copied in).
    if isinstance(item, FieldDelta):
        event = inference_pb2.PredictEvent()
        delta = event.field_delta
        delta.SetInParent()
        delta.predictor, delta.field, delta.text, delta.last = item.predictor, item.field, item.text, item.last
        return event
    if isinstance(item, (ModuleStarted, ModuleFinished)):
        event = inference_pb2.PredictEvent()
        module = event.module_started if isinstance(item, ModuleStarted) else event.module_finished
        module.SetInParent()
        module.module, module.kind = item.module, item.kind
        if isinstance(item, ModuleFinished):
            module.error = item.error
        return event
    if isinstance(item, ToolCallStarted):
        return inference_pb2.PredictEvent(tool_call_started=inference_pb2.ToolCallEvent(
            module=item.module, call_id=item.call_id, tool=item.tool, **values_fields("args", item.args)))
    if isinstance(item, ToolCallFinished):
        return inference_pb2.PredictEvent(tool_call_finished=inference_pb2.ToolCallEvent(
            module=item.module, call_id=item.call_id, tool=item.tool, **values_fields("args", item.args),
            observation=to_struct_value(item.observation), observation_json=exact_json(item.observation),
            error=item.error))
    if isinstance(item, RetrievalFinished):
        return inference_pb2.PredictEvent(retrieval=inference_pb2.RetrievalEvent(
            module=item.module, query=item.query, k=item.k, source=item.source,
            passages=[passage_to_proto(p) for p in item.passages]))
    if isinstance(item, ToolCallRequest):
        return inference_pb2.PredictEvent(tool_call=inference_pb2.ToolCall(
            call_id=item.call_id, tool=item.tool, **values_fields("args", item.args)))
    if isinstance(item, ProgramPrediction):
        event = inference_pb2.PredictEvent()
        prediction_to_proto(item.prediction, program_id=item.program_id, revision_id=item.revision_id,
                            into=event.prediction)
        return event
    raise TypeError(f"not an event: {item!r}")  # pragma: no cover


def item_error_to_proto(error: DspyGrpcError) -> inference_pb2.ItemError:
    return inference_pb2.ItemError(
        code=status_code_for(error).name,
        reason=error.reason,
        message=error.message,
        metadata=dict(error.metadata),
        field_violations=[
            inference_pb2.ItemFieldViolation(field=v.field, description=v.description) for v in error.violations
        ],
    )


def batch_item_to_proto(item: BatchItem) -> inference_pb2.BatchPredictResponse:
    if item.error is not None:
        return inference_pb2.BatchPredictResponse(index=item.index, error=item_error_to_proto(item.error))
    assert item.result is not None
    response = inference_pb2.BatchPredictResponse(index=item.index)
    prediction_to_proto(item.result.prediction, program_id=item.result.program_id,
                        revision_id=item.result.revision_id, into=response.prediction)
    return response


def tool_output(result: inference_pb2.ToolResult, field: str) -> Any:
    """A caller tool's result: `output_json` exactly, or `output` read canonically (whole numbers as
    ints: DSPy shows a tool's int result without ".0")."""

    if result.WhichOneof("outcome") == "output_json":
        return json_value(result.output_json, f"{field}.output_json")
    return struct_value(result.output)

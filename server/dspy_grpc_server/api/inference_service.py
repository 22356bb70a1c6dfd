"""InferenceService: translation between requests and :class:`~..app.inference.Inference`."""

from __future__ import annotations

import grpc
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc

from ..app.inference import Inference, ProgramRef
from ..core.errors import invalid
from ..modules.spec import LMChoice, ModuleSpec
from .convert import (
    adapter_from_proto,
    dict_to_struct,
    lm_from_proto,
    module_from_proto,
    prediction_to_proto,
    program_ref,
    rendered_prompt_to_proto,
    struct_to_dict,
)
from .deadlines import deadline_of


class InferenceService(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, inference: Inference) -> None:
        self._inference = inference

    async def Predict(self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext):
        result = await self._inference.predict(
            _target(request),
            struct_to_dict(request.inputs),
            request_lm=lm_from_proto(request.lm) if request.HasField("lm") else LMChoice(),
            deadline=deadline_of(context),
            include_trace=request.include_trace,
        )
        return inference_pb2.PredictResponse(
            prediction=prediction_to_proto(
                result.prediction, program_id=result.program_id, revision_id=result.revision_id
            )
        )

    async def RenderPrompt(self, request: inference_pb2.RenderPromptRequest, context: grpc.aio.ServicerContext):
        predictor, rendered = await self._inference.render_prompt(
            _target(request),
            struct_to_dict(request.inputs),
            predictor=request.predictor,
            adapter=adapter_from_proto(request.adapter),
        )
        return rendered_prompt_to_proto(predictor, rendered)

    async def ParseCompletion(self, request: inference_pb2.ParseCompletionRequest, context: grpc.aio.ServicerContext):
        adapter, outputs = await self._inference.parse_completion(
            _target(request), request.completion, predictor=request.predictor,
            adapter=adapter_from_proto(request.adapter),
        )
        return inference_pb2.ParseCompletionResponse(outputs=dict_to_struct(outputs), adapter=adapter)


def _target(request) -> ProgramRef | ModuleSpec:
    """The program or inline module a request names (its `target` oneof)."""

    kind = request.WhichOneof("target")
    if kind == "program":
        return program_ref(request.program, "program")
    if kind == "module":
        return module_from_proto(request.module, "module")
    raise invalid("target", "set program (\"programs/qa\") or module (an inline module spec)")

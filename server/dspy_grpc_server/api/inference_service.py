"""InferenceService: translation between requests and :class:`~..app.inference.Inference`."""

from __future__ import annotations

import grpc
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc

from ..app.inference import Inference
from ..core.errors import invalid
from ..modules.spec import LMChoice
from .convert import lm_from_proto, module_from_proto, prediction_to_proto, program_ref, struct_to_dict
from .deadlines import deadline_of


class InferenceService(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, inference: Inference) -> None:
        self._inference = inference

    async def Predict(self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext):
        target_kind = request.WhichOneof("target")
        if target_kind == "program":
            target = program_ref(request.program, "program")
        elif target_kind == "module":
            target = module_from_proto(request.module, "module")
        else:
            raise invalid("target", "set program (\"programs/qa\") or module (an inline module spec)")
        result = await self._inference.predict(
            target,
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

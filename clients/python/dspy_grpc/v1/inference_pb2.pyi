from dspy_grpc.v1 import module_pb2 as _module_pb2
from dspy_grpc.v1 import prediction_pb2 as _prediction_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("program", "module", "inputs", "lm", "include_trace")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRACE_FIELD_NUMBER: _ClassVar[int]
    program: str
    module: _module_pb2.ModuleSpec
    inputs: _struct_pb2.Struct
    lm: _module_pb2.LMSpec
    include_trace: bool
    def __init__(self, program: _Optional[str] = ..., module: _Optional[_Union[_module_pb2.ModuleSpec, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., lm: _Optional[_Union[_module_pb2.LMSpec, _Mapping]] = ..., include_trace: _Optional[bool] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("prediction",)
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    prediction: _prediction_pb2.Prediction
    def __init__(self, prediction: _Optional[_Union[_prediction_pb2.Prediction, _Mapping]] = ...) -> None: ...

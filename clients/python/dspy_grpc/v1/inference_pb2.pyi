from dspy_grpc.v1 import module_pb2 as _module_pb2
from dspy_grpc.v1 import prediction_pb2 as _prediction_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
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

class ChatMessage(_message.Message):
    __slots__ = ("role", "content", "content_parts")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_PARTS_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    content_parts: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., content_parts: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class RenderPromptRequest(_message.Message):
    __slots__ = ("program", "module", "inputs", "predictor", "adapter")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    program: str
    module: _module_pb2.ModuleSpec
    inputs: _struct_pb2.Struct
    predictor: str
    adapter: _module_pb2.AdapterKind
    def __init__(self, program: _Optional[str] = ..., module: _Optional[_Union[_module_pb2.ModuleSpec, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., predictor: _Optional[str] = ..., adapter: _Optional[_Union[_module_pb2.AdapterKind, str]] = ...) -> None: ...

class RenderPromptResponse(_message.Message):
    __slots__ = ("messages", "request_options", "predictor", "adapter")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    request_options: _struct_pb2.Struct
    predictor: str
    adapter: str
    def __init__(self, messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., request_options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., predictor: _Optional[str] = ..., adapter: _Optional[str] = ...) -> None: ...

class ParseCompletionRequest(_message.Message):
    __slots__ = ("program", "module", "completion", "predictor", "adapter")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    program: str
    module: _module_pb2.ModuleSpec
    completion: str
    predictor: str
    adapter: _module_pb2.AdapterKind
    def __init__(self, program: _Optional[str] = ..., module: _Optional[_Union[_module_pb2.ModuleSpec, _Mapping]] = ..., completion: _Optional[str] = ..., predictor: _Optional[str] = ..., adapter: _Optional[_Union[_module_pb2.AdapterKind, str]] = ...) -> None: ...

class ParseCompletionResponse(_message.Message):
    __slots__ = ("outputs", "adapter")
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    outputs: _struct_pb2.Struct
    adapter: str
    def __init__(self, outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., adapter: _Optional[str] = ...) -> None: ...

import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelUsage(_message.Message):
    __slots__ = ("model", "prompt_tokens", "completion_tokens", "total_tokens", "calls")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    calls: int
    def __init__(self, model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., calls: _Optional[int] = ...) -> None: ...

class TraceStep(_message.Message):
    __slots__ = ("predictor", "inputs", "outputs", "adapter", "model", "usage", "latency", "lm_call_ids", "cache_hit", "inputs_json", "outputs_json")
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    LM_CALL_IDS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    predictor: str
    inputs: _struct_pb2.Struct
    outputs: _struct_pb2.Struct
    adapter: str
    model: str
    usage: ModelUsage
    latency: _duration_pb2.Duration
    lm_call_ids: _containers.RepeatedScalarFieldContainer[str]
    cache_hit: bool
    inputs_json: str
    outputs_json: str
    def __init__(self, predictor: _Optional[str] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., adapter: _Optional[str] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[ModelUsage, _Mapping]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., lm_call_ids: _Optional[_Iterable[str]] = ..., cache_hit: _Optional[bool] = ..., inputs_json: _Optional[str] = ..., outputs_json: _Optional[str] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("outputs", "usage", "trace", "program", "revision_id", "adapter_fallbacks", "outputs_json")
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    outputs: _struct_pb2.Struct
    usage: _containers.RepeatedCompositeFieldContainer[ModelUsage]
    trace: _containers.RepeatedCompositeFieldContainer[TraceStep]
    program: str
    revision_id: str
    adapter_fallbacks: _containers.RepeatedCompositeFieldContainer[AdapterFallback]
    outputs_json: str
    def __init__(self, outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., usage: _Optional[_Iterable[_Union[ModelUsage, _Mapping]]] = ..., trace: _Optional[_Iterable[_Union[TraceStep, _Mapping]]] = ..., program: _Optional[str] = ..., revision_id: _Optional[str] = ..., adapter_fallbacks: _Optional[_Iterable[_Union[AdapterFallback, _Mapping]]] = ..., outputs_json: _Optional[str] = ...) -> None: ...

class AdapterFallback(_message.Message):
    __slots__ = ("predictor", "from_adapter", "to_adapter", "error")
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    FROM_ADAPTER_FIELD_NUMBER: _ClassVar[int]
    TO_ADAPTER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    predictor: str
    from_adapter: str
    to_adapter: str
    error: str
    def __init__(self, predictor: _Optional[str] = ..., from_adapter: _Optional[str] = ..., to_adapter: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

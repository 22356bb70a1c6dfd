import datetime

from dspy_grpc.v1 import corpus_pb2 as _corpus_pb2
from dspy_grpc.v1 import module_pb2 as _module_pb2
from dspy_grpc.v1 import lm_spec_pb2 as _lm_spec_pb2
from dspy_grpc.v1 import prediction_pb2 as _prediction_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamPredictRequest(_message.Message):
    __slots__ = ("program", "module", "inputs", "lm", "include_trace", "inputs_json")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRACE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    program: str
    module: _module_pb2.ModuleSpec
    inputs: _struct_pb2.Struct
    lm: _lm_spec_pb2.LMSpec
    include_trace: bool
    inputs_json: str
    def __init__(self, program: _Optional[str] = ..., module: _Optional[_Union[_module_pb2.ModuleSpec, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., include_trace: _Optional[bool] = ..., inputs_json: _Optional[str] = ...) -> None: ...

class PredictEvent(_message.Message):
    __slots__ = ("field_delta", "module_started", "module_finished", "tool_call_started", "tool_call_finished", "tool_call", "prediction", "retrieval")
    FIELD_DELTA_FIELD_NUMBER: _ClassVar[int]
    MODULE_STARTED_FIELD_NUMBER: _ClassVar[int]
    MODULE_FINISHED_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_STARTED_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FINISHED_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_FIELD_NUMBER: _ClassVar[int]
    field_delta: FieldDelta
    module_started: ModuleEvent
    module_finished: ModuleEvent
    tool_call_started: ToolCallEvent
    tool_call_finished: ToolCallEvent
    tool_call: ToolCall
    prediction: _prediction_pb2.Prediction
    retrieval: RetrievalEvent
    def __init__(self, field_delta: _Optional[_Union[FieldDelta, _Mapping]] = ..., module_started: _Optional[_Union[ModuleEvent, _Mapping]] = ..., module_finished: _Optional[_Union[ModuleEvent, _Mapping]] = ..., tool_call_started: _Optional[_Union[ToolCallEvent, _Mapping]] = ..., tool_call_finished: _Optional[_Union[ToolCallEvent, _Mapping]] = ..., tool_call: _Optional[_Union[ToolCall, _Mapping]] = ..., prediction: _Optional[_Union[_prediction_pb2.Prediction, _Mapping]] = ..., retrieval: _Optional[_Union[RetrievalEvent, _Mapping]] = ...) -> None: ...

class RetrievalEvent(_message.Message):
    __slots__ = ("module", "query", "k", "source", "passages")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    module: str
    query: str
    k: int
    source: str
    passages: _containers.RepeatedCompositeFieldContainer[_corpus_pb2.Passage]
    def __init__(self, module: _Optional[str] = ..., query: _Optional[str] = ..., k: _Optional[int] = ..., source: _Optional[str] = ..., passages: _Optional[_Iterable[_Union[_corpus_pb2.Passage, _Mapping]]] = ...) -> None: ...

class FieldDelta(_message.Message):
    __slots__ = ("predictor", "field", "text", "last")
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    predictor: str
    field: str
    text: str
    last: bool
    def __init__(self, predictor: _Optional[str] = ..., field: _Optional[str] = ..., text: _Optional[str] = ..., last: _Optional[bool] = ...) -> None: ...

class ModuleEvent(_message.Message):
    __slots__ = ("module", "kind", "error")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    module: str
    kind: str
    error: str
    def __init__(self, module: _Optional[str] = ..., kind: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ToolCallEvent(_message.Message):
    __slots__ = ("module", "call_id", "tool", "args", "observation", "error", "args_json", "observation_json")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_JSON_FIELD_NUMBER: _ClassVar[int]
    module: str
    call_id: str
    tool: str
    args: _struct_pb2.Struct
    observation: _struct_pb2.Value
    error: str
    args_json: str
    observation_json: str
    def __init__(self, module: _Optional[str] = ..., call_id: _Optional[str] = ..., tool: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., observation: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[str] = ..., args_json: _Optional[str] = ..., observation_json: _Optional[str] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("call_id", "tool", "args", "args_json")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    tool: str
    args: _struct_pb2.Struct
    args_json: str
    def __init__(self, call_id: _Optional[str] = ..., tool: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., args_json: _Optional[str] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("start", "tool_result")
    START_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    start: RunStart
    tool_result: ToolResult
    def __init__(self, start: _Optional[_Union[RunStart, _Mapping]] = ..., tool_result: _Optional[_Union[ToolResult, _Mapping]] = ...) -> None: ...

class RunStart(_message.Message):
    __slots__ = ("request", "tools", "tool_timeout")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    request: PredictRequest
    tools: _containers.RepeatedScalarFieldContainer[str]
    tool_timeout: _duration_pb2.Duration
    def __init__(self, request: _Optional[_Union[PredictRequest, _Mapping]] = ..., tools: _Optional[_Iterable[str]] = ..., tool_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ToolResult(_message.Message):
    __slots__ = ("call_id", "output", "error", "output_json")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    output: _struct_pb2.Value
    error: str
    output_json: str
    def __init__(self, call_id: _Optional[str] = ..., output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[str] = ..., output_json: _Optional[str] = ...) -> None: ...

class BatchPredictRequest(_message.Message):
    __slots__ = ("program", "module", "inputs", "lm", "include_trace", "max_concurrency", "inputs_json")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRACE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    program: str
    module: _module_pb2.ModuleSpec
    inputs: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    lm: _lm_spec_pb2.LMSpec
    include_trace: bool
    max_concurrency: int
    inputs_json: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, program: _Optional[str] = ..., module: _Optional[_Union[_module_pb2.ModuleSpec, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., include_trace: _Optional[bool] = ..., max_concurrency: _Optional[int] = ..., inputs_json: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchPredictResponse(_message.Message):
    __slots__ = ("index", "prediction", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    prediction: _prediction_pb2.Prediction
    error: ItemError
    def __init__(self, index: _Optional[int] = ..., prediction: _Optional[_Union[_prediction_pb2.Prediction, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "reason", "message", "metadata", "field_violations")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    code: str
    reason: str
    message: str
    metadata: _containers.ScalarMap[str, str]
    field_violations: _containers.RepeatedCompositeFieldContainer[ItemFieldViolation]
    def __init__(self, code: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., field_violations: _Optional[_Iterable[_Union[ItemFieldViolation, _Mapping]]] = ...) -> None: ...

class ItemFieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("program", "module", "inputs", "lm", "include_trace", "inputs_json")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRACE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    program: str
    module: _module_pb2.ModuleSpec
    inputs: _struct_pb2.Struct
    lm: _lm_spec_pb2.LMSpec
    include_trace: bool
    inputs_json: str
    def __init__(self, program: _Optional[str] = ..., module: _Optional[_Union[_module_pb2.ModuleSpec, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., include_trace: _Optional[bool] = ..., inputs_json: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("program", "module", "inputs", "predictor", "adapter", "inputs_json")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    program: str
    module: _module_pb2.ModuleSpec
    inputs: _struct_pb2.Struct
    predictor: str
    adapter: _module_pb2.AdapterKind
    inputs_json: str
    def __init__(self, program: _Optional[str] = ..., module: _Optional[_Union[_module_pb2.ModuleSpec, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., predictor: _Optional[str] = ..., adapter: _Optional[_Union[_module_pb2.AdapterKind, str]] = ..., inputs_json: _Optional[str] = ...) -> None: ...

class RenderPromptResponse(_message.Message):
    __slots__ = ("messages", "request_options", "predictor", "adapter", "request_options_json")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_OPTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    request_options: _struct_pb2.Struct
    predictor: str
    adapter: str
    request_options_json: str
    def __init__(self, messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., request_options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., predictor: _Optional[str] = ..., adapter: _Optional[str] = ..., request_options_json: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("outputs", "adapter", "outputs_json")
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    outputs: _struct_pb2.Struct
    adapter: str
    outputs_json: str
    def __init__(self, outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., adapter: _Optional[str] = ..., outputs_json: _Optional[str] = ...) -> None: ...

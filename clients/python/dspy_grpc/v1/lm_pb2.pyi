import datetime

from dspy_grpc.v1 import module_pb2 as _module_pb2
from dspy_grpc.v1 import lm_spec_pb2 as _lm_spec_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_STATE_UNSPECIFIED: _ClassVar[BreakerState]
    BREAKER_STATE_CLOSED: _ClassVar[BreakerState]
    BREAKER_STATE_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_HALF_OPEN: _ClassVar[BreakerState]
BREAKER_STATE_UNSPECIFIED: BreakerState
BREAKER_STATE_CLOSED: BreakerState
BREAKER_STATE_OPEN: BreakerState
BREAKER_STATE_HALF_OPEN: BreakerState

class LMMessage(_message.Message):
    __slots__ = ("role", "content", "content_parts", "tool_calls", "tool_call_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_PARTS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    content_parts: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    tool_calls: _containers.RepeatedCompositeFieldContainer[LMToolCall]
    tool_call_id: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., content_parts: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., tool_calls: _Optional[_Iterable[_Union[LMToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ...) -> None: ...

class LMTool(_message.Message):
    __slots__ = ("name", "description", "parameters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class LMToolCall(_message.Message):
    __slots__ = ("id", "name", "arguments")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[str] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("model", "messages", "options", "n", "response_format", "tools", "tool_choice", "rollout_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[LMMessage]
    options: _lm_spec_pb2.LMOptions
    n: int
    response_format: _struct_pb2.Struct
    tools: _containers.RepeatedCompositeFieldContainer[LMTool]
    tool_choice: str
    rollout_id: int
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[LMMessage, _Mapping]]] = ..., options: _Optional[_Union[_lm_spec_pb2.LMOptions, _Mapping]] = ..., n: _Optional[int] = ..., response_format: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[LMTool, _Mapping]]] = ..., tool_choice: _Optional[str] = ..., rollout_id: _Optional[int] = ...) -> None: ...

class StreamCompleteRequest(_message.Message):
    __slots__ = ("model", "messages", "options", "n", "response_format", "tools", "tool_choice", "rollout_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[LMMessage]
    options: _lm_spec_pb2.LMOptions
    n: int
    response_format: _struct_pb2.Struct
    tools: _containers.RepeatedCompositeFieldContainer[LMTool]
    tool_choice: str
    rollout_id: int
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[LMMessage, _Mapping]]] = ..., options: _Optional[_Union[_lm_spec_pb2.LMOptions, _Mapping]] = ..., n: _Optional[int] = ..., response_format: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[LMTool, _Mapping]]] = ..., tool_choice: _Optional[str] = ..., rollout_id: _Optional[int] = ...) -> None: ...

class CompletionChoice(_message.Message):
    __slots__ = ("index", "text", "finish_reason", "tool_calls")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    index: int
    text: str
    finish_reason: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[LMToolCall]
    def __init__(self, index: _Optional[int] = ..., text: _Optional[str] = ..., finish_reason: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[LMToolCall, _Mapping]]] = ...) -> None: ...

class LMUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens", "estimated", "cost_usd")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool
    cost_usd: float
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., estimated: _Optional[bool] = ..., cost_usd: _Optional[float] = ...) -> None: ...

class CompleteResponse(_message.Message):
    __slots__ = ("choices", "usage", "model", "deployment", "cache_hit", "response_id")
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    choices: _containers.RepeatedCompositeFieldContainer[CompletionChoice]
    usage: LMUsage
    model: str
    deployment: str
    cache_hit: bool
    response_id: str
    def __init__(self, choices: _Optional[_Iterable[_Union[CompletionChoice, _Mapping]]] = ..., usage: _Optional[_Union[LMUsage, _Mapping]] = ..., model: _Optional[str] = ..., deployment: _Optional[str] = ..., cache_hit: _Optional[bool] = ..., response_id: _Optional[str] = ...) -> None: ...

class StreamCompleteResponse(_message.Message):
    __slots__ = ("text_delta", "done")
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    text_delta: str
    done: CompleteResponse
    def __init__(self, text_delta: _Optional[str] = ..., done: _Optional[_Union[CompleteResponse, _Mapping]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("model", "texts")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    texts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., texts: _Optional[_Iterable[str]] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("embeddings", "usage", "model", "deployment", "cache_hit")
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    usage: LMUsage
    model: str
    deployment: str
    cache_hit: bool
    def __init__(self, embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., usage: _Optional[_Union[LMUsage, _Mapping]] = ..., model: _Optional[str] = ..., deployment: _Optional[str] = ..., cache_hit: _Optional[bool] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("alias", "routing", "fallbacks", "supports_json_schema", "deployments", "kind")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    alias: str
    routing: str
    fallbacks: _containers.RepeatedScalarFieldContainer[str]
    supports_json_schema: bool
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentInfo]
    kind: str
    def __init__(self, alias: _Optional[str] = ..., routing: _Optional[str] = ..., fallbacks: _Optional[_Iterable[str]] = ..., supports_json_schema: _Optional[bool] = ..., deployments: _Optional[_Iterable[_Union[DeploymentInfo, _Mapping]]] = ..., kind: _Optional[str] = ...) -> None: ...

class DeploymentInfo(_message.Message):
    __slots__ = ("name", "provider", "model", "weight", "rpm", "tpm", "max_in_flight", "input_price_per_1m", "output_price_per_1m")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    RPM_FIELD_NUMBER: _ClassVar[int]
    TPM_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    INPUT_PRICE_PER_1M_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PRICE_PER_1M_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider: str
    model: str
    weight: float
    rpm: int
    tpm: int
    max_in_flight: int
    input_price_per_1m: float
    output_price_per_1m: float
    def __init__(self, name: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., weight: _Optional[float] = ..., rpm: _Optional[int] = ..., tpm: _Optional[int] = ..., max_in_flight: _Optional[int] = ..., input_price_per_1m: _Optional[float] = ..., output_price_per_1m: _Optional[float] = ...) -> None: ...

class GetProviderStatusRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class GetProviderStatusResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelStatus]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelStatus, _Mapping]]] = ...) -> None: ...

class ModelStatus(_message.Message):
    __slots__ = ("alias", "cache", "deployments")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    alias: str
    cache: CacheStatus
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentStatus]
    def __init__(self, alias: _Optional[str] = ..., cache: _Optional[_Union[CacheStatus, _Mapping]] = ..., deployments: _Optional[_Iterable[_Union[DeploymentStatus, _Mapping]]] = ...) -> None: ...

class CacheStatus(_message.Message):
    __slots__ = ("backend", "hits", "misses", "coalesced", "hit_ratio")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    COALESCED_FIELD_NUMBER: _ClassVar[int]
    HIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    backend: str
    hits: int
    misses: int
    coalesced: int
    hit_ratio: float
    def __init__(self, backend: _Optional[str] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., coalesced: _Optional[int] = ..., hit_ratio: _Optional[float] = ...) -> None: ...

class DeploymentStatus(_message.Message):
    __slots__ = ("name", "provider", "model", "serving", "restarts", "breaker_state", "consecutive_failures", "breaker_opened", "probe_after", "in_flight", "max_in_flight", "requests_headroom", "tokens_headroom", "cooldown", "calls", "successes", "failures", "retries", "recent_errors")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    BREAKER_STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    BREAKER_OPENED_FIELD_NUMBER: _ClassVar[int]
    PROBE_AFTER_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_HEADROOM_FIELD_NUMBER: _ClassVar[int]
    TOKENS_HEADROOM_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    RECENT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider: str
    model: str
    serving: bool
    restarts: int
    breaker_state: BreakerState
    consecutive_failures: int
    breaker_opened: int
    probe_after: _duration_pb2.Duration
    in_flight: int
    max_in_flight: int
    requests_headroom: int
    tokens_headroom: int
    cooldown: _duration_pb2.Duration
    calls: int
    successes: int
    failures: int
    retries: int
    recent_errors: _containers.RepeatedCompositeFieldContainer[RecentError]
    def __init__(self, name: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., serving: _Optional[bool] = ..., restarts: _Optional[int] = ..., breaker_state: _Optional[_Union[BreakerState, str]] = ..., consecutive_failures: _Optional[int] = ..., breaker_opened: _Optional[int] = ..., probe_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., in_flight: _Optional[int] = ..., max_in_flight: _Optional[int] = ..., requests_headroom: _Optional[int] = ..., tokens_headroom: _Optional[int] = ..., cooldown: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., calls: _Optional[int] = ..., successes: _Optional[int] = ..., failures: _Optional[int] = ..., retries: _Optional[int] = ..., recent_errors: _Optional[_Iterable[_Union[RecentError, _Mapping]]] = ...) -> None: ...

class RecentError(_message.Message):
    __slots__ = ("time", "reason", "message")
    TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    reason: str
    message: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

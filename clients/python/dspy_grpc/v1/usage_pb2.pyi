from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsagePeriod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_PERIOD_UNSPECIFIED: _ClassVar[UsagePeriod]
    USAGE_PERIOD_TOTAL: _ClassVar[UsagePeriod]
    USAGE_PERIOD_DAY: _ClassVar[UsagePeriod]
    USAGE_PERIOD_MONTH: _ClassVar[UsagePeriod]

class UsageDimension(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_DIMENSION_UNSPECIFIED: _ClassVar[UsageDimension]
    USAGE_DIMENSION_PROGRAM: _ClassVar[UsageDimension]
    USAGE_DIMENSION_API_KEY: _ClassVar[UsageDimension]
    USAGE_DIMENSION_MODEL: _ClassVar[UsageDimension]
USAGE_PERIOD_UNSPECIFIED: UsagePeriod
USAGE_PERIOD_TOTAL: UsagePeriod
USAGE_PERIOD_DAY: UsagePeriod
USAGE_PERIOD_MONTH: UsagePeriod
USAGE_DIMENSION_UNSPECIFIED: UsageDimension
USAGE_DIMENSION_PROGRAM: UsageDimension
USAGE_DIMENSION_API_KEY: UsageDimension
USAGE_DIMENSION_MODEL: UsageDimension

class QueryUsageRequest(_message.Message):
    __slots__ = ("programs", "api_key_ids", "models", "start_day", "end_day", "period", "group_by", "page_size", "page_token")
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    API_KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    START_DAY_FIELD_NUMBER: _ClassVar[int]
    END_DAY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    programs: _containers.RepeatedScalarFieldContainer[str]
    api_key_ids: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedScalarFieldContainer[str]
    start_day: str
    end_day: str
    period: UsagePeriod
    group_by: _containers.RepeatedScalarFieldContainer[UsageDimension]
    page_size: int
    page_token: str
    def __init__(self, programs: _Optional[_Iterable[str]] = ..., api_key_ids: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[str]] = ..., start_day: _Optional[str] = ..., end_day: _Optional[str] = ..., period: _Optional[_Union[UsagePeriod, str]] = ..., group_by: _Optional[_Iterable[_Union[UsageDimension, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("period", "program", "api_key_id", "model", "calls", "cache_hits", "prompt_tokens", "completion_tokens", "estimated_calls", "cost_usd")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_CALLS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    period: str
    program: str
    api_key_id: str
    model: str
    calls: int
    cache_hits: int
    prompt_tokens: int
    completion_tokens: int
    estimated_calls: int
    cost_usd: float
    def __init__(self, period: _Optional[str] = ..., program: _Optional[str] = ..., api_key_id: _Optional[str] = ..., model: _Optional[str] = ..., calls: _Optional[int] = ..., cache_hits: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., estimated_calls: _Optional[int] = ..., cost_usd: _Optional[float] = ...) -> None: ...

class QueryUsageResponse(_message.Message):
    __slots__ = ("rows", "next_page_token", "total")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    next_page_token: str
    total: UsageRow
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[_Union[UsageRow, _Mapping]] = ...) -> None: ...

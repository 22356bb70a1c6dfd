import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListProgramWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProgramWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[ProgramWorker]
    def __init__(self, workers: _Optional[_Iterable[_Union[ProgramWorker, _Mapping]]] = ...) -> None: ...

class ProgramWorker(_message.Message):
    __slots__ = ("program", "revision_id", "load_time", "calls", "errors", "quarantined_calls", "latency", "latency_sum", "prompt_tokens", "completion_tokens")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_CALLS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SUM_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    program: str
    revision_id: str
    load_time: _timestamp_pb2.Timestamp
    calls: int
    errors: int
    quarantined_calls: int
    latency: _containers.RepeatedCompositeFieldContainer[LatencyBucket]
    latency_sum: _duration_pb2.Duration
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, program: _Optional[str] = ..., revision_id: _Optional[str] = ..., load_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., calls: _Optional[int] = ..., errors: _Optional[int] = ..., quarantined_calls: _Optional[int] = ..., latency: _Optional[_Iterable[_Union[LatencyBucket, _Mapping]]] = ..., latency_sum: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class LatencyBucket(_message.Message):
    __slots__ = ("upper_bound", "infinite", "count")
    UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    INFINITE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    upper_bound: _duration_pb2.Duration
    infinite: bool
    count: int
    def __init__(self, upper_bound: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., infinite: _Optional[bool] = ..., count: _Optional[int] = ...) -> None: ...

class QuarantinedInput(_message.Message):
    __slots__ = ("name", "program", "input_hash", "inputs", "revision_id", "reason", "message", "failure_count", "create_time", "inputs_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    INPUT_HASH_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    program: str
    input_hash: str
    inputs: _struct_pb2.Struct
    revision_id: str
    reason: str
    message: str
    failure_count: int
    create_time: _timestamp_pb2.Timestamp
    inputs_json: str
    def __init__(self, name: _Optional[str] = ..., program: _Optional[str] = ..., input_hash: _Optional[str] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., revision_id: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., failure_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., inputs_json: _Optional[str] = ...) -> None: ...

class ListQuarantinedInputsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListQuarantinedInputsResponse(_message.Message):
    __slots__ = ("quarantined_inputs", "next_page_token")
    QUARANTINED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    quarantined_inputs: _containers.RepeatedCompositeFieldContainer[QuarantinedInput]
    next_page_token: str
    def __init__(self, quarantined_inputs: _Optional[_Iterable[_Union[QuarantinedInput, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ClearQuarantinedInputsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ClearQuarantinedInputsResponse(_message.Message):
    __slots__ = ("cleared_count",)
    CLEARED_COUNT_FIELD_NUMBER: _ClassVar[int]
    cleared_count: int
    def __init__(self, cleared_count: _Optional[int] = ...) -> None: ...

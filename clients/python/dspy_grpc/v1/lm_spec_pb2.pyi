from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CachePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_POLICY_UNSPECIFIED: _ClassVar[CachePolicy]
    CACHE_POLICY_USE: _ClassVar[CachePolicy]
    CACHE_POLICY_BYPASS: _ClassVar[CachePolicy]
    CACHE_POLICY_REFRESH: _ClassVar[CachePolicy]
CACHE_POLICY_UNSPECIFIED: CachePolicy
CACHE_POLICY_USE: CachePolicy
CACHE_POLICY_BYPASS: CachePolicy
CACHE_POLICY_REFRESH: CachePolicy

class LMOptions(_message.Message):
    __slots__ = ("temperature", "max_tokens", "top_p", "stop", "seed", "cache")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    max_tokens: int
    top_p: float
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    cache: CachePolicy
    def __init__(self, temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., cache: _Optional[_Union[CachePolicy, str]] = ...) -> None: ...

class DummyLM(_message.Message):
    __slots__ = ("responses", "rules", "auto")
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    AUTO_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[DummyResponse]
    rules: _containers.RepeatedCompositeFieldContainer[DummyRule]
    auto: bool
    def __init__(self, responses: _Optional[_Iterable[_Union[DummyResponse, _Mapping]]] = ..., rules: _Optional[_Iterable[_Union[DummyRule, _Mapping]]] = ..., auto: _Optional[bool] = ...) -> None: ...

class DummyResponse(_message.Message):
    __slots__ = ("text", "fields", "fields_json")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_JSON_FIELD_NUMBER: _ClassVar[int]
    text: str
    fields: _struct_pb2.Struct
    fields_json: str
    def __init__(self, text: _Optional[str] = ..., fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., fields_json: _Optional[str] = ...) -> None: ...

class DummyRule(_message.Message):
    __slots__ = ("contains", "response")
    CONTAINS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    contains: str
    response: DummyResponse
    def __init__(self, contains: _Optional[str] = ..., response: _Optional[_Union[DummyResponse, _Mapping]] = ...) -> None: ...

class LMSpec(_message.Message):
    __slots__ = ("model", "dummy", "options")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DUMMY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    dummy: DummyLM
    options: LMOptions
    def __init__(self, model: _Optional[str] = ..., dummy: _Optional[_Union[DummyLM, _Mapping]] = ..., options: _Optional[_Union[LMOptions, _Mapping]] = ...) -> None: ...

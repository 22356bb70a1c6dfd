from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TypeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TYPE_KIND_UNSPECIFIED: _ClassVar[TypeKind]
    TYPE_KIND_STR: _ClassVar[TypeKind]
    TYPE_KIND_INT: _ClassVar[TypeKind]
    TYPE_KIND_FLOAT: _ClassVar[TypeKind]
    TYPE_KIND_BOOL: _ClassVar[TypeKind]
    TYPE_KIND_LIST: _ClassVar[TypeKind]
    TYPE_KIND_DICT: _ClassVar[TypeKind]
    TYPE_KIND_TUPLE: _ClassVar[TypeKind]
    TYPE_KIND_LITERAL: _ClassVar[TypeKind]
    TYPE_KIND_ENUM: _ClassVar[TypeKind]
    TYPE_KIND_OBJECT: _ClassVar[TypeKind]
    TYPE_KIND_OPTIONAL: _ClassVar[TypeKind]
    TYPE_KIND_UNION: _ClassVar[TypeKind]
    TYPE_KIND_IMAGE: _ClassVar[TypeKind]
    TYPE_KIND_HISTORY: _ClassVar[TypeKind]
    TYPE_KIND_TOOL_CALLS: _ClassVar[TypeKind]
    TYPE_KIND_CODE: _ClassVar[TypeKind]
    TYPE_KIND_ANY: _ClassVar[TypeKind]
    TYPE_KIND_DATETIME: _ClassVar[TypeKind]
    TYPE_KIND_DATE: _ClassVar[TypeKind]

class FieldRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_ROLE_UNSPECIFIED: _ClassVar[FieldRole]
    FIELD_ROLE_INPUT: _ClassVar[FieldRole]
    FIELD_ROLE_OUTPUT: _ClassVar[FieldRole]
TYPE_KIND_UNSPECIFIED: TypeKind
TYPE_KIND_STR: TypeKind
TYPE_KIND_INT: TypeKind
TYPE_KIND_FLOAT: TypeKind
TYPE_KIND_BOOL: TypeKind
TYPE_KIND_LIST: TypeKind
TYPE_KIND_DICT: TypeKind
TYPE_KIND_TUPLE: TypeKind
TYPE_KIND_LITERAL: TypeKind
TYPE_KIND_ENUM: TypeKind
TYPE_KIND_OBJECT: TypeKind
TYPE_KIND_OPTIONAL: TypeKind
TYPE_KIND_UNION: TypeKind
TYPE_KIND_IMAGE: TypeKind
TYPE_KIND_HISTORY: TypeKind
TYPE_KIND_TOOL_CALLS: TypeKind
TYPE_KIND_CODE: TypeKind
TYPE_KIND_ANY: TypeKind
TYPE_KIND_DATETIME: TypeKind
TYPE_KIND_DATE: TypeKind
FIELD_ROLE_UNSPECIFIED: FieldRole
FIELD_ROLE_INPUT: FieldRole
FIELD_ROLE_OUTPUT: FieldRole

class TypeSpec(_message.Message):
    __slots__ = ("kind", "args", "values", "name", "json_schema", "language", "member_names", "values_json", "none_first", "variadic")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_NAMES_FIELD_NUMBER: _ClassVar[int]
    VALUES_JSON_FIELD_NUMBER: _ClassVar[int]
    NONE_FIRST_FIELD_NUMBER: _ClassVar[int]
    VARIADIC_FIELD_NUMBER: _ClassVar[int]
    kind: TypeKind
    args: _containers.RepeatedCompositeFieldContainer[TypeSpec]
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    name: str
    json_schema: str
    language: str
    member_names: _containers.RepeatedScalarFieldContainer[str]
    values_json: _containers.RepeatedScalarFieldContainer[str]
    none_first: bool
    variadic: bool
    def __init__(self, kind: _Optional[_Union[TypeKind, str]] = ..., args: _Optional[_Iterable[_Union[TypeSpec, _Mapping]]] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., name: _Optional[str] = ..., json_schema: _Optional[str] = ..., language: _Optional[str] = ..., member_names: _Optional[_Iterable[str]] = ..., values_json: _Optional[_Iterable[str]] = ..., none_first: _Optional[bool] = ..., variadic: _Optional[bool] = ...) -> None: ...

class SignatureField(_message.Message):
    __slots__ = ("name", "role", "type", "description", "prefix", "constraints", "default_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: FieldRole
    type: TypeSpec
    description: str
    prefix: str
    constraints: _containers.RepeatedCompositeFieldContainer[FieldConstraint]
    default_json: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[FieldRole, str]] = ..., type: _Optional[_Union[TypeSpec, _Mapping]] = ..., description: _Optional[str] = ..., prefix: _Optional[str] = ..., constraints: _Optional[_Iterable[_Union[FieldConstraint, _Mapping]]] = ..., default_json: _Optional[str] = ...) -> None: ...

class FieldConstraint(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Signature(_message.Message):
    __slots__ = ("fields", "text", "instructions")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedCompositeFieldContainer[SignatureField]
    text: str
    instructions: str
    def __init__(self, fields: _Optional[_Iterable[_Union[SignatureField, _Mapping]]] = ..., text: _Optional[str] = ..., instructions: _Optional[str] = ...) -> None: ...

class Example(_message.Message):
    __slots__ = ("data", "input_keys", "augmented", "data_json")
    DATA_FIELD_NUMBER: _ClassVar[int]
    INPUT_KEYS_FIELD_NUMBER: _ClassVar[int]
    AUGMENTED_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    data: _struct_pb2.Struct
    input_keys: _containers.RepeatedScalarFieldContainer[str]
    augmented: bool
    data_json: str
    def __init__(self, data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., input_keys: _Optional[_Iterable[str]] = ..., augmented: _Optional[bool] = ..., data_json: _Optional[str] = ...) -> None: ...

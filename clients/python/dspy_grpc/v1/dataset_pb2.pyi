import datetime

from dspy_grpc.v1 import signature_pb2 as _signature_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SplitPart(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPLIT_PART_UNSPECIFIED: _ClassVar[SplitPart]
    SPLIT_PART_TRAIN: _ClassVar[SplitPart]
    SPLIT_PART_DEV: _ClassVar[SplitPart]
SPLIT_PART_UNSPECIFIED: SplitPart
SPLIT_PART_TRAIN: SplitPart
SPLIT_PART_DEV: SplitPart

class Dataset(_message.Message):
    __slots__ = ("name", "display_name", "description", "labels", "input_keys", "example_count", "create_time", "update_time")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INPUT_KEYS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    input_keys: _containers.RepeatedScalarFieldContainer[str]
    example_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., input_keys: _Optional[_Iterable[str]] = ..., example_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DatasetSplit(_message.Message):
    __slots__ = ("seed", "dev_fraction")
    SEED_FIELD_NUMBER: _ClassVar[int]
    DEV_FRACTION_FIELD_NUMBER: _ClassVar[int]
    seed: int
    dev_fraction: float
    def __init__(self, seed: _Optional[int] = ..., dev_fraction: _Optional[float] = ...) -> None: ...

class DatasetExample(_message.Message):
    __slots__ = ("index", "example")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    index: int
    example: _signature_pb2.Example
    def __init__(self, index: _Optional[int] = ..., example: _Optional[_Union[_signature_pb2.Example, _Mapping]] = ...) -> None: ...

class CreateDatasetRequest(_message.Message):
    __slots__ = ("dataset_id", "dataset")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    dataset: Dataset
    def __init__(self, dataset_id: _Optional[str] = ..., dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class AppendExamplesRequest(_message.Message):
    __slots__ = ("dataset", "request_id", "examples")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    request_id: str
    examples: _containers.RepeatedCompositeFieldContainer[_signature_pb2.Example]
    def __init__(self, dataset: _Optional[str] = ..., request_id: _Optional[str] = ..., examples: _Optional[_Iterable[_Union[_signature_pb2.Example, _Mapping]]] = ...) -> None: ...

class AppendExamplesResponse(_message.Message):
    __slots__ = ("appended_count", "first_index", "example_count", "replayed")
    APPENDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    appended_count: int
    first_index: int
    example_count: int
    replayed: bool
    def __init__(self, appended_count: _Optional[int] = ..., first_index: _Optional[int] = ..., example_count: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ListExamplesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "split", "part")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    split: DatasetSplit
    part: SplitPart
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., split: _Optional[_Union[DatasetSplit, _Mapping]] = ..., part: _Optional[_Union[SplitPart, str]] = ...) -> None: ...

class ListExamplesResponse(_message.Message):
    __slots__ = ("examples", "next_page_token")
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    examples: _containers.RepeatedCompositeFieldContainer[DatasetExample]
    next_page_token: str
    def __init__(self, examples: _Optional[_Iterable[_Union[DatasetExample, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

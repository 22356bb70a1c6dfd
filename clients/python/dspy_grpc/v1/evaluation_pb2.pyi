import datetime

from dspy_grpc.v1 import dataset_pb2 as _dataset_pb2
from dspy_grpc.v1 import job_pb2 as _job_pb2
from dspy_grpc.v1 import lm_spec_pb2 as _lm_spec_pb2
from dspy_grpc.v1 import metric_pb2 as _metric_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Evaluation(_message.Message):
    __slots__ = ("name", "program", "program_revision", "dataset", "split", "part", "metric", "lm", "num_threads", "max_errors", "failure_score", "display_name", "state", "progress", "score", "error_count", "error", "create_time", "start_time", "end_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_REVISION_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    NUM_THREADS_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_SCORE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    program: str
    program_revision: str
    dataset: str
    split: _dataset_pb2.DatasetSplit
    part: _dataset_pb2.SplitPart
    metric: _metric_pb2.MetricSpec
    lm: _lm_spec_pb2.LMSpec
    num_threads: int
    max_errors: int
    failure_score: float
    display_name: str
    state: _job_pb2.JobState
    progress: _job_pb2.JobProgress
    score: float
    error_count: int
    error: _job_pb2.JobError
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., program: _Optional[str] = ..., program_revision: _Optional[str] = ..., dataset: _Optional[str] = ..., split: _Optional[_Union[_dataset_pb2.DatasetSplit, _Mapping]] = ..., part: _Optional[_Union[_dataset_pb2.SplitPart, str]] = ..., metric: _Optional[_Union[_metric_pb2.MetricSpec, _Mapping]] = ..., lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., num_threads: _Optional[int] = ..., max_errors: _Optional[int] = ..., failure_score: _Optional[float] = ..., display_name: _Optional[str] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., progress: _Optional[_Union[_job_pb2.JobProgress, _Mapping]] = ..., score: _Optional[float] = ..., error_count: _Optional[int] = ..., error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EvaluationResult(_message.Message):
    __slots__ = ("example_index", "prediction", "score", "error", "prediction_json")
    EXAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_JSON_FIELD_NUMBER: _ClassVar[int]
    example_index: int
    prediction: _struct_pb2.Struct
    score: float
    error: str
    prediction_json: str
    def __init__(self, example_index: _Optional[int] = ..., prediction: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., score: _Optional[float] = ..., error: _Optional[str] = ..., prediction_json: _Optional[str] = ...) -> None: ...

class CreateEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id", "evaluation")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    evaluation: Evaluation
    def __init__(self, evaluation_id: _Optional[str] = ..., evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations", "next_page_token")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    next_page_token: str
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchEvaluationResponse(_message.Message):
    __slots__ = ("evaluation", "results")
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    results: _containers.RepeatedCompositeFieldContainer[EvaluationResult]
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ..., results: _Optional[_Iterable[_Union[EvaluationResult, _Mapping]]] = ...) -> None: ...

class ListEvaluationResultsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEvaluationResultsResponse(_message.Message):
    __slots__ = ("results", "next_page_token")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EvaluationResult]
    next_page_token: str
    def __init__(self, results: _Optional[_Iterable[_Union[EvaluationResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

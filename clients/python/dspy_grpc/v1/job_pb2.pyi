import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

class JobProgress(_message.Message):
    __slots__ = ("phase", "lm_calls_done", "lm_calls_planned", "examples_done", "examples_total", "best_score", "current_candidate", "eta", "metric_calls_used", "metric_calls_budget", "pareto_front_size", "parent_candidate")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    LM_CALLS_DONE_FIELD_NUMBER: _ClassVar[int]
    LM_CALLS_PLANNED_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_DONE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    METRIC_CALLS_USED_FIELD_NUMBER: _ClassVar[int]
    METRIC_CALLS_BUDGET_FIELD_NUMBER: _ClassVar[int]
    PARETO_FRONT_SIZE_FIELD_NUMBER: _ClassVar[int]
    PARENT_CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    phase: str
    lm_calls_done: int
    lm_calls_planned: int
    examples_done: int
    examples_total: int
    best_score: float
    current_candidate: str
    eta: _duration_pb2.Duration
    metric_calls_used: int
    metric_calls_budget: int
    pareto_front_size: int
    parent_candidate: str
    def __init__(self, phase: _Optional[str] = ..., lm_calls_done: _Optional[int] = ..., lm_calls_planned: _Optional[int] = ..., examples_done: _Optional[int] = ..., examples_total: _Optional[int] = ..., best_score: _Optional[float] = ..., current_candidate: _Optional[str] = ..., eta: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., metric_calls_used: _Optional[int] = ..., metric_calls_budget: _Optional[int] = ..., pareto_front_size: _Optional[int] = ..., parent_candidate: _Optional[str] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("code", "reason", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    reason: str
    message: str
    def __init__(self, code: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

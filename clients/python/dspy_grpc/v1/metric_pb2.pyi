from dspy_grpc.v1 import lm_spec_pb2 as _lm_spec_pb2
from dspy_grpc.v1 import signature_pb2 as _signature_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MetricSpec(_message.Message):
    __slots__ = ("exact_match", "token_f1", "passage_match", "contains", "numeric", "lm_judge", "weighted")
    EXACT_MATCH_FIELD_NUMBER: _ClassVar[int]
    TOKEN_F1_FIELD_NUMBER: _ClassVar[int]
    PASSAGE_MATCH_FIELD_NUMBER: _ClassVar[int]
    CONTAINS_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_FIELD_NUMBER: _ClassVar[int]
    LM_JUDGE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_FIELD_NUMBER: _ClassVar[int]
    exact_match: ExactMatchMetric
    token_f1: TokenF1Metric
    passage_match: PassageMatchMetric
    contains: ContainsMetric
    numeric: NumericMetric
    lm_judge: LMJudgeMetric
    weighted: WeightedMetric
    def __init__(self, exact_match: _Optional[_Union[ExactMatchMetric, _Mapping]] = ..., token_f1: _Optional[_Union[TokenF1Metric, _Mapping]] = ..., passage_match: _Optional[_Union[PassageMatchMetric, _Mapping]] = ..., contains: _Optional[_Union[ContainsMetric, _Mapping]] = ..., numeric: _Optional[_Union[NumericMetric, _Mapping]] = ..., lm_judge: _Optional[_Union[LMJudgeMetric, _Mapping]] = ..., weighted: _Optional[_Union[WeightedMetric, _Mapping]] = ...) -> None: ...

class ExactMatchMetric(_message.Message):
    __slots__ = ("field", "label_field", "predictor", "frac")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    FRAC_FIELD_NUMBER: _ClassVar[int]
    field: str
    label_field: str
    predictor: str
    frac: float
    def __init__(self, field: _Optional[str] = ..., label_field: _Optional[str] = ..., predictor: _Optional[str] = ..., frac: _Optional[float] = ...) -> None: ...

class TokenF1Metric(_message.Message):
    __slots__ = ("field", "label_field", "predictor")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    field: str
    label_field: str
    predictor: str
    def __init__(self, field: _Optional[str] = ..., label_field: _Optional[str] = ..., predictor: _Optional[str] = ...) -> None: ...

class PassageMatchMetric(_message.Message):
    __slots__ = ("field", "label_field", "predictor")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    field: str
    label_field: str
    predictor: str
    def __init__(self, field: _Optional[str] = ..., label_field: _Optional[str] = ..., predictor: _Optional[str] = ...) -> None: ...

class ContainsMetric(_message.Message):
    __slots__ = ("field", "label_field", "predictor", "case_sensitive")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    CASE_SENSITIVE_FIELD_NUMBER: _ClassVar[int]
    field: str
    label_field: str
    predictor: str
    case_sensitive: bool
    def __init__(self, field: _Optional[str] = ..., label_field: _Optional[str] = ..., predictor: _Optional[str] = ..., case_sensitive: _Optional[bool] = ...) -> None: ...

class NumericMetric(_message.Message):
    __slots__ = ("field", "label_field", "predictor", "abs_tolerance", "rel_tolerance")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    ABS_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    REL_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    field: str
    label_field: str
    predictor: str
    abs_tolerance: float
    rel_tolerance: float
    def __init__(self, field: _Optional[str] = ..., label_field: _Optional[str] = ..., predictor: _Optional[str] = ..., abs_tolerance: _Optional[float] = ..., rel_tolerance: _Optional[float] = ...) -> None: ...

class LMJudgeMetric(_message.Message):
    __slots__ = ("signature", "inputs", "score_fields", "lm", "decompositional", "threshold", "feedback_field", "no_reasoning")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    DECOMPOSITIONAL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_FIELD_NUMBER: _ClassVar[int]
    NO_REASONING_FIELD_NUMBER: _ClassVar[int]
    signature: _signature_pb2.Signature
    inputs: _containers.ScalarMap[str, str]
    score_fields: _containers.RepeatedScalarFieldContainer[str]
    lm: _lm_spec_pb2.LMSpec
    decompositional: bool
    threshold: float
    feedback_field: str
    no_reasoning: bool
    def __init__(self, signature: _Optional[_Union[_signature_pb2.Signature, _Mapping]] = ..., inputs: _Optional[_Mapping[str, str]] = ..., score_fields: _Optional[_Iterable[str]] = ..., lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., decompositional: _Optional[bool] = ..., threshold: _Optional[float] = ..., feedback_field: _Optional[str] = ..., no_reasoning: _Optional[bool] = ...) -> None: ...

class WeightedMetric(_message.Message):
    __slots__ = ("terms",)
    TERMS_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.RepeatedCompositeFieldContainer[WeightedTerm]
    def __init__(self, terms: _Optional[_Iterable[_Union[WeightedTerm, _Mapping]]] = ...) -> None: ...

class WeightedTerm(_message.Message):
    __slots__ = ("weight", "metric")
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    weight: float
    metric: MetricSpec
    def __init__(self, weight: _Optional[float] = ..., metric: _Optional[_Union[MetricSpec, _Mapping]] = ...) -> None: ...

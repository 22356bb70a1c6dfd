import datetime

from dspy_grpc.v1 import dataset_pb2 as _dataset_pb2
from dspy_grpc.v1 import job_pb2 as _job_pb2
from dspy_grpc.v1 import metric_pb2 as _metric_pb2
from dspy_grpc.v1 import module_pb2 as _module_pb2
from dspy_grpc.v1 import lm_spec_pb2 as _lm_spec_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Optimization(_message.Message):
    __slots__ = ("name", "program", "program_revision", "dataset", "split", "metric", "labeled_few_shot", "bootstrap_few_shot", "random_search", "copro", "mipro_v2", "ensemble", "knn_few_shot", "gepa", "simba", "task_lm", "teacher_lm", "prompt_lm", "num_threads", "max_errors", "activate", "display_name", "state", "progress", "result", "error", "create_time", "start_time", "end_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_REVISION_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    LABELED_FEW_SHOT_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_FEW_SHOT_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SEARCH_FIELD_NUMBER: _ClassVar[int]
    COPRO_FIELD_NUMBER: _ClassVar[int]
    MIPRO_V2_FIELD_NUMBER: _ClassVar[int]
    ENSEMBLE_FIELD_NUMBER: _ClassVar[int]
    KNN_FEW_SHOT_FIELD_NUMBER: _ClassVar[int]
    GEPA_FIELD_NUMBER: _ClassVar[int]
    SIMBA_FIELD_NUMBER: _ClassVar[int]
    TASK_LM_FIELD_NUMBER: _ClassVar[int]
    TEACHER_LM_FIELD_NUMBER: _ClassVar[int]
    PROMPT_LM_FIELD_NUMBER: _ClassVar[int]
    NUM_THREADS_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    program: str
    program_revision: str
    dataset: str
    split: _dataset_pb2.DatasetSplit
    metric: _metric_pb2.MetricSpec
    labeled_few_shot: LabeledFewShot
    bootstrap_few_shot: BootstrapFewShot
    random_search: BootstrapFewShotWithRandomSearch
    copro: COPRO
    mipro_v2: MIPROv2
    ensemble: Ensemble
    knn_few_shot: KNNFewShot
    gepa: GEPA
    simba: SIMBA
    task_lm: _lm_spec_pb2.LMSpec
    teacher_lm: _lm_spec_pb2.LMSpec
    prompt_lm: _lm_spec_pb2.LMSpec
    num_threads: int
    max_errors: int
    activate: bool
    display_name: str
    state: _job_pb2.JobState
    progress: _job_pb2.JobProgress
    result: OptimizationResult
    error: _job_pb2.JobError
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., program: _Optional[str] = ..., program_revision: _Optional[str] = ..., dataset: _Optional[str] = ..., split: _Optional[_Union[_dataset_pb2.DatasetSplit, _Mapping]] = ..., metric: _Optional[_Union[_metric_pb2.MetricSpec, _Mapping]] = ..., labeled_few_shot: _Optional[_Union[LabeledFewShot, _Mapping]] = ..., bootstrap_few_shot: _Optional[_Union[BootstrapFewShot, _Mapping]] = ..., random_search: _Optional[_Union[BootstrapFewShotWithRandomSearch, _Mapping]] = ..., copro: _Optional[_Union[COPRO, _Mapping]] = ..., mipro_v2: _Optional[_Union[MIPROv2, _Mapping]] = ..., ensemble: _Optional[_Union[Ensemble, _Mapping]] = ..., knn_few_shot: _Optional[_Union[KNNFewShot, _Mapping]] = ..., gepa: _Optional[_Union[GEPA, _Mapping]] = ..., simba: _Optional[_Union[SIMBA, _Mapping]] = ..., task_lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., teacher_lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., prompt_lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., num_threads: _Optional[int] = ..., max_errors: _Optional[int] = ..., activate: _Optional[bool] = ..., display_name: _Optional[str] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., progress: _Optional[_Union[_job_pb2.JobProgress, _Mapping]] = ..., result: _Optional[_Union[OptimizationResult, _Mapping]] = ..., error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LabeledFewShot(_message.Message):
    __slots__ = ("k", "sample")
    K_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    k: int
    sample: bool
    def __init__(self, k: _Optional[int] = ..., sample: _Optional[bool] = ...) -> None: ...

class BootstrapFewShot(_message.Message):
    __slots__ = ("max_bootstrapped_demos", "max_labeled_demos", "max_rounds", "metric_threshold")
    MAX_BOOTSTRAPPED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_LABELED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    METRIC_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    max_bootstrapped_demos: int
    max_labeled_demos: int
    max_rounds: int
    metric_threshold: float
    def __init__(self, max_bootstrapped_demos: _Optional[int] = ..., max_labeled_demos: _Optional[int] = ..., max_rounds: _Optional[int] = ..., metric_threshold: _Optional[float] = ...) -> None: ...

class BootstrapFewShotWithRandomSearch(_message.Message):
    __slots__ = ("max_bootstrapped_demos", "max_labeled_demos", "max_rounds", "metric_threshold", "num_candidate_programs", "stop_at_score")
    MAX_BOOTSTRAPPED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_LABELED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    METRIC_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NUM_CANDIDATE_PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    STOP_AT_SCORE_FIELD_NUMBER: _ClassVar[int]
    max_bootstrapped_demos: int
    max_labeled_demos: int
    max_rounds: int
    metric_threshold: float
    num_candidate_programs: int
    stop_at_score: float
    def __init__(self, max_bootstrapped_demos: _Optional[int] = ..., max_labeled_demos: _Optional[int] = ..., max_rounds: _Optional[int] = ..., metric_threshold: _Optional[float] = ..., num_candidate_programs: _Optional[int] = ..., stop_at_score: _Optional[float] = ...) -> None: ...

class COPRO(_message.Message):
    __slots__ = ("breadth", "depth", "init_temperature")
    BREADTH_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    INIT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    breadth: int
    depth: int
    init_temperature: float
    def __init__(self, breadth: _Optional[int] = ..., depth: _Optional[int] = ..., init_temperature: _Optional[float] = ...) -> None: ...

class MIPROv2(_message.Message):
    __slots__ = ("auto", "num_candidates", "num_trials", "max_bootstrapped_demos", "max_labeled_demos", "minibatch", "minibatch_size", "minibatch_full_eval_steps", "init_temperature", "seed", "metric_threshold", "program_aware_proposer", "data_aware_proposer", "tip_aware_proposer", "fewshot_aware_proposer", "view_data_batch_size")
    AUTO_FIELD_NUMBER: _ClassVar[int]
    NUM_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    NUM_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_BOOTSTRAPPED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_LABELED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MINIBATCH_FIELD_NUMBER: _ClassVar[int]
    MINIBATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MINIBATCH_FULL_EVAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    INIT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    METRIC_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_AWARE_PROPOSER_FIELD_NUMBER: _ClassVar[int]
    DATA_AWARE_PROPOSER_FIELD_NUMBER: _ClassVar[int]
    TIP_AWARE_PROPOSER_FIELD_NUMBER: _ClassVar[int]
    FEWSHOT_AWARE_PROPOSER_FIELD_NUMBER: _ClassVar[int]
    VIEW_DATA_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    auto: str
    num_candidates: int
    num_trials: int
    max_bootstrapped_demos: int
    max_labeled_demos: int
    minibatch: bool
    minibatch_size: int
    minibatch_full_eval_steps: int
    init_temperature: float
    seed: int
    metric_threshold: float
    program_aware_proposer: bool
    data_aware_proposer: bool
    tip_aware_proposer: bool
    fewshot_aware_proposer: bool
    view_data_batch_size: int
    def __init__(self, auto: _Optional[str] = ..., num_candidates: _Optional[int] = ..., num_trials: _Optional[int] = ..., max_bootstrapped_demos: _Optional[int] = ..., max_labeled_demos: _Optional[int] = ..., minibatch: _Optional[bool] = ..., minibatch_size: _Optional[int] = ..., minibatch_full_eval_steps: _Optional[int] = ..., init_temperature: _Optional[float] = ..., seed: _Optional[int] = ..., metric_threshold: _Optional[float] = ..., program_aware_proposer: _Optional[bool] = ..., data_aware_proposer: _Optional[bool] = ..., tip_aware_proposer: _Optional[bool] = ..., fewshot_aware_proposer: _Optional[bool] = ..., view_data_batch_size: _Optional[int] = ...) -> None: ...

class Ensemble(_message.Message):
    __slots__ = ("programs", "reduce", "size", "seed", "field")
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    REDUCE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    programs: _containers.RepeatedScalarFieldContainer[str]
    reduce: _module_pb2.EnsembleReduce
    size: int
    seed: int
    field: str
    def __init__(self, programs: _Optional[_Iterable[str]] = ..., reduce: _Optional[_Union[_module_pb2.EnsembleReduce, str]] = ..., size: _Optional[int] = ..., seed: _Optional[int] = ..., field: _Optional[str] = ...) -> None: ...

class KNNFewShot(_message.Message):
    __slots__ = ("k", "embedding_model", "max_bootstrapped_demos", "max_labeled_demos", "max_rounds", "bootstrap_metric")
    K_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_BOOTSTRAPPED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_LABELED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_METRIC_FIELD_NUMBER: _ClassVar[int]
    k: int
    embedding_model: str
    max_bootstrapped_demos: int
    max_labeled_demos: int
    max_rounds: int
    bootstrap_metric: _metric_pb2.MetricSpec
    def __init__(self, k: _Optional[int] = ..., embedding_model: _Optional[str] = ..., max_bootstrapped_demos: _Optional[int] = ..., max_labeled_demos: _Optional[int] = ..., max_rounds: _Optional[int] = ..., bootstrap_metric: _Optional[_Union[_metric_pb2.MetricSpec, _Mapping]] = ...) -> None: ...

class GEPA(_message.Message):
    __slots__ = ("auto", "max_full_evals", "max_metric_calls", "reflection_lm", "reflection_minibatch_size", "candidate_selection_strategy", "skip_perfect_score", "component_selector", "use_merge", "max_merge_invocations", "failure_score", "perfect_score", "seed")
    AUTO_FIELD_NUMBER: _ClassVar[int]
    MAX_FULL_EVALS_FIELD_NUMBER: _ClassVar[int]
    MAX_METRIC_CALLS_FIELD_NUMBER: _ClassVar[int]
    REFLECTION_LM_FIELD_NUMBER: _ClassVar[int]
    REFLECTION_MINIBATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SELECTION_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SKIP_PERFECT_SCORE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    USE_MERGE_FIELD_NUMBER: _ClassVar[int]
    MAX_MERGE_INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_SCORE_FIELD_NUMBER: _ClassVar[int]
    PERFECT_SCORE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    auto: str
    max_full_evals: int
    max_metric_calls: int
    reflection_lm: _lm_spec_pb2.LMSpec
    reflection_minibatch_size: int
    candidate_selection_strategy: str
    skip_perfect_score: bool
    component_selector: str
    use_merge: bool
    max_merge_invocations: int
    failure_score: float
    perfect_score: float
    seed: int
    def __init__(self, auto: _Optional[str] = ..., max_full_evals: _Optional[int] = ..., max_metric_calls: _Optional[int] = ..., reflection_lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., reflection_minibatch_size: _Optional[int] = ..., candidate_selection_strategy: _Optional[str] = ..., skip_perfect_score: _Optional[bool] = ..., component_selector: _Optional[str] = ..., use_merge: _Optional[bool] = ..., max_merge_invocations: _Optional[int] = ..., failure_score: _Optional[float] = ..., perfect_score: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class SIMBA(_message.Message):
    __slots__ = ("bsize", "num_candidates", "max_steps", "max_demos", "demo_input_field_maxlen", "temperature_for_sampling", "temperature_for_candidates", "seed")
    BSIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_DEMOS_FIELD_NUMBER: _ClassVar[int]
    DEMO_INPUT_FIELD_MAXLEN_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FOR_SAMPLING_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FOR_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    bsize: int
    num_candidates: int
    max_steps: int
    max_demos: int
    demo_input_field_maxlen: int
    temperature_for_sampling: float
    temperature_for_candidates: float
    seed: int
    def __init__(self, bsize: _Optional[int] = ..., num_candidates: _Optional[int] = ..., max_steps: _Optional[int] = ..., max_demos: _Optional[int] = ..., demo_input_field_maxlen: _Optional[int] = ..., temperature_for_sampling: _Optional[float] = ..., temperature_for_candidates: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class OptimizationResult(_message.Message):
    __slots__ = ("program_revision", "activated", "best_score", "best_candidate")
    PROGRAM_REVISION_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    BEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    BEST_CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    program_revision: str
    activated: bool
    best_score: float
    best_candidate: int
    def __init__(self, program_revision: _Optional[str] = ..., activated: _Optional[bool] = ..., best_score: _Optional[float] = ..., best_candidate: _Optional[int] = ...) -> None: ...

class OptimizationCandidate(_message.Message):
    __slots__ = ("index", "label", "score", "module", "parents", "changed_predictors", "instance_scores")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_PREDICTORS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_SCORES_FIELD_NUMBER: _ClassVar[int]
    index: int
    label: str
    score: float
    module: _module_pb2.ModuleSpec
    parents: _containers.RepeatedScalarFieldContainer[int]
    changed_predictors: _containers.RepeatedScalarFieldContainer[str]
    instance_scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, index: _Optional[int] = ..., label: _Optional[str] = ..., score: _Optional[float] = ..., module: _Optional[_Union[_module_pb2.ModuleSpec, _Mapping]] = ..., parents: _Optional[_Iterable[int]] = ..., changed_predictors: _Optional[_Iterable[str]] = ..., instance_scores: _Optional[_Iterable[float]] = ...) -> None: ...

class CreateOptimizationRequest(_message.Message):
    __slots__ = ("optimization_id", "optimization")
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    optimization: Optimization
    def __init__(self, optimization_id: _Optional[str] = ..., optimization: _Optional[_Union[Optimization, _Mapping]] = ...) -> None: ...

class GetOptimizationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListOptimizationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOptimizationsResponse(_message.Message):
    __slots__ = ("optimizations", "next_page_token")
    OPTIMIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    optimizations: _containers.RepeatedCompositeFieldContainer[Optimization]
    next_page_token: str
    def __init__(self, optimizations: _Optional[_Iterable[_Union[Optimization, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelOptimizationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchOptimizationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchOptimizationResponse(_message.Message):
    __slots__ = ("optimization",)
    OPTIMIZATION_FIELD_NUMBER: _ClassVar[int]
    optimization: Optimization
    def __init__(self, optimization: _Optional[_Union[Optimization, _Mapping]] = ...) -> None: ...

class ListOptimizationCandidatesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOptimizationCandidatesResponse(_message.Message):
    __slots__ = ("candidates", "next_page_token")
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[OptimizationCandidate]
    next_page_token: str
    def __init__(self, candidates: _Optional[_Iterable[_Union[OptimizationCandidate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

from dspy_grpc.v1 import lm_spec_pb2 as _lm_spec_pb2
from dspy_grpc.v1 import metric_pb2 as _metric_pb2
from dspy_grpc.v1 import corpus_pb2 as _corpus_pb2
from dspy_grpc.v1 import signature_pb2 as _signature_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union
from dspy_grpc.v1.lm_spec_pb2 import LMOptions as LMOptions
from dspy_grpc.v1.lm_spec_pb2 import DummyLM as DummyLM
from dspy_grpc.v1.lm_spec_pb2 import DummyResponse as DummyResponse
from dspy_grpc.v1.lm_spec_pb2 import DummyRule as DummyRule
from dspy_grpc.v1.lm_spec_pb2 import LMSpec as LMSpec
from dspy_grpc.v1.lm_spec_pb2 import CachePolicy as CachePolicy

DESCRIPTOR: _descriptor.FileDescriptor
CACHE_POLICY_UNSPECIFIED: _lm_spec_pb2.CachePolicy
CACHE_POLICY_USE: _lm_spec_pb2.CachePolicy
CACHE_POLICY_BYPASS: _lm_spec_pb2.CachePolicy
CACHE_POLICY_REFRESH: _lm_spec_pb2.CachePolicy

class AdapterKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADAPTER_KIND_UNSPECIFIED: _ClassVar[AdapterKind]
    ADAPTER_KIND_CHAT: _ClassVar[AdapterKind]
    ADAPTER_KIND_JSON: _ClassVar[AdapterKind]
    ADAPTER_KIND_XML: _ClassVar[AdapterKind]
    ADAPTER_KIND_TWO_STEP: _ClassVar[AdapterKind]

class EnsembleReduce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENSEMBLE_REDUCE_UNSPECIFIED: _ClassVar[EnsembleReduce]
    ENSEMBLE_REDUCE_NONE: _ClassVar[EnsembleReduce]
    ENSEMBLE_REDUCE_MAJORITY: _ClassVar[EnsembleReduce]

class LoopAccumulate(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOOP_ACCUMULATE_UNSPECIFIED: _ClassVar[LoopAccumulate]
    LOOP_ACCUMULATE_APPEND: _ClassVar[LoopAccumulate]
    LOOP_ACCUMULATE_APPEND_UNIQUE: _ClassVar[LoopAccumulate]
    LOOP_ACCUMULATE_LAST: _ClassVar[LoopAccumulate]

class ValueOperation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_OPERATION_UNSPECIFIED: _ClassVar[ValueOperation]
    VALUE_OPERATION_TEMPLATE: _ClassVar[ValueOperation]
    VALUE_OPERATION_JOIN: _ClassVar[ValueOperation]
    VALUE_OPERATION_CONCAT: _ClassVar[ValueOperation]
    VALUE_OPERATION_FLATTEN: _ClassVar[ValueOperation]
    VALUE_OPERATION_DEDUPE: _ClassVar[ValueOperation]
    VALUE_OPERATION_CONSTANT: _ClassVar[ValueOperation]
    VALUE_OPERATION_OBJECT: _ClassVar[ValueOperation]
ADAPTER_KIND_UNSPECIFIED: AdapterKind
ADAPTER_KIND_CHAT: AdapterKind
ADAPTER_KIND_JSON: AdapterKind
ADAPTER_KIND_XML: AdapterKind
ADAPTER_KIND_TWO_STEP: AdapterKind
ENSEMBLE_REDUCE_UNSPECIFIED: EnsembleReduce
ENSEMBLE_REDUCE_NONE: EnsembleReduce
ENSEMBLE_REDUCE_MAJORITY: EnsembleReduce
LOOP_ACCUMULATE_UNSPECIFIED: LoopAccumulate
LOOP_ACCUMULATE_APPEND: LoopAccumulate
LOOP_ACCUMULATE_APPEND_UNIQUE: LoopAccumulate
LOOP_ACCUMULATE_LAST: LoopAccumulate
VALUE_OPERATION_UNSPECIFIED: ValueOperation
VALUE_OPERATION_TEMPLATE: ValueOperation
VALUE_OPERATION_JOIN: ValueOperation
VALUE_OPERATION_CONCAT: ValueOperation
VALUE_OPERATION_FLATTEN: ValueOperation
VALUE_OPERATION_DEDUPE: ValueOperation
VALUE_OPERATION_CONSTANT: ValueOperation
VALUE_OPERATION_OBJECT: ValueOperation

class PredictorSpec(_message.Message):
    __slots__ = ("signature", "demos", "adapter", "lm", "extraction_lm")
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DEMOS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_LM_FIELD_NUMBER: _ClassVar[int]
    signature: _signature_pb2.Signature
    demos: _containers.RepeatedCompositeFieldContainer[_signature_pb2.Example]
    adapter: AdapterKind
    lm: _lm_spec_pb2.LMSpec
    extraction_lm: _lm_spec_pb2.LMSpec
    def __init__(self, signature: _Optional[_Union[_signature_pb2.Signature, _Mapping]] = ..., demos: _Optional[_Iterable[_Union[_signature_pb2.Example, _Mapping]]] = ..., adapter: _Optional[_Union[AdapterKind, str]] = ..., lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., extraction_lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ...) -> None: ...

class PredictModule(_message.Message):
    __slots__ = ("predictor",)
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    predictor: PredictorSpec
    def __init__(self, predictor: _Optional[_Union[PredictorSpec, _Mapping]] = ...) -> None: ...

class ChainOfThoughtModule(_message.Message):
    __slots__ = ("predictor",)
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    predictor: PredictorSpec
    def __init__(self, predictor: _Optional[_Union[PredictorSpec, _Mapping]] = ...) -> None: ...

class PredictorState(_message.Message):
    __slots__ = ("instructions", "demos")
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    DEMOS_FIELD_NUMBER: _ClassVar[int]
    instructions: str
    demos: _containers.RepeatedCompositeFieldContainer[_signature_pb2.Example]
    def __init__(self, instructions: _Optional[str] = ..., demos: _Optional[_Iterable[_Union[_signature_pb2.Example, _Mapping]]] = ...) -> None: ...

class ToolSpec(_message.Message):
    __slots__ = ("name", "description", "args_json_schema", "builtin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ARGS_JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    args_json_schema: str
    builtin: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., args_json_schema: _Optional[str] = ..., builtin: _Optional[str] = ...) -> None: ...

class ReActModule(_message.Message):
    __slots__ = ("predictor", "tools", "max_iters", "react", "extract")
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERS_FIELD_NUMBER: _ClassVar[int]
    REACT_FIELD_NUMBER: _ClassVar[int]
    EXTRACT_FIELD_NUMBER: _ClassVar[int]
    predictor: PredictorSpec
    tools: _containers.RepeatedCompositeFieldContainer[ToolSpec]
    max_iters: int
    react: PredictorState
    extract: PredictorState
    def __init__(self, predictor: _Optional[_Union[PredictorSpec, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[ToolSpec, _Mapping]]] = ..., max_iters: _Optional[int] = ..., react: _Optional[_Union[PredictorState, _Mapping]] = ..., extract: _Optional[_Union[PredictorState, _Mapping]] = ...) -> None: ...

class MultiChainComparisonModule(_message.Message):
    __slots__ = ("predictor", "m", "temperature", "generator")
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    M_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    predictor: PredictorSpec
    m: int
    temperature: float
    generator: ModuleSpec
    def __init__(self, predictor: _Optional[_Union[PredictorSpec, _Mapping]] = ..., m: _Optional[int] = ..., temperature: _Optional[float] = ..., generator: _Optional[_Union[ModuleSpec, _Mapping]] = ...) -> None: ...

class RewardSpec(_message.Message):
    __slots__ = ("exact_match", "lm_judge", "metric")
    EXACT_MATCH_FIELD_NUMBER: _ClassVar[int]
    LM_JUDGE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    exact_match: ExactMatchReward
    lm_judge: LMJudgeReward
    metric: _metric_pb2.MetricSpec
    def __init__(self, exact_match: _Optional[_Union[ExactMatchReward, _Mapping]] = ..., lm_judge: _Optional[_Union[LMJudgeReward, _Mapping]] = ..., metric: _Optional[_Union[_metric_pb2.MetricSpec, _Mapping]] = ...) -> None: ...

class ExactMatchReward(_message.Message):
    __slots__ = ("field", "reference_field", "values")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: str
    reference_field: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, field: _Optional[str] = ..., reference_field: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class LMJudgeReward(_message.Message):
    __slots__ = ("judge", "score_field", "chain_of_thought")
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_FIELD_NUMBER: _ClassVar[int]
    CHAIN_OF_THOUGHT_FIELD_NUMBER: _ClassVar[int]
    judge: PredictorSpec
    score_field: str
    chain_of_thought: bool
    def __init__(self, judge: _Optional[_Union[PredictorSpec, _Mapping]] = ..., score_field: _Optional[str] = ..., chain_of_thought: _Optional[bool] = ...) -> None: ...

class BestOfNModule(_message.Message):
    __slots__ = ("module", "n", "reward", "threshold", "fail_count")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FAIL_COUNT_FIELD_NUMBER: _ClassVar[int]
    module: ModuleSpec
    n: int
    reward: RewardSpec
    threshold: float
    fail_count: int
    def __init__(self, module: _Optional[_Union[ModuleSpec, _Mapping]] = ..., n: _Optional[int] = ..., reward: _Optional[_Union[RewardSpec, _Mapping]] = ..., threshold: _Optional[float] = ..., fail_count: _Optional[int] = ...) -> None: ...

class RefineModule(_message.Message):
    __slots__ = ("module", "n", "reward", "threshold", "fail_count", "feedback_lm")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FAIL_COUNT_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_LM_FIELD_NUMBER: _ClassVar[int]
    module: ModuleSpec
    n: int
    reward: RewardSpec
    threshold: float
    fail_count: int
    feedback_lm: _lm_spec_pb2.LMSpec
    def __init__(self, module: _Optional[_Union[ModuleSpec, _Mapping]] = ..., n: _Optional[int] = ..., reward: _Optional[_Union[RewardSpec, _Mapping]] = ..., threshold: _Optional[float] = ..., fail_count: _Optional[int] = ..., feedback_lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ...) -> None: ...

class ParallelModule(_message.Message):
    __slots__ = ("module", "num_threads", "max_errors")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    NUM_THREADS_FIELD_NUMBER: _ClassVar[int]
    MAX_ERRORS_FIELD_NUMBER: _ClassVar[int]
    module: ModuleSpec
    num_threads: int
    max_errors: int
    def __init__(self, module: _Optional[_Union[ModuleSpec, _Mapping]] = ..., num_threads: _Optional[int] = ..., max_errors: _Optional[int] = ...) -> None: ...

class MajorityModule(_message.Message):
    __slots__ = ("module", "n", "field")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    module: ModuleSpec
    n: int
    field: str
    def __init__(self, module: _Optional[_Union[ModuleSpec, _Mapping]] = ..., n: _Optional[int] = ..., field: _Optional[str] = ...) -> None: ...

class GraphStep(_message.Message):
    __slots__ = ("name", "module", "inputs")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    module: ModuleSpec
    inputs: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., module: _Optional[_Union[ModuleSpec, _Mapping]] = ..., inputs: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GraphModule(_message.Message):
    __slots__ = ("steps", "outputs")
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[GraphStep]
    outputs: _containers.ScalarMap[str, str]
    def __init__(self, steps: _Optional[_Iterable[_Union[GraphStep, _Mapping]]] = ..., outputs: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EnsembleModule(_message.Message):
    __slots__ = ("programs", "reduce", "size", "seed", "field")
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    REDUCE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    programs: _containers.RepeatedCompositeFieldContainer[ModuleSpec]
    reduce: EnsembleReduce
    size: int
    seed: int
    field: str
    def __init__(self, programs: _Optional[_Iterable[_Union[ModuleSpec, _Mapping]]] = ..., reduce: _Optional[_Union[EnsembleReduce, str]] = ..., size: _Optional[int] = ..., seed: _Optional[int] = ..., field: _Optional[str] = ...) -> None: ...

class KNNFewShotModule(_message.Message):
    __slots__ = ("module", "k", "embedding_model", "examples", "max_bootstrapped_demos", "max_labeled_demos", "max_rounds", "teacher_lm", "metric")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_BOOTSTRAPPED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_LABELED_DEMOS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    TEACHER_LM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    module: ModuleSpec
    k: int
    embedding_model: str
    examples: _containers.RepeatedCompositeFieldContainer[KNNTrainingExample]
    max_bootstrapped_demos: int
    max_labeled_demos: int
    max_rounds: int
    teacher_lm: _lm_spec_pb2.LMSpec
    metric: _metric_pb2.MetricSpec
    def __init__(self, module: _Optional[_Union[ModuleSpec, _Mapping]] = ..., k: _Optional[int] = ..., embedding_model: _Optional[str] = ..., examples: _Optional[_Iterable[_Union[KNNTrainingExample, _Mapping]]] = ..., max_bootstrapped_demos: _Optional[int] = ..., max_labeled_demos: _Optional[int] = ..., max_rounds: _Optional[int] = ..., teacher_lm: _Optional[_Union[_lm_spec_pb2.LMSpec, _Mapping]] = ..., metric: _Optional[_Union[_metric_pb2.MetricSpec, _Mapping]] = ...) -> None: ...

class KNNTrainingExample(_message.Message):
    __slots__ = ("example", "embedding")
    EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    example: _signature_pb2.Example
    embedding: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, example: _Optional[_Union[_signature_pb2.Example, _Mapping]] = ..., embedding: _Optional[_Iterable[float]] = ...) -> None: ...

class ModuleSpec(_message.Message):
    __slots__ = ("predict", "chain_of_thought", "react", "multi_chain_comparison", "best_of_n", "refine", "parallel", "majority", "graph", "ensemble", "knn_few_shot", "retrieve", "loop", "value")
    PREDICT_FIELD_NUMBER: _ClassVar[int]
    CHAIN_OF_THOUGHT_FIELD_NUMBER: _ClassVar[int]
    REACT_FIELD_NUMBER: _ClassVar[int]
    MULTI_CHAIN_COMPARISON_FIELD_NUMBER: _ClassVar[int]
    BEST_OF_N_FIELD_NUMBER: _ClassVar[int]
    REFINE_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_FIELD_NUMBER: _ClassVar[int]
    MAJORITY_FIELD_NUMBER: _ClassVar[int]
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    ENSEMBLE_FIELD_NUMBER: _ClassVar[int]
    KNN_FEW_SHOT_FIELD_NUMBER: _ClassVar[int]
    RETRIEVE_FIELD_NUMBER: _ClassVar[int]
    LOOP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    predict: PredictModule
    chain_of_thought: ChainOfThoughtModule
    react: ReActModule
    multi_chain_comparison: MultiChainComparisonModule
    best_of_n: BestOfNModule
    refine: RefineModule
    parallel: ParallelModule
    majority: MajorityModule
    graph: GraphModule
    ensemble: EnsembleModule
    knn_few_shot: KNNFewShotModule
    retrieve: RetrieveModule
    loop: LoopModule
    value: ValueModule
    def __init__(self, predict: _Optional[_Union[PredictModule, _Mapping]] = ..., chain_of_thought: _Optional[_Union[ChainOfThoughtModule, _Mapping]] = ..., react: _Optional[_Union[ReActModule, _Mapping]] = ..., multi_chain_comparison: _Optional[_Union[MultiChainComparisonModule, _Mapping]] = ..., best_of_n: _Optional[_Union[BestOfNModule, _Mapping]] = ..., refine: _Optional[_Union[RefineModule, _Mapping]] = ..., parallel: _Optional[_Union[ParallelModule, _Mapping]] = ..., majority: _Optional[_Union[MajorityModule, _Mapping]] = ..., graph: _Optional[_Union[GraphModule, _Mapping]] = ..., ensemble: _Optional[_Union[EnsembleModule, _Mapping]] = ..., knn_few_shot: _Optional[_Union[KNNFewShotModule, _Mapping]] = ..., retrieve: _Optional[_Union[RetrieveModule, _Mapping]] = ..., loop: _Optional[_Union[LoopModule, _Mapping]] = ..., value: _Optional[_Union[ValueModule, _Mapping]] = ...) -> None: ...

class RetrieveModule(_message.Message):
    __slots__ = ("corpus", "colbertv2_url", "caller_tool", "k", "mode")
    CORPUS_FIELD_NUMBER: _ClassVar[int]
    COLBERTV2_URL_FIELD_NUMBER: _ClassVar[int]
    CALLER_TOOL_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    corpus: str
    colbertv2_url: str
    caller_tool: str
    k: int
    mode: _corpus_pb2.RetrievalMode
    def __init__(self, corpus: _Optional[str] = ..., colbertv2_url: _Optional[str] = ..., caller_tool: _Optional[str] = ..., k: _Optional[int] = ..., mode: _Optional[_Union[_corpus_pb2.RetrievalMode, str]] = ...) -> None: ...

class LoopVariable(_message.Message):
    __slots__ = ("name", "initial_json", "update", "accumulate")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INITIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    ACCUMULATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    initial_json: str
    update: str
    accumulate: LoopAccumulate
    def __init__(self, name: _Optional[str] = ..., initial_json: _Optional[str] = ..., update: _Optional[str] = ..., accumulate: _Optional[_Union[LoopAccumulate, str]] = ...) -> None: ...

class LoopModule(_message.Message):
    __slots__ = ("body", "max_iters", "variables", "stop_when")
    BODY_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    STOP_WHEN_FIELD_NUMBER: _ClassVar[int]
    body: GraphModule
    max_iters: int
    variables: _containers.RepeatedCompositeFieldContainer[LoopVariable]
    stop_when: str
    def __init__(self, body: _Optional[_Union[GraphModule, _Mapping]] = ..., max_iters: _Optional[int] = ..., variables: _Optional[_Iterable[_Union[LoopVariable, _Mapping]]] = ..., stop_when: _Optional[str] = ...) -> None: ...

class ValueModule(_message.Message):
    __slots__ = ("operation", "inputs", "template", "separator", "constant_json")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SEPARATOR_FIELD_NUMBER: _ClassVar[int]
    CONSTANT_JSON_FIELD_NUMBER: _ClassVar[int]
    operation: ValueOperation
    inputs: _containers.RepeatedScalarFieldContainer[str]
    template: str
    separator: str
    constant_json: str
    def __init__(self, operation: _Optional[_Union[ValueOperation, str]] = ..., inputs: _Optional[_Iterable[str]] = ..., template: _Optional[str] = ..., separator: _Optional[str] = ..., constant_json: _Optional[str] = ...) -> None: ...

"""What a module is, as data: predictors (signature, demos, adapter, LM) and the module kinds.

Each DSPy module kind has its own frozen dataclass; :data:`ModuleSpec` is their union. A spec is
checked by :func:`~.build.build_module` (which also turns it into the runtime tree) when a program is
created or updated and before an inline module runs, and turned into plain JSON for persistence by
:mod:`.storage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Union

from ..core.errors import invalid
from ..core.example import Example
from ..core.signature import Signature
from ..lm.dummy import DummySpec
from ..lm.types import NO_OPTIONS, LMOptions

if TYPE_CHECKING:
    from .metrics import Metric

ADAPTERS = ("chat", "json", "xml", "two_step")


class ModuleKind(str, Enum):
    PREDICT = "predict"
    CHAIN_OF_THOUGHT = "chain_of_thought"
    REACT = "react"
    MULTI_CHAIN_COMPARISON = "multi_chain_comparison"
    BEST_OF_N = "best_of_n"
    REFINE = "refine"
    PARALLEL = "parallel"
    MAJORITY = "majority"
    GRAPH = "graph"
    ENSEMBLE = "ensemble"
    KNN_FEW_SHOT = "knn_few_shot"
    RETRIEVE = "retrieve"
    LOOP = "loop"
    VALUE = "value"


@dataclass(frozen=True)
class LMChoice:
    """Which LM a predictor calls: a configured ``model`` alias or an inline scripted ``dummy``.

    Neither set means "whatever the caller or the server default provides". ``options`` are the
    sampling options layered over the model's configured defaults.
    """

    model: str = ""
    dummy: DummySpec | None = None
    options: LMOptions = NO_OPTIONS

    @property
    def is_set(self) -> bool:
        return bool(self.model) or self.dummy is not None

    def validate(self, path: str) -> LMChoice:
        self.options.validate(f"{path}.options")
        return self


#: No LM chosen (shared; choices are immutable).
NO_CHOICE = LMChoice()


@dataclass(frozen=True)
class PredictorSpec:
    signature: Signature
    demos: tuple[Example, ...] = ()
    adapter: str = "chat"
    lm: LMChoice = field(default_factory=LMChoice)
    #: The second LM of the two-step adapter (unused by the others).
    extraction_lm: LMChoice = field(default_factory=LMChoice)

    def validate(self, path: str) -> None:
        self.signature.validate(f"{path}.signature")
        if self.adapter not in ADAPTERS:
            raise invalid(f"{path}.adapter", f"must be one of {', '.join(ADAPTERS)}")
        if self.adapter == "two_step" and not self.extraction_lm.is_set:
            raise invalid(f"{path}.extraction_lm", "is required with the two-step adapter")


@dataclass(frozen=True)
class PredictorState:
    """What optimizers change in a predictor a module derives from its signature (ReAct's ``react``
    and ``extract.predict``): ``instructions`` (None keeps the derived ones) and demos."""

    instructions: str | None = None
    demos: tuple[Example, ...] = ()


@dataclass(frozen=True)
class ToolSpec:
    """A tool a ReAct agent may call. ``builtin`` names a server-side tool; empty means the caller
    runs it (InferenceService.Run). ``args`` maps each argument name to its JSON schema, in order."""

    name: str
    description: str = ""
    args: Mapping[str, Any] = field(default_factory=dict)
    builtin: str = ""


@dataclass(frozen=True)
class PredictSpec:
    predictor: PredictorSpec
    kind = ModuleKind.PREDICT


@dataclass(frozen=True)
class ChainOfThoughtSpec:
    predictor: PredictorSpec
    kind = ModuleKind.CHAIN_OF_THOUGHT


@dataclass(frozen=True)
class ReActSpec:
    """``dspy.ReAct(signature, tools, max_iters)``: ``predictor`` holds the user's signature, adapter
    and LM (its demos must be empty: demos belong to ``react`` / ``extract``)."""

    predictor: PredictorSpec
    tools: tuple[ToolSpec, ...] = ()
    max_iters: int = 20
    react: PredictorState = field(default_factory=PredictorState)
    extract: PredictorState = field(default_factory=PredictorState)
    kind = ModuleKind.REACT


@dataclass(frozen=True)
class MultiChainComparisonSpec:
    """``dspy.MultiChainComparison(signature, M, temperature)``. The attempts come from the
    ``completions`` input, or, when it is not given, from running ``generator`` M times."""

    predictor: PredictorSpec
    m: int = 3
    temperature: float = 0.7
    generator: ModuleSpec | None = None
    kind = ModuleKind.MULTI_CHAIN_COMPARISON


@dataclass(frozen=True)
class BestOfNSpec:
    module: ModuleSpec
    n: int
    reward: Metric
    threshold: float = 0.0
    fail_count: int | None = None
    kind = ModuleKind.BEST_OF_N


@dataclass(frozen=True)
class RefineSpec:
    module: ModuleSpec
    n: int
    reward: Metric
    threshold: float = 0.0
    fail_count: int | None = None
    #: The LM of the feedback step (DSPy's OfferFeedback); unset: the request's LM, else the server
    #: default, else the LM of the module's first predictor.
    feedback_lm: LMChoice = field(default_factory=LMChoice)
    kind = ModuleKind.REFINE


@dataclass(frozen=True)
class ParallelSpec:
    """``dspy.Parallel``: ``module`` on every item of the ``items`` input, ``num_threads`` at a time."""

    module: ModuleSpec
    num_threads: int = 8
    max_errors: int = 10
    kind = ModuleKind.PARALLEL


@dataclass(frozen=True)
class MajoritySpec:
    """``dspy.majority`` over ``n`` runs of ``module`` (distinct rollout ids), voting on ``field``
    (empty: the module's last output field)."""

    module: ModuleSpec
    n: int = 5
    field: str = ""
    kind = ModuleKind.MAJORITY


@dataclass(frozen=True)
class GraphStep:
    """One named step of a graph. ``inputs`` maps each input field of the step's module to its source:
    ``"inputs.<program input>"`` or ``"<step>.<output field>"``."""

    name: str
    module: ModuleSpec
    inputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GraphSpec:
    """Named steps wired by explicit input mappings; steps whose inputs are ready run concurrently.
    ``outputs`` maps each program output name to its source ``"<step>.<field>"``."""

    steps: tuple[GraphStep, ...]
    outputs: tuple[tuple[str, str], ...]
    kind = ModuleKind.GRAPH


#: How an ensemble combines its programs' outputs: DSPy's ``reduce_fn=None`` (the list) or ``dspy.majority``.
ENSEMBLE_REDUCES = ("none", "majority")


@dataclass(frozen=True)
class EnsembleSpec:
    """``dspy.Ensemble(reduce_fn, size).compile(programs)``: every call runs ``size`` of the programs
    (all when 0) on the same inputs and reduces their outputs: ``"majority"`` votes on ``field`` (empty:
    the last output field), ``"none"`` returns them all as ``completions``. The sample is drawn with a
    generator seeded by ``seed``, the call's rollout id and the inputs, so it is reproducible."""

    programs: tuple[ModuleSpec, ...]
    reduce: str = "none"
    size: int = 0
    seed: int = 0
    field: str = ""
    kind = ModuleKind.ENSEMBLE


@dataclass(frozen=True)
class KNNExample:
    """A training example of KNNFewShot with the vector of its input text (see :mod:`.knn`)."""

    example: Example
    embedding: tuple[float, ...]


@dataclass(frozen=True)
class KNNFewShotSpec:
    """The program ``dspy.KNNFewShot(k, trainset, vectorizer, **bootstrap_args).compile(student)``
    returns: per call, BootstrapFewShot over the ``k`` training examples nearest the inputs (by the
    ``embedding_model``'s vectors), then ``module`` with the demos it bootstrapped. ``teacher_lm``
    (when set) runs the teacher's predictors, like ``teacher.set_lm``."""

    module: ModuleSpec
    k: int
    embedding_model: str
    examples: tuple[KNNExample, ...]
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    teacher_lm: LMChoice = field(default_factory=LMChoice)
    #: What a teacher run must pass to be a demo (None: every completed run, DSPy's metric=None).
    metric: Metric | None = None
    kind = ModuleKind.KNN_FEW_SHOT


#: How a ``retrieve`` module searches a corpus.
RETRIEVAL_MODES = ("bm25", "dense", "hybrid")
#: Where a ``retrieve`` module reads passages from.
RETRIEVE_SOURCES = ("corpus", "colbertv2_url", "caller_tool")


@dataclass(frozen=True)
class RetrieveSpec:
    """A retriever: ``query`` -> the ``k`` best passages of a stored corpus (``source == "corpus"``,
    ``target`` its id), a ColBERTv2 server (``"colbertv2_url"``, ``target`` the URL) or a tool the
    caller runs (``"caller_tool"``, ``target`` the tool's name)."""

    source: str
    target: str
    k: int = 3
    #: With a corpus: "bm25", "dense" or "hybrid".
    mode: str = "bm25"
    kind = ModuleKind.RETRIEVE


#: How a loop variable folds in each iteration's value.
LOOP_ACCUMULATES = ("append", "append_unique", "last")


@dataclass(frozen=True)
class LoopVariable:
    """A value carried across iterations: ``initial`` (JSON value; None with ``initial_set`` False
    means the default: ``[]`` for the appending modes, ``None`` for "last"), folded with each
    iteration's body output ``update``."""

    name: str
    update: str
    accumulate: str = "append"
    initial: Any = None
    initial_set: bool = False

    @property
    def start(self) -> Any:
        if self.initial_set:
            return self.initial
        return None if self.accumulate == "last" else []


@dataclass(frozen=True)
class LoopSpec:
    """``for _ in range(max_iters)`` over ``body`` (a graph), carrying ``variables``; optionally
    stopping after an iteration whose body output ``stop_when`` is truthy."""

    body: GraphSpec
    max_iters: int
    variables: tuple[LoopVariable, ...] = ()
    stop_when: str = ""
    kind = ModuleKind.LOOP


#: What a value step computes (see module.proto's ValueOperation).
VALUE_OPERATIONS = ("template", "join", "concat", "flatten", "dedupe", "constant", "object")


@dataclass(frozen=True)
class ValueSpec:
    """A value computed without an LM; its one output is ``value``. ``constant`` holds the decoded
    JSON of a "constant" operation."""

    operation: str
    inputs: tuple[str, ...] = ()
    template: str = ""
    separator: str = ""
    constant: Any = None
    kind = ModuleKind.VALUE


ModuleSpec = Union[
    PredictSpec, ChainOfThoughtSpec, ReActSpec, MultiChainComparisonSpec, BestOfNSpec, RefineSpec,
    ParallelSpec, MajoritySpec, GraphSpec, EnsembleSpec, KNNFewShotSpec, RetrieveSpec, LoopSpec, ValueSpec,
]

#: Module kinds that hold a single user predictor (``spec.predictor``).
PREDICTOR_KINDS = (PredictSpec, ChainOfThoughtSpec, ReActSpec, MultiChainComparisonSpec)
#: Module kinds that wrap another module (``spec.module``).
WRAPPER_KINDS = (BestOfNSpec, RefineSpec, ParallelSpec, MajoritySpec)

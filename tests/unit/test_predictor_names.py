"""The spec walker (DSPy import, optimizers) visits predictors under the same names, in the same order,
as the runtime nodes report them -- for every module kind, nested in each other."""

from __future__ import annotations

from dspy_grpc_server.core.example import Example
from dspy_grpc_server.core.signature import parse_signature
from dspy_grpc_server.modules.build import build_module
from dspy_grpc_server.modules.metrics import FieldMetric
from dspy_grpc_server.modules.rewrite import PredictorRewriter
from dspy_grpc_server.modules.spec import (
    BestOfNSpec,
    ChainOfThoughtSpec,
    EnsembleSpec,
    GraphSpec,
    GraphStep,
    KNNExample,
    KNNFewShotSpec,
    MajoritySpec,
    MultiChainComparisonSpec,
    PredictorSpec,
    PredictSpec,
    ReActSpec,
    RefineSpec,
    ToolSpec,
)
from dspy_grpc_server.modules.storage import module_from_dict, module_to_dict
from dspy_grpc_server.optimize.program import PredictorUpdate, predictors, updated

QA = PredictorSpec(parse_signature("question -> answer"))
REWARD = FieldMetric("exact_match", "answer", values=("4",))

EVERYTHING = GraphSpec(
    steps=(
        GraphStep("plain", PredictSpec(QA), (("question", "inputs.question"),)),
        GraphStep("cot", ChainOfThoughtSpec(QA), (("question", "inputs.question"),)),
        GraphStep("agent", ReActSpec(QA, tools=(ToolSpec("calc", builtin="calculator"),)),
                  (("question", "inputs.question"),)),
        GraphStep("compare", MultiChainComparisonSpec(QA, generator=ChainOfThoughtSpec(QA)),
                  (("question", "inputs.question"), ("completions", "inputs.completions"))),
        GraphStep("best", BestOfNSpec(ChainOfThoughtSpec(QA), 2, REWARD), (("question", "inputs.question"),)),
        GraphStep("refined", RefineSpec(PredictSpec(QA), 2, REWARD), (("question", "inputs.question"),)),
        GraphStep("voted", MajoritySpec(PredictSpec(QA), 3), (("question", "inputs.question"),)),
        GraphStep("ensembled", EnsembleSpec((PredictSpec(QA), ChainOfThoughtSpec(QA)), "majority", 1, 5),
                  (("question", "inputs.question"),)),
        GraphStep("nearest", KNNFewShotSpec(ChainOfThoughtSpec(QA), 1, "vectors", (
            KNNExample(Example({"question": "q", "answer": "a"}, ("question",)), (1.0, 0.0)),)),
                  (("question", "inputs.question"),)),
    ),
    outputs=(("answer", "ensembled.answer"),),
)


class Recorder(PredictorRewriter):
    def __init__(self) -> None:
        self.names: list[str] = []

    def plain(self, predictor, name, signature):
        self.names.append(name)
        return predictor

    def react(self, spec, name):
        self.names += [f"{name}.react", f"{name}.extract.predict"]
        return spec


def test_the_walker_and_the_nodes_name_predictors_alike():
    recorder = Recorder()
    assert recorder.apply(EVERYTHING) == EVERYTHING
    names = [p.name for p in build_module(EVERYTHING).predictors()]
    assert sorted(recorder.names) == sorted(names)
    assert "ensembled.programs[0]" in names and "ensembled.programs[1].predict" in names
    assert "nearest.predict" in names


def test_every_predictor_takes_its_own_demos_and_instructions():
    demo = (Example({"question": "q", "answer": "a"}),)
    changes = {view.name: PredictorUpdate(demos=demo, instructions=f"Be {view.name}.") for view in predictors(EVERYTHING)}
    result = updated(EVERYTHING, changes)
    for view in predictors(result):
        assert view.demos == demo, view.name
        assert view.signature.instructions == f"Be {view.name}.", view.name
    assert module_from_dict(module_to_dict(result)) == result

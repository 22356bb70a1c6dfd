"""Builds the runtime :class:`Node` tree from a :data:`ModuleSpec`, checking it on the way.

:func:`build_module` is the one validation of a module spec: every problem is an InvalidArgument
whose field path follows the request (``program.module.graph.steps[1].inputs.question``), raised when
a program is created or updated — never first at call time.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from ..core import bounds
from ..core.bounds import Range
from ..core.errors import invalid
from ..core.signature import Field, Signature
from ..core.types import TypeKind, format_type
from ..core.values import allows_none
from .basic import ChainOfThoughtNode, MultiChainComparisonNode, PredictNode
from .derive import FINISH
from .ensemble import EnsembleNode
from .graph import PROGRAM_INPUTS, GraphNode, Source, WiredStep
from .knn import KNNFewShotNode
from .loop import LoopNode
from .metrics import Metric, validate_metric
from .node import Node, join
from .parallel import ParallelNode
from .react import TRAJECTORY, ReActNode
from .retrieve import RetrieveNode
from .rollouts import BestOfNNode, MajorityNode, RefineNode
from .spec import (
    BestOfNSpec,
    ChainOfThoughtSpec,
    ENSEMBLE_REDUCES,
    EnsembleSpec,
    GraphSpec,
    GraphStep,
    KNNFewShotSpec,
    LOOP_ACCUMULATES,
    LoopSpec,
    MajoritySpec,
    ModuleSpec,
    MultiChainComparisonSpec,
    ParallelSpec,
    PredictSpec,
    ReActSpec,
    RefineSpec,
    RETRIEVAL_MODES,
    RETRIEVE_SOURCES,
    RetrieveSpec,
    VALUE_OPERATIONS,
    ValueSpec,
)
from .tools import BUILTIN_TOOLS
from .value_step import MAX_INPUTS, MAX_TEXT, ValueNode, template_fields

MAX_ITERS_LIMIT = 100
MAX_RUNS = 100
#: Passages per retrieval.
MAX_RETRIEVE_K = 1000
_CORPUS_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")


def build_module(spec: ModuleSpec, path: str = "module", name: str = "") -> Node:
    """The runtime tree for ``spec`` (``name``: its DSPy attribute path, "" for a program)."""

    here = f"{path}.{spec.kind.value}"
    if isinstance(spec, PredictSpec):
        spec.predictor.validate(f"{here}.predictor")
        return PredictNode(name, spec.predictor)
    if isinstance(spec, ChainOfThoughtSpec):
        spec.predictor.validate(f"{here}.predictor")
        return ChainOfThoughtNode(name, spec.predictor)
    if isinstance(spec, ReActSpec):
        _check_react(spec, here)
        return ReActNode(name, spec.predictor, spec.tools, spec.max_iters, spec.react, spec.extract)
    if isinstance(spec, MultiChainComparisonSpec):
        return _multi_chain(spec, here, name)
    if isinstance(spec, (BestOfNSpec, RefineSpec)):
        _check_runs(spec.n, f"{here}.n")
        inner = build_module(spec.module, f"{here}.module", join(name, "module"))
        _check_reward(spec.reward, inner, f"{here}.reward")
        bounds.FINITE.check(spec.threshold, f"{here}.threshold")
        Range(0, bounds.MODULE_RUNS.high).check(spec.fail_count, f"{here}.fail_count")
        if isinstance(spec, BestOfNSpec):
            return BestOfNNode(name, inner, spec.n, spec.reward, spec.threshold, spec.fail_count)
        return RefineNode(name, inner, spec.n, spec.reward, spec.threshold, spec.fail_count, spec.feedback_lm,
                          describe_module(spec.module))
    if isinstance(spec, ParallelSpec):
        bounds.CONCURRENCY.check(spec.num_threads, f"{here}.num_threads")
        bounds.MAX_ERRORS.check(spec.max_errors, f"{here}.max_errors")
        inner = build_module(spec.module, f"{here}.module", join(name, "module"))
        return ParallelNode(name, inner, spec.num_threads, spec.max_errors)
    if isinstance(spec, MajoritySpec):
        _check_runs(spec.n, f"{here}.n")
        inner = build_module(spec.module, f"{here}.module", join(name, "module"))
        if spec.field and spec.field not in inner.output_names:
            raise invalid(f"{here}.field", f"{spec.field!r} is not an output of the module ({_names(inner.output_names)})")
        return MajorityNode(name, inner, spec.n, spec.field)
    if isinstance(spec, GraphSpec):
        return _graph(spec, here, name)
    if isinstance(spec, EnsembleSpec):
        return _ensemble(spec, here, name)
    if isinstance(spec, KNNFewShotSpec):
        return _knn_few_shot(spec, here, name)
    if isinstance(spec, RetrieveSpec):
        return _retrieve(spec, here, name)
    if isinstance(spec, LoopSpec):
        return _loop(spec, here, name, prefix=name)
    if isinstance(spec, ValueSpec):
        return _value(spec, here, name)
    raise invalid(path, "is required: set one module kind")  # pragma: no cover


def _names(names: Any) -> str:
    return ", ".join(names) or "none"


def _check_runs(n: int, path: str) -> None:
    bounds.MODULE_RUNS.check(n, path)


def _check_react(spec: ReActSpec, here: str) -> None:
    spec.predictor.validate(f"{here}.predictor")
    if spec.predictor.demos:
        raise invalid(f"{here}.predictor.demos", "ReAct keeps demos per predictor: set react.demos or extract.demos")
    if any(f.name == TRAJECTORY for f in spec.predictor.signature.fields):
        raise invalid(f"{here}.predictor.signature", f"{TRAJECTORY!r} is reserved by ReAct")
    bounds.REACT_ITERS.check(spec.max_iters, f"{here}.max_iters")
    seen: set[str] = set()
    for index, tool in enumerate(spec.tools):
        at = f"{here}.tools[{index}]"
        if not tool.name.isidentifier():
            raise invalid(f"{at}.name", "must be an identifier (letters, digits, underscores)")
        if tool.name == FINISH:
            raise invalid(f"{at}.name", "'finish' is ReAct's own tool")
        if tool.name in seen:
            raise invalid(f"{at}.name", f"duplicate tool name {tool.name!r}")
        seen.add(tool.name)
        if tool.builtin and tool.builtin not in BUILTIN_TOOLS:
            raise invalid(f"{at}.builtin", f"unknown built-in tool {tool.builtin!r}; known: {_names(BUILTIN_TOOLS)}")
        if not isinstance(tool.args, Mapping) or not all(isinstance(v, Mapping) for v in tool.args.values()):
            raise invalid(f"{at}.args_json_schema", "must map each argument name to a JSON schema object")


def _knn_few_shot(spec: KNNFewShotSpec, here: str, name: str) -> KNNFewShotNode:
    if not isinstance(spec.module, (PredictSpec, ChainOfThoughtSpec)):
        raise invalid(f"{here}.module", "must be a predict or chain_of_thought module (what BootstrapFewShot "
                      f"compiles); this one is {spec.module.kind.value}")
    # The student keeps the program's own name: DSPy's compiled program is the student itself.
    student = build_module(spec.module, f"{here}.module", name)
    Range(1, bounds.DEMOS.high).check(spec.k, f"{here}.k")
    if not spec.embedding_model:
        raise invalid(f"{here}.embedding_model", "is required: the alias of an embedding model")
    if not spec.examples:
        raise invalid(f"{here}.examples", "must hold at least one training example")
    for key in ("max_bootstrapped_demos", "max_labeled_demos"):
        bounds.DEMOS.check(getattr(spec, key), f"{here}.{key}")
    bounds.ROUNDS.check(spec.max_rounds, f"{here}.max_rounds")
    needed = [f.name for f in student.input_fields if not allows_none(f.type)]
    dimensions = len(spec.examples[0].embedding)
    for index, item in enumerate(spec.examples):
        at = f"{here}.examples[{index}]"
        missing = [key for key in needed if key not in item.example.input_keys or key not in item.example.data]
        if missing:
            raise invalid(f"{at}.example.input_keys", f"lacks the module's input field(s) {', '.join(missing)}")
        if not item.embedding:
            raise invalid(f"{at}.embedding", "is required: the vector of the example's input text")
        if len(item.embedding) != dimensions:
            raise invalid(f"{at}.embedding", f"has {len(item.embedding)} dimensions; examples[0] has {dimensions}")
        if not all(math.isfinite(x) for x in item.embedding):
            raise invalid(f"{at}.embedding", "must hold finite numbers")
    if spec.metric is not None:
        keys = set.intersection(*(set(item.example.data) for item in spec.examples))
        validate_metric(
            spec.metric, outputs=set(student.output_names),
            predictor_outputs={p.name: {f.name for f in p.signature.output_fields} for p in student.predictors()},
            example_keys=keys, path=f"{here}.metric",
        )
    return KNNFewShotNode(name, spec, student, lambda compiled: build_module(compiled, f"{here}.module", name))


def _multi_chain(spec: MultiChainComparisonSpec, here: str, name: str) -> Node:
    spec.predictor.validate(f"{here}.predictor")
    bounds.CHAIN_COMPARISONS.check(spec.m, f"{here}.m")
    bounds.TEMPERATURE.check(spec.temperature, f"{here}.temperature")
    generator = None
    if spec.generator is not None:
        generator = build_module(spec.generator, f"{here}.generator", join(name, "generator"))
        last = spec.predictor.signature.output_fields[-1].name
        outputs = set(generator.output_names)
        if last not in outputs or not outputs & {"reasoning", "rationale"}:
            raise invalid(f"{here}.generator", f"must output {last!r} and 'reasoning' (or 'rationale')")
    return MultiChainComparisonNode(name, spec.predictor, spec.m, spec.temperature, generator)


def _check_reward(reward: Metric, module: Node, path: str) -> None:
    """A reward is a metric whose examples are the module's inputs."""

    validate_metric(
        reward, outputs=set(module.output_names),
        predictor_outputs={p.name: {f.name for f in p.signature.output_fields} for p in module.predictors()},
        example_keys={f.name for f in module.input_fields}, path=path,
    )


def _ensemble(spec: EnsembleSpec, here: str, name: str) -> EnsembleNode:
    """The programs must take the same inputs (names and types); the ensemble's outputs are the
    outputs every program gives (a ChainOfThought beside a Predict adds no ``reasoning``)."""

    if not spec.programs:
        raise invalid(f"{here}.programs", "an ensemble needs at least one program")
    if spec.reduce not in ENSEMBLE_REDUCES:
        raise invalid(f"{here}.reduce", f"must be one of {', '.join(ENSEMBLE_REDUCES)}")
    bounds.SEED.check(spec.seed, f"{here}.seed")
    if not 0 <= spec.size <= len(spec.programs):
        raise invalid(f"{here}.size", f"must be between 0 (all) and the number of programs ({len(spec.programs)})")
    programs = [
        build_module(program, f"{here}.programs[{index}]", join(name, f"programs[{index}]"))
        for index, program in enumerate(spec.programs)
    ]
    first = programs[0]
    inputs = {f.name: format_type(f.type) for f in first.input_fields}
    shared = list(first.output_names)
    for index, program in enumerate(programs[1:], start=1):
        theirs = {f.name: format_type(f.type) for f in program.input_fields}
        if theirs != inputs:
            raise invalid(f"{here}.programs[{index}]", f"takes inputs ({_typed(theirs)}) where programs[0] takes "
                          f"({_typed(inputs)}): the programs of an ensemble must share their signature")
        shared = [output for output in shared if output in program.output_names]
        if not shared:
            raise invalid(f"{here}.programs[{index}]", f"gives outputs ({_names(program.output_names)}), none of "
                          f"which the programs before it give: the programs of an ensemble must share their signature")
    if spec.field:
        if spec.reduce != "majority":
            raise invalid(f"{here}.field", "applies only with the majority reduce")
        if spec.field not in shared:
            raise invalid(f"{here}.field", f"{spec.field!r} is not an output of every program ({_names(shared)})")
    return EnsembleNode(name, programs, tuple(shared), spec.reduce, spec.size, spec.seed, spec.field)


def _typed(fields: Mapping[str, str]) -> str:
    return ", ".join(f"{name}: {kind}" for name, kind in fields.items()) or "none"


# --------------------------------------------------------------------------- graphs


def _graph(spec: GraphSpec, here: str, name: str) -> GraphNode:
    if not spec.steps:
        raise invalid(f"{here}.steps", "a graph needs at least one step")
    built: dict[str, tuple[int, Node]] = {}
    for index, step in enumerate(spec.steps):
        at = f"{here}.steps[{index}]"
        if not step.name.isidentifier() or step.name == PROGRAM_INPUTS:
            raise invalid(f"{at}.name", "must be an identifier other than 'inputs'")
        if step.name in built:
            raise invalid(f"{at}.name", f"duplicate step name {step.name!r}")
        if isinstance(step.module, LoopSpec):
            node: Node = _loop(step.module, f"{at}.module.loop", join(name, step.name), prefix=name)
        else:
            node = build_module(step.module, f"{at}.module", join(name, step.name))
        built[step.name] = (index, node)
    attributes: dict[str, str] = {step.name: f"{here}.steps[{i}].name" for i, step in enumerate(spec.steps)}
    for index, step in enumerate(spec.steps):
        if isinstance(step.module, LoopSpec):
            for inner, body_step in enumerate(step.module.body.steps):
                at = f"{here}.steps[{index}].module.loop.body.steps[{inner}].name"
                if body_step.name in attributes:
                    raise invalid(at, f"{body_step.name!r} is also the name of another step: a loop's steps are "
                                  "attributes of the module holding the loop, so their names must be unique there")
                attributes[body_step.name] = at

    program_inputs: dict[str, Field] = {}
    wired: dict[str, WiredStep] = {}
    for index, step in enumerate(spec.steps):
        at = f"{here}.steps[{index}].inputs"
        node = built[step.name][1]
        accepted = {f.name: f for f in node.input_fields}
        mapped: list[tuple[str, Source]] = []
        for target, text in step.inputs:
            if target not in accepted:
                raise invalid(f"{at}.{target}", f"{target!r} is not an input of step {step.name!r} "
                              f"({_names(accepted)})")
            source = _source(text, f"{at}.{target}", built, exclude=step.name)
            if source.step == PROGRAM_INPUTS:
                program_inputs.setdefault(source.field, replace(accepted[target], name=source.field))
            mapped.append((target, source))
        unmapped = [f.name for f in node.input_fields
                    if f.name not in dict(step.inputs) and (_required(f) or isinstance(node, ValueNode))]
        if unmapped:
            raise invalid(f"{at}.{unmapped[0]}", f"input {unmapped[0]!r} of step {step.name!r} is not mapped: map it "
                          "to \"inputs.<name>\" or \"<step>.<output>\"")
        wired[step.name] = WiredStep(step.name, node, tuple(mapped))

    order = _topological(spec, wired, here)
    if not spec.outputs:
        raise invalid(f"{here}.outputs", "map at least one program output to \"<step>.<output>\"")
    outputs = []
    for output, text in spec.outputs:
        if not output.isidentifier():
            raise invalid(f"{here}.outputs.{output}", "output names must be identifiers")
        source = _source(text, f"{here}.outputs.{output}", built, exclude="")
        if source.step == PROGRAM_INPUTS:
            raise invalid(f"{here}.outputs.{output}", "must name a step's output, not a program input")
        outputs.append((output, source))
    return GraphNode(name, [wired[step] for step in order], outputs, list(program_inputs.values()))


def _required(item: Field) -> bool:
    return not allows_none(item.type) and item.type.kind != TypeKind.HISTORY


def _source(text: str, path: str, built: Mapping[str, tuple[int, Node]], *, exclude: str) -> Source:
    source = Source.parse(text)
    if source is None:
        raise invalid(path, f"{text!r} is not a source: use \"inputs.<name>\" or \"<step>.<output>\"")
    if source.step == PROGRAM_INPUTS:
        if not source.field.isidentifier():
            raise invalid(path, f"{source.field!r} is not a valid input name")
        return source
    if source.step not in built:
        raise invalid(path, f"there is no step named {source.step!r}")
    if source.step == exclude:
        raise invalid(path, f"step {exclude!r} cannot read its own output (the graph has a cycle)")
    node = built[source.step][1]
    if source.field not in node.output_names:
        raise invalid(path, f"{source.field!r} is not an output of step {source.step!r} ({_names(node.output_names)})")
    return source


def _topological(spec: GraphSpec, wired: Mapping[str, WiredStep], here: str) -> list[str]:
    """Steps in an order where each comes after the steps it reads from; a cycle is INVALID_ARGUMENT."""

    order: list[str] = []
    state: dict[str, str] = {}
    index = {step.name: i for i, step in enumerate(spec.steps)}

    def visit(step: str, trail: list[str]) -> None:
        if state.get(step) == "done":
            return
        if state.get(step) == "visiting":
            cycle = trail[trail.index(step):] + [step]
            raise invalid(f"{here}.steps[{index[step]}].inputs", f"the graph has a cycle: {' -> '.join(cycle)}")
        state[step] = "visiting"
        for dependency in sorted(wired[step].depends_on, key=index.__getitem__):
            visit(dependency, trail + [step])
        state[step] = "done"
        order.append(step)

    for step in spec.steps:
        visit(step.name, [])
    return order


# --------------------------------------------------------------------------- retrieval, loops, values


def _retrieve(spec: RetrieveSpec, here: str, name: str) -> RetrieveNode:
    if spec.source not in RETRIEVE_SOURCES:
        raise invalid(here, f"set one source: {', '.join(RETRIEVE_SOURCES)}")
    at = f"{here}.{spec.source}"
    if spec.source == "corpus" and not _CORPUS_ID.fullmatch(spec.target):
        raise invalid(at, f"{spec.target!r} is not a corpus name of the form corpora/{{id}}")
    if spec.source == "colbertv2_url" and not re.fullmatch(r"https?://[^\s]+", spec.target):
        raise invalid(at, "must be an http(s) URL")
    if spec.source == "caller_tool" and not spec.target.isidentifier():
        raise invalid(at, "must be an identifier: the name of a tool the caller runs")
    if not 1 <= spec.k <= MAX_RETRIEVE_K:
        raise invalid(f"{here}.k", f"must be between 1 and {MAX_RETRIEVE_K}")
    if spec.mode not in RETRIEVAL_MODES:
        raise invalid(f"{here}.mode", f"must be one of {', '.join(RETRIEVAL_MODES)}")
    if spec.mode != "bm25" and spec.source != "corpus":
        raise invalid(f"{here}.mode", "dense and hybrid searches need a corpus (with an embedding model)")
    return RetrieveNode(name, spec)


def _loop(spec: LoopSpec, here: str, name: str, *, prefix: str) -> LoopNode:
    """A loop named ``name`` whose body steps are named under ``prefix`` (the module holding it)."""

    if not 1 <= spec.max_iters <= MAX_ITERS_LIMIT:
        raise invalid(f"{here}.max_iters", f"must be between 1 and {MAX_ITERS_LIMIT}: every loop needs a bound")
    body = _graph(spec.body, f"{here}.body", prefix)
    if not spec.variables:
        raise invalid(f"{here}.variables", "a loop needs at least one variable (what it carries across iterations)")
    seen: set[str] = set()
    for index, variable in enumerate(spec.variables):
        at = f"{here}.variables[{index}]"
        if not variable.name.isidentifier():
            raise invalid(f"{at}.name", "must be an identifier")
        if variable.name in seen:
            raise invalid(f"{at}.name", f"duplicate variable {variable.name!r}")
        seen.add(variable.name)
        if variable.update not in body.output_names:
            raise invalid(f"{at}.update", f"{variable.update!r} is not an output of the body "
                          f"({_names(body.output_names)})")
        if variable.accumulate not in LOOP_ACCUMULATES:
            raise invalid(f"{at}.accumulate", f"must be one of {', '.join(LOOP_ACCUMULATES)}")
    if spec.stop_when and spec.stop_when not in body.output_names:
        raise invalid(f"{here}.stop_when", f"{spec.stop_when!r} is not an output of the body "
                      f"({_names(body.output_names)})")
    return LoopNode(name, body, spec.max_iters, spec.variables, spec.stop_when)


_ONE_INPUT = ("join", "flatten", "dedupe")


def _value(spec: ValueSpec, here: str, name: str) -> ValueNode:
    if spec.operation not in VALUE_OPERATIONS:
        raise invalid(f"{here}.operation", f"must be one of {', '.join(VALUE_OPERATIONS)}")
    inputs = spec.inputs
    if len(inputs) > MAX_INPUTS:
        raise invalid(f"{here}.inputs", f"at most {MAX_INPUTS} inputs")
    for index, item in enumerate(inputs):
        if not item.isidentifier():
            raise invalid(f"{here}.inputs[{index}]", f"{item!r} is not an identifier")
        if item in inputs[:index]:
            raise invalid(f"{here}.inputs[{index}]", f"duplicate input {item!r}")
    if spec.operation == "template":
        if inputs:
            raise invalid(f"{here}.inputs", "leave empty for a template: its placeholders are the inputs")
        if len(spec.template) > MAX_TEXT:
            raise invalid(f"{here}.template", f"must be at most {MAX_TEXT} characters")
        inputs = template_fields(spec.template, f"{here}.template")
    elif spec.operation in _ONE_INPUT and len(inputs) != 1:
        raise invalid(f"{here}.inputs", f"the {spec.operation} operation takes exactly one input (a list)")
    elif spec.operation == "constant" and inputs:
        raise invalid(f"{here}.inputs", "a constant takes no inputs")
    elif spec.operation in ("concat", "object") and not inputs:
        raise invalid(f"{here}.inputs", f"the {spec.operation} operation needs at least one input")
    return ValueNode(name, spec, tuple(inputs))


def child_specs(spec: ModuleSpec, path: str) -> Iterator[tuple[str, ModuleSpec]]:
    """Every module inside ``spec`` (itself included) with its request path, depth first."""

    here = f"{path}.{spec.kind.value}"
    yield path, spec
    inner: list[tuple[str, ModuleSpec]] = []
    if isinstance(spec, (BestOfNSpec, RefineSpec, ParallelSpec, MajoritySpec, KNNFewShotSpec)):
        inner.append((f"{here}.module", spec.module))
    elif isinstance(spec, MultiChainComparisonSpec) and spec.generator is not None:
        inner.append((f"{here}.generator", spec.generator))
    elif isinstance(spec, EnsembleSpec):
        inner += [(f"{here}.programs[{i}]", program) for i, program in enumerate(spec.programs)]
    elif isinstance(spec, GraphSpec):
        inner += [(f"{here}.steps[{i}].module", step.module) for i, step in enumerate(spec.steps)]
    elif isinstance(spec, LoopSpec):
        inner += [(f"{here}.body.steps[{i}].module", step.module) for i, step in enumerate(spec.body.steps)]
    for child_path, child in inner:
        yield from child_specs(child, child_path)


# --------------------------------------------------------------------------- descriptions


def signature_text(signature: Signature) -> str:
    def one(item: Field) -> str:
        return item.name if item.type.kind == TypeKind.STR else f"{item.name}: {format_type(item.type)}"

    return f"{', '.join(map(one, signature.input_fields))} -> {', '.join(map(one, signature.output_fields))}"


def describe_module(spec: ModuleSpec) -> str:
    """The module as DSPy code would build it (what Refine shows its feedback step as program code)."""

    if isinstance(spec, (PredictSpec, ChainOfThoughtSpec)):
        cls = "Predict" if isinstance(spec, PredictSpec) else "ChainOfThought"
        return f'dspy.{cls}("{signature_text(spec.predictor.signature)}")'
    if isinstance(spec, ReActSpec):
        tools = ", ".join(tool.name for tool in spec.tools)
        return f'dspy.ReAct("{signature_text(spec.predictor.signature)}", tools=[{tools}], max_iters={spec.max_iters})'
    if isinstance(spec, MultiChainComparisonSpec):
        return f'dspy.MultiChainComparison("{signature_text(spec.predictor.signature)}", M={spec.m})'
    if isinstance(spec, (BestOfNSpec, RefineSpec)):
        cls = "BestOfN" if isinstance(spec, BestOfNSpec) else "Refine"
        return f"dspy.{cls}(module={describe_module(spec.module)}, N={spec.n}, threshold={spec.threshold})"
    if isinstance(spec, ParallelSpec):
        return f"dspy.Parallel(num_threads={spec.num_threads})({describe_module(spec.module)})"
    if isinstance(spec, MajoritySpec):
        return f"dspy.majority([{describe_module(spec.module)} for _ in range({spec.n})])"
    if isinstance(spec, EnsembleSpec):
        reduce = "dspy.majority" if spec.reduce == "majority" else "None"
        programs = ", ".join(describe_module(program) for program in spec.programs)
        return f"dspy.Ensemble(reduce_fn={reduce}, size={spec.size or None}).compile([{programs}])"
    if isinstance(spec, KNNFewShotSpec):
        return (f"dspy.KNNFewShot(k={spec.k}, trainset=[...{len(spec.examples)} examples], "
                f"vectorizer=dspy.Embedder({spec.embedding_model!r})).compile({describe_module(spec.module)})")
    if isinstance(spec, RetrieveSpec):
        mode = f", mode={spec.mode!r}" if spec.mode != "bm25" else ""
        target = f"corpora/{spec.target}" if spec.source == "corpus" else spec.target
        return f"Retrieve({spec.source}={target!r}, k={spec.k}{mode})"
    if isinstance(spec, ValueSpec):
        return f"<{spec.operation} of {', '.join(spec.inputs) or 'no inputs'}>"
    if isinstance(spec, LoopSpec):
        spec = GraphSpec((GraphStep("loop", spec),), tuple((v.name, f"loop.{v.name}") for v in spec.variables))
    lines = ["class Program(dspy.Module):", "    def __init__(self):"]
    lines += [f"        self.{name} = {describe_module(module)}" for name, module in _attributes(spec)]
    lines += ["", "    def forward(self, **inputs):"]
    lines += _forward_lines(spec, "        ")
    outputs = ", ".join(f"{name}={source}" for name, source in spec.outputs)
    lines.append(f"        return dspy.Prediction({outputs})")
    return "\n".join(lines)


def _attributes(spec: GraphSpec) -> list[tuple[str, ModuleSpec]]:
    """The sub-modules a graph's DSPy class would hold (a loop's steps are the class's own)."""

    out: list[tuple[str, ModuleSpec]] = []
    for step in spec.steps:
        if isinstance(step.module, LoopSpec):
            out += _attributes(step.module.body)
        elif not isinstance(step.module, ValueSpec):
            out.append((step.name, step.module))
    return out


def _forward_lines(spec: GraphSpec, indent: str) -> list[str]:
    lines = []
    for step in spec.steps:
        args = ", ".join(f"{target}={source}" for target, source in step.inputs)
        module = step.module
        if isinstance(module, LoopSpec):
            lines += [f"{indent}{v.name} = {json.dumps(v.start)}" for v in module.variables]
            lines.append(f"{indent}for _ in range({module.max_iters}):  # {step.name}, inputs: {args}")
            lines += _forward_lines(module.body, indent + "    ")
            for v in module.variables:
                source = dict(module.body.outputs).get(v.update, v.update)
                fold = {"append": "extend", "append_unique": "extend (skipping repeats)", "last": "="}[v.accumulate]
                lines.append(f"{indent}    {v.name} {fold} {source}" if fold == "=" else
                             f"{indent}    {v.name}.{fold.split()[0]}({source}){' # ' + fold if ' ' in fold else ''}")
            if module.stop_when:
                stop = dict(module.body.outputs).get(module.stop_when, module.stop_when)
                lines.append(f"{indent}    if {stop}: break")
        elif isinstance(module, ValueSpec):
            what = f"{module.template!r}.format" if module.operation == "template" else module.operation
            lines.append(f"{indent}{step.name} = {what}({args})")
        else:
            lines.append(f"{indent}{step.name} = self.{step.name}({args})")
    return lines

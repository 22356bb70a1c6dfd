"""Plain JSON for module specs, for persistence (the wire form is api/'s job).

The format is ``{"kind": "<module kind>", ...kind-specific keys}``; defaults are left out. Programs
stored before the other module kinds existed (``{"kind": "predict"|"chain_of_thought",
"predictor": {...}}``) read back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.codec import example_from_dict, example_to_dict, signature_from_dict, signature_to_dict
from ..lm.dummy import DummyResponse, DummyRule, DummySpec
from ..lm.types import LMOptions
from .metrics import metric_from_dict, metric_to_dict
from .spec import (
    BestOfNSpec,
    ChainOfThoughtSpec,
    EnsembleSpec,
    GraphSpec,
    GraphStep,
    KNNExample,
    KNNFewShotSpec,
    LMChoice,
    LoopSpec,
    LoopVariable,
    MajoritySpec,
    ModuleKind,
    ModuleSpec,
    MultiChainComparisonSpec,
    ParallelSpec,
    PredictorSpec,
    PredictorState,
    PredictSpec,
    ReActSpec,
    RefineSpec,
    RetrieveSpec,
    ToolSpec,
    ValueSpec,
)


def module_to_dict(spec: ModuleSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": spec.kind.value}
    if isinstance(spec, (PredictSpec, ChainOfThoughtSpec)):
        out["predictor"] = predictor_to_dict(spec.predictor)
    elif isinstance(spec, ReActSpec):
        out["predictor"] = predictor_to_dict(spec.predictor)
        out["tools"] = [_tool_to_dict(tool) for tool in spec.tools]
        out["max_iters"] = spec.max_iters
        for key in ("react", "extract"):
            state = _state_to_dict(getattr(spec, key))
            if state:
                out[key] = state
    elif isinstance(spec, MultiChainComparisonSpec):
        out.update(predictor=predictor_to_dict(spec.predictor), m=spec.m, temperature=spec.temperature)
        if spec.generator is not None:
            out["generator"] = module_to_dict(spec.generator)
    elif isinstance(spec, (BestOfNSpec, RefineSpec)):
        out.update(module=module_to_dict(spec.module), n=spec.n, reward=metric_to_dict(spec.reward),
                   threshold=spec.threshold)
        if spec.fail_count is not None:
            out["fail_count"] = spec.fail_count
        if isinstance(spec, RefineSpec):
            feedback = lm_to_dict(spec.feedback_lm)
            if feedback:
                out["feedback_lm"] = feedback
    elif isinstance(spec, ParallelSpec):
        out.update(module=module_to_dict(spec.module), num_threads=spec.num_threads, max_errors=spec.max_errors)
    elif isinstance(spec, MajoritySpec):
        out.update(module=module_to_dict(spec.module), n=spec.n)
        if spec.field:
            out["field"] = spec.field
    elif isinstance(spec, GraphSpec):
        out.update(_graph_to_dict(spec))
    elif isinstance(spec, RetrieveSpec):
        out.update(source=spec.source, target=spec.target, k=spec.k)
        if spec.mode != "bm25":
            out["mode"] = spec.mode
    elif isinstance(spec, LoopSpec):
        out.update(body=_graph_to_dict(spec.body), max_iters=spec.max_iters, variables=[
            {"name": v.name, "update": v.update, "accumulate": v.accumulate,
             **({"initial": v.initial} if v.initial_set else {})}
            for v in spec.variables
        ])
        if spec.stop_when:
            out["stop_when"] = spec.stop_when
    elif isinstance(spec, ValueSpec):
        out.update(operation=spec.operation, inputs=list(spec.inputs))
        for key in ("template", "separator"):
            if getattr(spec, key):
                out[key] = getattr(spec, key)
        if spec.operation == "constant":
            out["constant"] = spec.constant
    elif isinstance(spec, EnsembleSpec):
        out.update(programs=[module_to_dict(program) for program in spec.programs], reduce=spec.reduce)
        for key in ("size", "seed", "field"):
            if getattr(spec, key):
                out[key] = getattr(spec, key)
    elif isinstance(spec, KNNFewShotSpec):
        out.update(module=module_to_dict(spec.module), k=spec.k, embedding_model=spec.embedding_model,
                   examples=[{"example": example_to_dict(item.example), "embedding": list(item.embedding)}
                             for item in spec.examples],
                   max_bootstrapped_demos=spec.max_bootstrapped_demos, max_labeled_demos=spec.max_labeled_demos,
                   max_rounds=spec.max_rounds)
        teacher = lm_to_dict(spec.teacher_lm)
        if teacher:
            out["teacher_lm"] = teacher
        if spec.metric is not None:
            out["metric"] = metric_to_dict(spec.metric)
    else:  # pragma: no cover - every kind is handled above
        raise TypeError(f"unknown module spec {spec!r}")
    return out


def module_from_dict(data: Mapping[str, Any]) -> ModuleSpec:
    kind = ModuleKind(data["kind"])
    if kind is ModuleKind.PREDICT:
        return PredictSpec(predictor_from_dict(data["predictor"]))
    if kind is ModuleKind.CHAIN_OF_THOUGHT:
        return ChainOfThoughtSpec(predictor_from_dict(data["predictor"]))
    if kind is ModuleKind.REACT:
        return ReActSpec(
            predictor=predictor_from_dict(data["predictor"]),
            tools=tuple(_tool_from_dict(tool) for tool in data.get("tools", ())),
            max_iters=int(data.get("max_iters", 20)),
            react=_state_from_dict(data.get("react", {})),
            extract=_state_from_dict(data.get("extract", {})),
        )
    if kind is ModuleKind.MULTI_CHAIN_COMPARISON:
        generator = data.get("generator")
        return MultiChainComparisonSpec(
            predictor=predictor_from_dict(data["predictor"]), m=int(data.get("m", 3)),
            temperature=float(data.get("temperature", 0.7)),
            generator=module_from_dict(generator) if generator else None,
        )
    if kind in (ModuleKind.BEST_OF_N, ModuleKind.REFINE):
        common: dict[str, Any] = dict(
            module=module_from_dict(data["module"]), n=int(data["n"]), reward=metric_from_dict(data["reward"]),
            threshold=float(data.get("threshold", 0.0)), fail_count=data.get("fail_count"),
        )
        if kind is ModuleKind.BEST_OF_N:
            return BestOfNSpec(**common)
        return RefineSpec(**common, feedback_lm=lm_from_dict(data.get("feedback_lm", {})))
    if kind is ModuleKind.PARALLEL:
        return ParallelSpec(module_from_dict(data["module"]), int(data.get("num_threads", 8)),
                            int(data.get("max_errors", 10)))
    if kind is ModuleKind.MAJORITY:
        return MajoritySpec(module_from_dict(data["module"]), int(data.get("n", 5)), data.get("field", ""))
    if kind is ModuleKind.ENSEMBLE:
        return EnsembleSpec(
            programs=tuple(module_from_dict(program) for program in data["programs"]),
            reduce=data.get("reduce", "none"), size=int(data.get("size", 0)), seed=int(data.get("seed", 0)),
            field=data.get("field", ""),
        )
    if kind is ModuleKind.KNN_FEW_SHOT:
        return KNNFewShotSpec(
            module=module_from_dict(data["module"]), k=int(data["k"]), embedding_model=data["embedding_model"],
            examples=tuple(KNNExample(example_from_dict(item["example"]), tuple(item["embedding"]))
                           for item in data["examples"]),
            max_bootstrapped_demos=int(data.get("max_bootstrapped_demos", 4)),
            max_labeled_demos=int(data.get("max_labeled_demos", 16)), max_rounds=int(data.get("max_rounds", 1)),
            teacher_lm=lm_from_dict(data.get("teacher_lm", {})),
            metric=metric_from_dict(data["metric"]) if data.get("metric") else None,
        )
    if kind is ModuleKind.RETRIEVE:
        return RetrieveSpec(data["source"], data["target"], int(data.get("k", 3)), data.get("mode", "bm25"))
    if kind is ModuleKind.LOOP:
        return LoopSpec(
            body=_graph_from_dict(data["body"]), max_iters=int(data["max_iters"]),
            variables=tuple(
                LoopVariable(v["name"], v["update"], v.get("accumulate", "append"), v.get("initial"), "initial" in v)
                for v in data.get("variables", ())
            ),
            stop_when=data.get("stop_when", ""),
        )
    if kind is ModuleKind.VALUE:
        return ValueSpec(data["operation"], tuple(data.get("inputs", ())), data.get("template", ""),
                         data.get("separator", ""), data.get("constant"))
    return _graph_from_dict(data)


def _graph_to_dict(spec: GraphSpec) -> dict[str, Any]:
    return {
        "steps": [
            {"name": step.name, "module": module_to_dict(step.module), "inputs": [list(pair) for pair in step.inputs]}
            for step in spec.steps
        ],
        "outputs": [list(pair) for pair in spec.outputs],
    }


def _graph_from_dict(data: Mapping[str, Any]) -> GraphSpec:
    return GraphSpec(
        steps=tuple(
            GraphStep(step["name"], module_from_dict(step["module"]), tuple((a, b) for a, b in step.get("inputs", ())))
            for step in data["steps"]
        ),
        outputs=tuple((a, b) for a, b in data.get("outputs", ())),
    )


def predictor_to_dict(spec: PredictorSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"signature": signature_to_dict(spec.signature), "adapter": spec.adapter}
    if spec.demos:
        out["demos"] = [example_to_dict(demo) for demo in spec.demos]
    for key in ("lm", "extraction_lm"):
        choice = lm_to_dict(getattr(spec, key))
        if choice:
            out[key] = choice
    return out


def predictor_from_dict(data: Mapping[str, Any]) -> PredictorSpec:
    return PredictorSpec(
        signature=signature_from_dict(data["signature"]),
        demos=tuple(example_from_dict(demo) for demo in data.get("demos", ())),
        adapter=data.get("adapter", "chat"),
        lm=lm_from_dict(data.get("lm", {})),
        extraction_lm=lm_from_dict(data.get("extraction_lm", {})),
    )


def _state_to_dict(state: PredictorState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if state.instructions is not None:
        out["instructions"] = state.instructions
    if state.demos:
        out["demos"] = [example_to_dict(demo) for demo in state.demos]
    return out


def _state_from_dict(data: Mapping[str, Any]) -> PredictorState:
    return PredictorState(data.get("instructions"), tuple(example_from_dict(d) for d in data.get("demos", ())))


def _tool_to_dict(tool: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "description": tool.description, "args": dict(tool.args)}
    if tool.builtin:
        out["builtin"] = tool.builtin
    return out


def _tool_from_dict(data: Mapping[str, Any]) -> ToolSpec:
    return ToolSpec(data["name"], data.get("description", ""), dict(data.get("args", {})), data.get("builtin", ""))


_OPTION_KEYS = ("temperature", "max_tokens", "top_p", "seed", "cache")


def lm_to_dict(choice: LMChoice) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if choice.model:
        out["model"] = choice.model
    if choice.dummy is not None:
        out["dummy"] = {
            "responses": [_response_to_dict(r) for r in choice.dummy.responses],
            "rules": [
                {"contains": rule.contains, "response": _response_to_dict(rule.response)}
                for rule in choice.dummy.rules
            ],
            "auto": choice.dummy.auto,
        }
    options = {key: getattr(choice.options, key) for key in _OPTION_KEYS}
    options = {key: value for key, value in options.items() if value is not None}
    if choice.options.stop:
        options["stop"] = list(choice.options.stop)
    if options:
        out["options"] = options
    return out


def lm_from_dict(data: Mapping[str, Any]) -> LMChoice:
    dummy = None
    if "dummy" in data:
        raw = data["dummy"]
        dummy = DummySpec(
            responses=tuple(_response_from_dict(r) for r in raw.get("responses", ())),
            rules=tuple(
                DummyRule(rule["contains"], _response_from_dict(rule["response"]))
                for rule in raw.get("rules", ())
            ),
            auto=bool(raw.get("auto", False)),
        )
    options = dict(data.get("options", {}))
    if "stop" in options:
        options["stop"] = tuple(options["stop"])
    return LMChoice(model=data.get("model", ""), dummy=dummy, options=LMOptions(**options))


def _response_to_dict(response: DummyResponse) -> dict[str, Any]:
    if response.text is not None:
        return {"text": response.text}
    return {"fields": dict(response.fields or {})}


def _response_from_dict(data: Mapping[str, Any]) -> DummyResponse:
    return DummyResponse(text=data.get("text"), fields=data.get("fields"))

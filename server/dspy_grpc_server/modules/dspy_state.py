"""DSPy's saved-program JSON (``module.save("x.json")``) to and from our module specs.

DSPy saves, per predictor name ("generate.predict"), the demos and the signature's instructions and
field prefixes/descriptions (in field order), but not the program's structure. Export writes that
state for our program's predictors, named as DSPy names them; import applies such a state to a spec
of the same structure. A derived field (ChainOfThought's ``reasoning``, ReAct's ``next_tool_name``,
...) cannot carry a changed prefix or description in our specs, so importing one fails.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..core.errors import invalid
from ..core.example import Example
from ..core.signature import Field, Signature, infer_prefix, with_reasoning
from .build import build_module
from .derive import extract_signature, mcc_signature, react_signature
from .node import join
from .react import resolved_tool
from .spec import (
    BestOfNSpec,
    ChainOfThoughtSpec,
    GraphSpec,
    KNNFewShotSpec,
    MajoritySpec,
    ModuleSpec,
    MultiChainComparisonSpec,
    ParallelSpec,
    PredictorSpec,
    PredictorState,
    PredictSpec,
    ReActSpec,
    RefineSpec,
)

#: The DSPy version whose format we write (DSPy warns when loading a file saved by another version).
DSPY_VERSION = "3.4.1"
CLOUDPICKLE_VERSION = "3.1"


def export_state(spec: ModuleSpec) -> dict[str, Any]:
    """The JSON object DSPy's ``module.save`` writes for the equivalent DSPy program."""

    state: dict[str, Any] = {}
    for predictor in build_module(spec).predictors():
        signature = predictor.signature
        state[predictor.name] = {
            "traces": [],
            "train": [],
            "demos": [demo.as_demo() for demo in predictor.spec.demos],
            "signature": {
                "instructions": signature.effective_instructions,
                "fields": [
                    {"prefix": f.effective_prefix, "description": f.effective_description}
                    for f in signature.ordered_fields
                ],
            },
            "lm": None,
        }
    state["metadata"] = {
        "dependency_versions": {
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "dspy": DSPY_VERSION,
            "cloudpickle": CLOUDPICKLE_VERSION,
        }
    }
    return state


def import_state(spec: ModuleSpec, state: Mapping[str, Any], *, field: str = "dspy_json") -> ModuleSpec:
    """``spec`` with the demos, instructions and field texts of DSPy's saved ``state`` applied."""

    if not isinstance(state, Mapping):
        raise invalid(field, "must be a JSON object (the file DSPy's module.save writes)")
    known = [p.name for p in build_module(spec).predictors()]
    entries = {key: value for key, value in state.items() if key != "metadata"}
    for name in entries:
        if name not in known:
            raise invalid(f"{field}.{name}", f"the program has no predictor named {name!r} (it has: {', '.join(known)})")
    missing = [name for name in known if name not in entries]
    if missing:
        raise invalid(field, f"no state for the predictor {missing[0]!r}")
    return _Importer(entries, field).apply(spec, "")


class _Importer:
    def __init__(self, entries: Mapping[str, Any], field: str) -> None:
        self.entries, self.field = entries, field

    def apply(self, spec: ModuleSpec, name: str) -> ModuleSpec:
        if isinstance(spec, PredictSpec):
            return replace(spec, predictor=self._plain(spec.predictor, name or "self", spec.predictor.signature))
        if isinstance(spec, ChainOfThoughtSpec):
            return replace(spec, predictor=self._plain(spec.predictor, join(name, "predict"),
                                                       with_reasoning(spec.predictor.signature)))
        if isinstance(spec, MultiChainComparisonSpec):
            predictor = self._plain(spec.predictor, join(name, "predict"), mcc_signature(spec.predictor.signature, spec.m))
            generator = self.apply(spec.generator, join(name, "generator")) if spec.generator else None
            return replace(spec, predictor=predictor, generator=generator)
        if isinstance(spec, ReActSpec):
            return self._react(spec, name)
        if isinstance(spec, (BestOfNSpec, RefineSpec, ParallelSpec, MajoritySpec)):
            return replace(spec, module=self.apply(spec.module, join(name, "module")))
        if isinstance(spec, KNNFewShotSpec):
            # The compiled program is the student itself: same predictor names.
            return replace(spec, module=self.apply(spec.module, name))
        if isinstance(spec, GraphSpec):
            steps = tuple(replace(step, module=self.apply(step.module, join(name, step.name))) for step in spec.steps)
            return replace(spec, steps=steps)
        raise TypeError(f"unknown module spec {spec!r}")  # pragma: no cover

    # ---- one predictor

    def _entry(self, name: str) -> tuple[str, list[Mapping[str, Any]], tuple[Example, ...]]:
        path = f"{self.field}.{name}"
        entry = self.entries[name]
        signature = entry.get("signature") if isinstance(entry, Mapping) else None
        if not isinstance(signature, Mapping) or not isinstance(signature.get("fields"), list):
            raise invalid(f"{path}.signature", "must hold instructions and fields, as DSPy saves them")
        instructions = signature.get("instructions")
        if not isinstance(instructions, str):
            raise invalid(f"{path}.signature.instructions", "must be a string")
        demos = entry.get("demos", [])
        if not isinstance(demos, list) or not all(isinstance(d, Mapping) for d in demos):
            raise invalid(f"{path}.demos", "must be a list of objects")
        return instructions, signature["fields"], tuple(_example(d) for d in demos)

    def _fields(self, base: Signature, derived: Signature, saved: list[Any], path: str) -> Signature:
        """``base`` with the saved prefixes/descriptions of its fields (matched by position in ``derived``)."""

        ordered = derived.ordered_fields
        if len(saved) != len(ordered):
            raise invalid(f"{path}.signature.fields", f"has {len(saved)} fields; the predictor has {len(ordered)} "
                          f"({', '.join(f.name for f in ordered)})")
        base_names = {f.name for f in base.fields}
        for index, (item, entry) in enumerate(zip(ordered, saved)):
            if not isinstance(entry, Mapping):
                raise invalid(f"{path}.signature.fields[{index}]", "must be an object with prefix and description")
            prefix, description = entry.get("prefix", item.effective_prefix), entry.get("description",
                                                                                        item.effective_description)
            if item.name in base_names:
                base = base.with_field(item.name, prefix=_prefix_or_default(item, prefix),
                                       description=_description_or_default(item, description))
            elif (prefix, description) != (item.effective_prefix, item.effective_description):
                raise invalid(f"{path}.signature.fields[{index}]",
                              f"{item.name!r} is derived by the module; its prefix and description cannot change")
        return base

    def _plain(self, predictor: PredictorSpec, name: str, derived: Signature) -> PredictorSpec:
        """A predictor whose derived signature keeps the user's instructions (Predict, CoT, MCC)."""

        instructions, fields, demos = self._entry(name)
        signature = self._fields(predictor.signature, derived, fields, f"{self.field}.{name}")
        if instructions != signature.effective_instructions or signature.instructions is not None:
            signature = signature.with_instructions(instructions)
        return replace(predictor, signature=signature, demos=demos)

    def _react(self, spec: ReActSpec, name: str) -> ReActSpec:
        base = spec.predictor.signature
        tools = [resolved_tool(tool) for tool in spec.tools]
        react_name, extract_name = join(name, "react"), join(name, "extract.predict")
        react_instr, react_fields, react_demos = self._entry(react_name)
        extract_instr, extract_fields, extract_demos = self._entry(extract_name)
        base = self._fields(base, react_signature(base, tools), react_fields, f"{self.field}.{react_name}")
        base = self._fields(base, extract_signature(base), extract_fields, f"{self.field}.{extract_name}")
        default_react = react_signature(base, tools).instructions
        default_extract = extract_signature(base).instructions
        return replace(
            spec,
            predictor=replace(spec.predictor, signature=base),
            react=PredictorState(None if react_instr == default_react else react_instr, react_demos),
            extract=PredictorState(None if extract_instr == default_extract else extract_instr, extract_demos),
        )


def _prefix_or_default(item: Field, prefix: Any) -> str | None:
    if not isinstance(prefix, str):
        return item.prefix
    return None if prefix == infer_prefix(item.name) + ":" else prefix


def _description_or_default(item: Field, description: Any) -> str | None:
    if not isinstance(description, str):
        return item.description
    return None if description == f"${{{item.name}}}" else description


def _example(demo: Mapping[str, Any]) -> Example:
    data = dict(demo)
    augmented = bool(data.pop("augmented", False))
    return Example(data, (), augmented)

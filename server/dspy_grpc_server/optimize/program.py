"""What optimizers need from a program, in one place: its named predictors, their demos and
instructions, and how to change them. Everything else about modules stays in ``modules/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import invalid
from ..core.example import Example
from ..core.values import allows_none
from ..core.signature import Signature
from ..modules.engine import Engine, named_predictors
from ..modules.node import join
from ..modules.rewrite import PredictorRewriter
from ..modules.spec import LMChoice, ModuleSpec, PredictorSpec, PredictorState, ReActSpec
from ..modules.storage import module_from_dict, module_to_dict


@dataclass(frozen=True)
class PredictorView:
    """One named predictor: the signature it runs (with ChainOfThought's ``reasoning``, ReAct's
    derived fields and instructions, ...) and its demos."""

    name: str
    signature: Signature
    demos: tuple[Example, ...]


@dataclass(frozen=True)
class PredictorUpdate:
    """New demos and/or instructions (and an output field's prefix, as COPRO sets; the LM, as DSPy's
    ``set_lm``) for a predictor; None keeps the current value."""

    demos: tuple[Example, ...] | None = None
    instructions: str | None = None
    prefix: tuple[str, str] | None = None
    lm: LMChoice | None = None


def check_optimizable(module: ModuleSpec, field: str = "program") -> None:
    if not named_predictors(module):
        raise invalid(field, "has no predictors to optimize")


def predictors(module: ModuleSpec) -> list[PredictorView]:
    return [
        PredictorView(p.name, p.signature, tuple(p.spec.demos)) for p in named_predictors(module)
    ]


def own_lm(module: ModuleSpec) -> LMChoice:
    """The LM the program's first predictor names (what proposals fall back to, like DSPy's
    prompt model defaulting to the configured LM)."""

    return named_predictors(module)[0].spec.lm


def output_fields(module: ModuleSpec) -> set[str]:
    """The program's final output field names."""

    return set(Engine.build(module).output_names)


def required_inputs(module: ModuleSpec) -> list[str]:
    """The input fields a run of the program needs (fields whose type admits None may be left out)."""

    return [f.name for f in Engine.build(module).input_fields if not allows_none(f.type)]


def predictor_outputs(module: ModuleSpec) -> dict[str, set[str]]:
    return {p.name: {f.name for f in p.signature.output_fields} for p in named_predictors(module)}


def updated(module: ModuleSpec, updates: Mapping[str, PredictorUpdate]) -> ModuleSpec:
    """The module with each named predictor changed as ``updates`` says (DSPy's names:
    "generate.predict", "react", ...)."""

    known = {p.name for p in named_predictors(module)}
    unknown = [name for name in updates if name not in known]
    if unknown:
        raise KeyError(f"no predictor named {unknown[0]!r}; the module has: {', '.join(sorted(known))}")
    return _Updater(updates).apply(module)


class _Updater(PredictorRewriter):
    def __init__(self, updates: Mapping[str, PredictorUpdate]) -> None:
        self.updates = updates

    def plain(self, predictor: PredictorSpec, name: str, signature: Signature) -> PredictorSpec:
        update = self.updates.get(name)
        if update is None:
            return predictor
        own = predictor.signature
        if update.instructions is not None:
            own = own.with_instructions(update.instructions)
        own = _with_prefix(own, update.prefix)
        return dataclasses.replace(
            predictor, signature=own, demos=predictor.demos if update.demos is None else tuple(update.demos),
            lm=predictor.lm if update.lm is None else update.lm,
        )

    def react(self, spec: ReActSpec, name: str) -> ReActSpec:
        """ReAct's two predictors keep demos and instructions in ``react`` / ``extract``; they share the
        user's signature (where the extract step's output prefixes live) and LM."""

        base = spec.predictor
        states = {}
        for key, predictor_name in (("react", join(name, "react")), ("extract", join(name, "extract.predict"))):
            state: PredictorState = getattr(spec, key)
            update = self.updates.get(predictor_name)
            if update is not None:
                state = PredictorState(
                    state.instructions if update.instructions is None else update.instructions,
                    state.demos if update.demos is None else tuple(update.demos),
                )
                # The react step's outputs are all derived by ReAct: a prefix for them has no place.
                if key == "extract":
                    base = dataclasses.replace(base, signature=_with_prefix(base.signature, update.prefix))
                if update.lm is not None:
                    base = dataclasses.replace(base, lm=update.lm)
            states[key] = state
        return dataclasses.replace(spec, predictor=base, **states)


def _with_prefix(signature: Signature, prefix: tuple[str, str] | None) -> Signature:
    """The signature with an output field's prefix changed -- when the field is the user's (a field a
    module derives, such as ``reasoning``, keeps its prefix)."""

    if prefix is None:
        return signature
    name, text = prefix
    return signature.with_field(name, prefix=text) if any(f.name == name for f in signature.fields) else signature


def with_demos(module: ModuleSpec, demos: Mapping[str, tuple[Example, ...]]) -> ModuleSpec:
    return updated(module, {name: PredictorUpdate(demos=tuple(d)) for name, d in demos.items()})


def with_lm(module: ModuleSpec, lm: LMChoice) -> ModuleSpec:
    """DSPy's ``module.set_lm(lm)``: every predictor calls ``lm``."""

    return updated(module, {p.name: PredictorUpdate(lm=lm) for p in predictors(module)})


def reset(module: ModuleSpec) -> ModuleSpec:
    """DSPy's ``reset_copy``: every predictor loses its demos (instructions stay)."""

    return with_demos(module, {p.name: () for p in predictors(module)})


def to_json(module: ModuleSpec) -> dict[str, Any]:
    return module_to_dict(module)


def from_json(data: Mapping[str, Any]) -> ModuleSpec:
    return module_from_dict(data)

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
from ..modules.spec import ChainOfThoughtSpec, LMChoice, ModuleSpec, PredictSpec
from ..modules.storage import module_from_dict, module_to_dict

#: Module kinds whose predictors optimizers can change today.
OPTIMIZABLE = (PredictSpec, ChainOfThoughtSpec)


@dataclass(frozen=True)
class PredictorView:
    """One named predictor: the signature it runs (with ChainOfThought's ``reasoning``), the
    signature the user wrote, and its demos."""

    name: str
    signature: Signature
    user_signature: Signature
    demos: tuple[Example, ...]


@dataclass(frozen=True)
class PredictorUpdate:
    """New demos and/or instructions (and an output field's prefix, as COPRO sets) for a predictor;
    None keeps the current value."""

    demos: tuple[Example, ...] | None = None
    instructions: str | None = None
    prefix: tuple[str, str] | None = None


def check_optimizable(module: ModuleSpec, field: str = "program") -> None:
    if not isinstance(module, OPTIMIZABLE):
        raise invalid(field, f"optimizers support predict and chain_of_thought programs; this one is {module.kind.value}")


def predictors(module: ModuleSpec) -> list[PredictorView]:
    return [
        PredictorView(p.name, p.signature, p.spec.signature, tuple(p.spec.demos)) for p in named_predictors(module)
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
    """The module with each named predictor changed as ``updates`` says."""

    check_optimizable(module)
    (view,) = predictors(module)
    update = updates.get(view.name)
    if update is None:
        return module
    spec = module.predictor
    signature = spec.signature
    if update.instructions is not None:
        signature = signature.with_instructions(update.instructions)
    if update.prefix is not None:
        name, prefix = update.prefix
        if any(f.name == name for f in signature.fields):
            signature = signature.with_field(name, prefix=prefix)
    demos = spec.demos if update.demos is None else update.demos
    return dataclasses.replace(module, predictor=dataclasses.replace(spec, signature=signature, demos=tuple(demos)))


def with_demos(module: ModuleSpec, demos: Mapping[str, tuple[Example, ...]]) -> ModuleSpec:
    return updated(module, {name: PredictorUpdate(demos=tuple(d)) for name, d in demos.items()})


def with_lm(module: ModuleSpec, lm: LMChoice) -> ModuleSpec:
    """DSPy's ``module.set_lm(lm)``: every predictor calls ``lm``."""

    check_optimizable(module)
    return dataclasses.replace(module, predictor=dataclasses.replace(module.predictor, lm=lm))


def reset(module: ModuleSpec) -> ModuleSpec:
    """DSPy's ``reset_copy``: every predictor loses its demos (instructions stay)."""

    return with_demos(module, {p.name: () for p in predictors(module)})


def to_json(module: ModuleSpec) -> dict[str, Any]:
    return module_to_dict(module)


def from_json(data: Mapping[str, Any]) -> ModuleSpec:
    return module_from_dict(data)

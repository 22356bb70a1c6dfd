"""Builds each corpus case both ways: a dspy.Signature (reference) and our Signature."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

import dspy
import pydantic
import pytest

from dspy_grpc_server.core.signature import Field, Role, Signature

from .corpus import CASES, Case, T


def py_annotation(py: Any) -> Any:
    if isinstance(py, str) and py.startswith("dspy:"):
        return eval(py[5:], {"Image": dspy.Image, "History": dspy.History, "ToolCalls": dspy.ToolCalls,
                             "Code": dspy.Code})
    return py


def to_dspy_value(annotation: Any, value: Any) -> Any:
    """Turn a JSON value into the Python object a DSPy user would pass."""
    if value is None:
        return None
    if annotation is dspy.Image:
        return dspy.Image(value)
    if typing.get_origin(annotation) is list and typing.get_args(annotation)[0] is dspy.Image:
        return [dspy.Image(v) for v in value]
    if annotation is typing.Any or annotation is str:
        return value
    return pydantic.TypeAdapter(annotation).validate_python(value)


@dataclass
class Built:
    case: Case
    ref: type  # dspy.Signature subclass
    ours: Signature
    annotations: dict[str, Any]

    def dspy_values(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: to_dspy_value(self.annotations[k], v) for k, v in values.items()}


def build(case: Case) -> Built:
    fields: dict[str, Any] = {}
    ours: list[Field] = []
    annotations: dict[str, Any] = {}
    for f in case.fields:
        ann = py_annotation(f.py)
        annotations[f.name] = ann
        kwargs: dict[str, Any] = dict(f.constraints)
        if f.desc is not None:
            kwargs["desc"] = f.desc
        if f.prefix is not None:
            kwargs["prefix"] = f.prefix
        maker = dspy.InputField if f.role == "in" else dspy.OutputField
        with pytest.warns(DeprecationWarning) if f.prefix is not None else _nullcontext():
            fields[f.name] = (ann, maker(**kwargs))
        ours.append(Field(f.name, Role.INPUT if f.role == "in" else Role.OUTPUT, T(f.type), description=f.desc,
                          prefix=f.prefix, constraints=dict(f.constraints)))
    ref = dspy.Signature(fields, case.instructions)
    return Built(case, ref, Signature(tuple(ours), case.instructions).validate(), annotations)


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_BUILT = {case.id: build(case) for case in CASES}


@pytest.fixture(params=sorted(_BUILT), scope="session")
def built(request: pytest.FixtureRequest) -> Built:
    return _BUILT[request.param]


ADAPTER_PAIRS = {
    "chat": dspy.ChatAdapter,
    "json": dspy.JSONAdapter,
    "xml": dspy.XMLAdapter,
}


@pytest.fixture(params=sorted(ADAPTER_PAIRS), scope="session")
def adapter_name(request: pytest.FixtureRequest) -> str:
    return request.param

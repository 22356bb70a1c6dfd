"""Value steps: what a line of forward() computes without an LM (f-strings, joins, constants, ...)."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

from ..core.errors import invalid
from ..core.signature import Field, Role
from ..core.types import ANY
from .context import RunContext
from .node import Node
from .predictor import NamedPredictor
from .spec import ValueSpec

VALUE = "value"
#: Inputs per value step.
MAX_INPUTS = 64
#: Characters of a template or a constant's JSON.
MAX_TEXT = 100_000


def template_fields(template: str, path: str) -> tuple[str, ...]:
    """The placeholders of a ``str.format`` template, in order of first appearance; only plain
    ``{name}`` placeholders are accepted (no indexing, attributes, conversions or format specs)."""

    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise invalid(path, f"is not a valid template: {error} (write {{{{ and }}}} for literal braces)") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise invalid(path, f"placeholder {{{name}{'!' + conversion if conversion else ''}"
                          f"{':' + spec if spec else ''}}} must be a plain {{name}}")
        if name not in names:
            names.append(name)
    return tuple(names)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


class ValueNode(Node):
    kind = "value"

    def __init__(self, name: str, spec: ValueSpec, inputs: tuple[str, ...]) -> None:
        super().__init__(name)
        self.spec = spec
        self.inputs = inputs

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return tuple(Field(name, Role.INPUT, ANY) for name in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return (VALUE,)

    def predictors(self) -> list[NamedPredictor]:
        return []

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        return {VALUE: self.compute(inputs, path)}

    def compute(self, inputs: Mapping[str, Any], path: str) -> Any:
        operation = self.spec.operation
        values = [inputs.get(name) for name in self.inputs]
        if operation == "constant":
            return json.loads(json.dumps(self.spec.constant))  # a fresh copy per call
        if operation == "template":
            return self.spec.template.format(**{name: value for name, value in zip(self.inputs, values)})
        if operation == "object":
            return dict(zip(self.inputs, values))
        if operation == "concat":
            return [item for value in values for item in _as_list(value)]
        (value,) = values
        if not isinstance(value, list):
            raise invalid(f"{path}.{self.inputs[0]}", f"must be a list for the {operation} operation")
        if operation == "join":
            return self.spec.separator.join(item if isinstance(item, str) else str(item) for item in value)
        if operation == "flatten":
            return [inner for item in value for inner in _as_list(item)]
        seen: set[str] = set()  # dedupe
        kept = []
        for item in value:
            key = _key(item)
            if key not in seen:
                seen.add(key)
                kept.append(item)
        return kept

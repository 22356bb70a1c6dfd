"""Signatures: the typed input/output contract of one LM call.

A :class:`Signature` is an ordered tuple of :class:`Field` s plus instructions. Its defaults follow DSPy
3.4.1 exactly: a field without a description is described as ``${name}`` (rendered as nothing), a field
without a prefix gets one derived from its name (``"question"`` -> ``"Question:"``), and a signature without
instructions says ``Given the fields `a`, produce the fields `b`.``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from typing import Any, Mapping

from .errors import FieldViolation, InvalidArgument
from .types import STR, TypeSpec

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Constraint keys accepted on a field, with the text DSPy renders for each (in this order of lookup).
CONSTRAINT_LABELS: dict[str, str] = {
    "gt": "greater than: ",
    "ge": "greater than or equal to: ",
    "lt": "less than: ",
    "le": "less than or equal to: ",
    "min_length": "minimum length: ",
    "max_length": "maximum length: ",
    "multiple_of": "a multiple of the given number: ",
    "allow_inf_nan": "allow 'inf', '-inf', 'nan' values: ",
}


class Role(str, Enum):
    """Whether a field is given to the LM (input) or produced by it (output)."""

    INPUT = "input"
    OUTPUT = "output"


def infer_prefix(name: str) -> str:
    """Turn a field name into the human-readable label DSPy derives from it (without the colon).

    ``"camelCaseText"`` -> ``"Camel Case Text"``, ``"snake_case"`` -> ``"Snake Case"``,
    ``"text2number"`` -> ``"Text 2 Number"``, ``"HTMLParser"`` -> ``"HTML Parser"``.
    """
    spaced = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    spaced = re.sub("([a-z0-9])([A-Z])", r"\1_\2", spaced)
    spaced = re.sub(r"([a-zA-Z])(\d)", r"\1_\2", spaced)
    spaced = re.sub(r"(\d)([a-zA-Z])", r"\1_\2", spaced)
    words = [w if w.isupper() else w.capitalize() for w in spaced.split("_")]
    return " ".join(words)


@dataclass(frozen=True)
class Field:
    """One named, typed slot of a signature.

    ``description`` None means DSPy's default (no description shown); ``prefix`` None means the prefix
    derived from the name. ``constraints`` are numeric/length bounds (``ge``, ``gt``, ``le``, ``lt``,
    ``min_length``, ``max_length``, ``multiple_of``, ``allow_inf_nan``) shown to the LM and enforced on values.
    ``default`` (output fields only) is used when the LM omits the field; ``has_default`` says whether one is set.
    """

    name: str
    role: Role
    type: TypeSpec = STR
    description: str | None = None
    prefix: str | None = None
    constraints: Mapping[str, Any] = field(default_factory=dict, compare=True, hash=False)
    default: Any = field(default=None, compare=True, hash=False)
    has_default: bool = False

    @property
    def effective_prefix(self) -> str:
        """The prefix as DSPy saves it (``"Question:"`` for ``question`` unless overridden)."""
        return self.prefix if self.prefix is not None else infer_prefix(self.name) + ":"

    @property
    def effective_description(self) -> str:
        """The description as DSPy stores it: ``${name}`` when none was given."""
        return self.description if self.description is not None else f"${{{self.name}}}"

    @property
    def constraints_text(self) -> str:
        """The human-readable constraint list DSPy appends to the field's description ('' if none)."""
        parts = []
        for key, value in self.constraints.items():
            if key in CONSTRAINT_LABELS:
                parts.append(f"{CONSTRAINT_LABELS[key]}{value}")
        return ", ".join(parts)

    def __hash__(self) -> int:
        return hash((self.name, self.role, self.type, self.description, self.prefix))


def default_instructions(inputs: list[str] | tuple[str, ...], outputs: list[str] | tuple[str, ...]) -> str:
    """DSPy's instructions for a signature that has none."""
    ins = ", ".join(f"`{n}`" for n in inputs)
    outs = ", ".join(f"`{n}`" for n in outputs)
    return f"Given the fields {ins}, produce the fields {outs}."


@dataclass(frozen=True)
class Signature:
    """An ordered set of input and output fields plus the task instructions.

    Inputs and outputs may be interleaved in ``fields``; like DSPy, each group keeps its own order.
    ``instructions`` None means the default derived from the field names.
    """

    fields: tuple[Field, ...]
    instructions: str | None = None

    # Cached per instance (the dataclass is frozen): adapters ask for these several times per call.
    @cached_property
    def input_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.role == Role.INPUT)

    @cached_property
    def output_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.role == Role.OUTPUT)

    @property
    def ordered_fields(self) -> tuple[Field, ...]:
        """Inputs first, then outputs (the order DSPy uses for ``fields``)."""
        return self.input_fields + self.output_fields

    @property
    def effective_instructions(self) -> str:
        if self.instructions is not None:
            return self.instructions
        return default_instructions([f.name for f in self.input_fields], [f.name for f in self.output_fields])

    def field(self, name: str) -> Field:
        """The field called ``name`` (KeyError if there is none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def validate(self, field_path: str = "signature") -> "Signature":
        """Check the signature is usable; raise InvalidArgument listing every problem. Returns self."""
        violations: list[FieldViolation] = []
        seen: dict[str, int] = {}
        for i, f in enumerate(self.fields):
            path = f"{field_path}.fields[{i}]"
            if not f.name:
                violations.append(FieldViolation(f"{path}.name", "field name must not be empty"))
            elif not f.name.isidentifier():
                violations.append(FieldViolation(
                    f"{path}.name", f"field name {f.name!r} must be an identifier (letters, digits, underscores, "
                    "not starting with a digit)"))
            elif f.name in seen:
                other = self.fields[seen[f.name]]
                if other.role != f.role:
                    msg = f"field {f.name!r} is both an input and an output field"
                else:
                    msg = f"duplicate field name {f.name!r} (also fields[{seen[f.name]}])"
                violations.append(FieldViolation(f"{path}.name", msg))
            else:
                seen[f.name] = i
            if not isinstance(f.role, Role):
                violations.append(FieldViolation(f"{path}.role", "role must be input or output"))
            for key in f.constraints:
                if key not in CONSTRAINT_LABELS:
                    violations.append(FieldViolation(
                        f"{path}.constraints", f"unknown constraint {key!r}; expected one of "
                        f"{', '.join(CONSTRAINT_LABELS)}"))
        if not any(f.role == Role.OUTPUT for f in self.fields):
            violations.append(FieldViolation(f"{field_path}.fields", "a signature needs at least one output field"))
        if violations:
            raise InvalidArgument(
                "invalid signature: " + "; ".join(f"{v.field}: {v.description}" for v in violations),
                violations=violations,
            )
        return self

    # ---- derivations (each returns a new Signature) ----

    def with_instructions(self, instructions: str | None) -> "Signature":
        return replace(self, instructions=instructions)

    def append_instructions(self, extra: str) -> "Signature":
        """DSPy's ``append_instructions``: current instructions, a blank line, then ``extra``."""
        return replace(self, instructions=f"{self.effective_instructions}\n\n{extra}")

    def _frozen_instructions(self) -> str:
        # DSPy fixes the default instructions when a signature is first built; derived signatures keep them.
        return self.effective_instructions

    def prepend_output(self, new_field: Field) -> "Signature":
        """Insert ``new_field`` as the first output field (as DSPy's ``prepend`` does)."""
        new_field = replace(new_field, role=Role.OUTPUT)
        return self._rebuilt(self.input_fields + (new_field,) + self.output_fields)

    def prepend_input(self, new_field: Field) -> "Signature":
        new_field = replace(new_field, role=Role.INPUT)
        return self._rebuilt((new_field,) + self.input_fields + self.output_fields)

    def append_field(self, new_field: Field) -> "Signature":
        """Add ``new_field`` at the end of its role's group."""
        if new_field.role == Role.INPUT:
            fields = self.input_fields + (new_field,) + self.output_fields
        else:
            fields = self.input_fields + self.output_fields + (new_field,)
        return self._rebuilt(fields)

    def _rebuilt(self, fields: tuple[Field, ...]) -> "Signature":
        """A signature of ``fields`` built as DSPy builds one from a dict: a name given twice keeps its
        first position and its last field (so ChainOfThought over a signature that already has a
        ``reasoning`` output keeps that one, in front)."""
        merged: dict[str, Field] = {}
        for f in fields:
            merged[f.name] = f
        return Signature(tuple(merged.values()), self._frozen_instructions())

    def delete(self, name: str) -> "Signature":
        """Remove the field called ``name`` (no error if absent)."""
        return Signature(tuple(f for f in self.ordered_fields if f.name != name), self._frozen_instructions())

    def with_field(self, name: str, **changes: Any) -> "Signature":
        """Return a copy whose field ``name`` has the given attributes replaced."""
        return Signature(
            tuple(replace(f, **changes) if f.name == name else f for f in self.fields), self.instructions
        )


def reasoning_field() -> Field:
    """The ``reasoning: str`` output field ChainOfThought prepends.

    As in DSPy 3.4.1 it has the default description (``${reasoning}``, i.e. none shown) and the derived
    prefix ``"Reasoning:"``.
    """
    return Field(name="reasoning", role=Role.OUTPUT, type=STR)


def with_reasoning(signature: Signature) -> Signature:
    """The signature ChainOfThought calls the LM with: ``reasoning`` prepended to the outputs."""
    return signature.prepend_output(reasoning_field())


def parse_signature(text: str, instructions: str | None = None, *, field_path: str = "signature",
                    names: Mapping[str, TypeSpec] | None = None) -> Signature:
    """Parse DSPy's string form, e.g. ``"question, context: list[str] -> answer: int"``.

    Raises InvalidArgument naming ``field_path`` with the offending token and column.
    """
    from .signature_parser import parse_signature_text

    return parse_signature_text(text, instructions, field_path=field_path, names=names)

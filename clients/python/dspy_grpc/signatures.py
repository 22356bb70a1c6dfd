"""Class-based signatures, written as in DSPy and sent to the server as a structured ``Signature``.

    from typing import Literal
    from dspy_grpc import InputField, OutputField, Signature

    class Classify(Signature):
        \"\"\"Classify the sentiment of a sentence.\"\"\"

        sentence: str = InputField(desc="one sentence")
        sentiment: Literal["positive", "negative", "neutral"] = OutputField()
        confidence: float = OutputField(ge=0, le=1)

The docstring is the instructions (none: DSPy's default, "Given the fields ..."); fields keep the
order they are written in; a field without a type hint is a ``str``. Type hints map to the wire's
``TypeSpec`` as :mod:`dspy_grpc.typespec` describes. A subclass inherits its parent's fields (and
its docstring, when it has none).
"""

from __future__ import annotations

import json

import dataclasses
import inspect
import sys
import typing
from collections.abc import Mapping
from typing import Any

from .typespec import type_spec
from .values import to_json
from .v1 import signature_pb2

__all__ = ["Signature", "InputField", "OutputField", "FieldInfo", "CONSTRAINTS"]

#: The validation constraints a field may carry; the server shows them to the LM and enforces them.
CONSTRAINTS = ("gt", "ge", "lt", "le", "min_length", "max_length", "multiple_of", "allow_inf_nan")

_INPUT, _OUTPUT = "input", "output"
_NO_DEFAULT = object()


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One field of a :class:`Signature`: what :func:`InputField` / :func:`OutputField` return.

    ``annotation`` is the field's Python type (set when the class is built); ``desc`` and ``prefix``
    are ``None`` for DSPy's defaults.
    """

    role: str
    desc: str | None = None
    prefix: str | None = None
    constraints: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    annotation: Any = str
    default: Any = dataclasses.field(default=_NO_DEFAULT, compare=False)
    """Output fields: the value used when the LM's answer leaves the field out (as in DSPy)."""

    @property
    def is_input(self) -> bool:
        return self.role == _INPUT

    def to_proto(self, name: str) -> signature_pb2.SignatureField:
        """The ``SignatureField`` for this field, called ``name``."""

        role = signature_pb2.FIELD_ROLE_INPUT if self.is_input else signature_pb2.FIELD_ROLE_OUTPUT
        try:
            spec = type_spec(self.annotation)
        except TypeError as error:
            raise TypeError(f"field {name!r}: {error}") from None
        field = signature_pb2.SignatureField(name=name, role=role, type=spec)
        if self.desc is not None:
            field.description = self.desc
        if self.prefix is not None:
            field.prefix = self.prefix
        for key, value in self.constraints.items():
            field.constraints.add(name=key, value=json.dumps(value))
        if self.default is not _NO_DEFAULT:
            field.default_json = to_json(self.default)
        return field


def _field(role: str, desc: str | None, prefix: str | None, constraints: dict[str, Any],
           default: Any = _NO_DEFAULT) -> Any:
    unknown = set(constraints) - set(CONSTRAINTS)
    if unknown:
        raise TypeError(f"unknown field argument(s) {sorted(unknown)}; constraints are: {', '.join(CONSTRAINTS)}")
    return FieldInfo(role, desc, prefix, dict(constraints), default=default)


def InputField(*, desc: str | None = None, prefix: str | None = None, **constraints: Any) -> Any:  # noqa: N802
    """An input field. ``desc`` is shown to the LM; ``constraints`` are ``ge=1``, ``max_length=10``, ..."""

    return _field(_INPUT, desc, prefix, constraints)


def OutputField(*, desc: str | None = None, prefix: str | None = None, default: Any = _NO_DEFAULT,  # noqa: N802
                **constraints: Any) -> Any:
    """An output field. ``desc`` is shown to the LM; ``default`` is used when the LM's answer leaves
    the field out; ``constraints`` are ``ge=1``, ``max_length=10``, ..."""

    return _field(_OUTPUT, desc, prefix, constraints, default)


class SignatureMeta(type):
    """Collects a :class:`Signature` subclass' fields and resolves their type hints when it is defined."""

    _fields: dict[str, FieldInfo]
    _instructions: str | None

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> SignatureMeta:
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if not any(isinstance(base, SignatureMeta) for base in bases):
            cls._fields, cls._instructions = {}, None  # the root class
            return cls
        # Resolve this class' own hints in the defining scope (locals too, so signatures may use types
        # defined inside a function); inherited fields were resolved when their class was defined.
        own = type(name, (), {"__annotations__": dict(namespace.get("__annotations__", {}))})
        caller = sys._getframe(1)
        try:
            hints = typing.get_type_hints(own, globalns=caller.f_globals, localns=caller.f_locals, include_extras=True)
        except NameError as error:
            raise TypeError(
                f"signature {name}: cannot resolve a type hint ({error}); define the types it uses before it"
            ) from None
        finally:
            del caller
        fields: dict[str, FieldInfo] = {}
        for base in reversed(cls.__mro__[1:]):
            if isinstance(base, SignatureMeta):
                fields.update(base._fields)
        for attr, value in namespace.items():
            if isinstance(value, FieldInfo):
                fields[attr] = dataclasses.replace(value, annotation=hints.get(attr, str))
        for attr in namespace.get("__annotations__", {}):
            if attr not in fields and not attr.startswith("_"):
                raise TypeError(f"field {attr!r} of {name} must be declared with InputField() or OutputField()")
        cls._fields = fields
        doc = namespace.get("__doc__")
        if doc is None:
            inherited = [b._instructions for b in bases if isinstance(b, SignatureMeta) and b._instructions is not None]
            cls._instructions = inherited[0] if inherited else None
        else:
            cls._instructions = inspect.cleandoc(doc)
        for field_name, info in fields.items():
            info.to_proto(field_name)  # fail at definition time for types with no wire form
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{cls.__name__} is a signature: pass the class itself to Predict / ChainOfThought")

    @property
    def fields(cls) -> dict[str, FieldInfo]:
        """All fields in the order they were written."""

        return dict(cls._fields)

    @property
    def input_fields(cls) -> dict[str, FieldInfo]:
        """The input fields, in order."""

        return {k: v for k, v in cls._fields.items() if v.is_input}

    @property
    def output_fields(cls) -> dict[str, FieldInfo]:
        """The output fields, in order."""

        return {k: v for k, v in cls._fields.items() if not v.is_input}

    @property
    def instructions(cls) -> str | None:
        """The instructions (the docstring), or ``None`` for the server's default."""

        return cls._instructions

    @property
    def signature(cls) -> str:
        """The field names in DSPy's string form, ``"question, context -> answer"``."""

        return f"{', '.join(cls.input_fields)} -> {', '.join(cls.output_fields)}"

    def __repr__(cls) -> str:
        return f"{cls.__name__}({cls.signature})"


class Signature(metaclass=SignatureMeta):
    """Base class of class-based signatures; see the module documentation."""

    @classmethod
    def to_proto(cls) -> signature_pb2.Signature:
        """The structured ``dspy_grpc.v1.Signature``."""

        message = signature_pb2.Signature(fields=[info.to_proto(name) for name, info in cls._fields.items()])
        if not message.fields:
            raise TypeError(f"signature {cls.__name__} has no fields")
        if cls._instructions is not None:
            message.instructions = cls._instructions
        return message

    @classmethod
    def with_instructions(cls, instructions: str) -> type[Signature]:
        """A copy of this signature with other instructions."""

        return SignatureMeta(cls.__name__, (cls,), {"__doc__": instructions, "__module__": cls.__module__})

    @classmethod
    def output_types(cls) -> dict[str, Any]:
        """The Python type of each output field."""

        return {name: info.annotation for name, info in cls.output_fields.items()}

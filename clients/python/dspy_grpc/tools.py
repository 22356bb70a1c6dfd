"""Tools for ReAct: plain Python callables described to the LM, run by this process.

    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        \"\"\"The current weather in a city.\"\"\"
        return f"18 {unit} in {city}"

    agent = dspy_grpc.ReAct(QA, tools=[get_weather, "calculator"], client=client)

A callable becomes a :class:`Tool` as ``dspy.Tool`` makes one: the name is the function's name,
the description its docstring, and each parameter's JSON schema comes from its type hint (with its
default). A string names one of the server's built-in tools (``"calculator"``), which the server
runs itself.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .coerce import OutputTypeError, coerce
from .typespec import _plain, _SchemaBuilder, _sorted
from .v1 import module_pb2

__all__ = ["Tool", "to_tool"]


@dataclasses.dataclass
class Tool:
    """A tool a ReAct agent may call.

    ``func`` runs it in this process (``None`` for a server built-in named by ``builtin``); ``args``
    maps each argument name to its JSON schema, in order; ``arg_types`` are the Python types the
    LM's arguments are converted to before ``func`` is called.
    """

    func: Callable[..., Any] | None
    name: str
    desc: str = ""
    args: dict[str, Any] = dataclasses.field(default_factory=dict)
    arg_types: dict[str, Any] = dataclasses.field(default_factory=dict)
    builtin: str = ""
    has_kwargs: bool = False

    @classmethod
    def from_function(
        cls, func: Callable[..., Any], *, name: str | None = None, desc: str | None = None,
        arg_desc: Mapping[str, str] | None = None,
    ) -> Tool:
        """Describe ``func`` from its name, docstring and type hints (``arg_desc`` adds argument descriptions)."""

        target = func if inspect.isfunction(func) or inspect.ismethod(func) else type(func).__call__
        signature = inspect.signature(func)
        hints = typing.get_type_hints(target)
        args: dict[str, Any] = {}
        arg_types: dict[str, Any] = {}
        has_kwargs = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        for param in signature.parameters.values():  # *args / **kwargs included, as dspy.Tool does
            hint = hints.get(param.name, Any)
            arg_types[param.name] = hint
            args[param.name] = _argument_schema(hint)
            if param.default is not inspect.Parameter.empty:
                args[param.name]["default"] = _plain(param.default)
            if arg_desc and param.name in arg_desc:
                args[param.name]["description"] = arg_desc[param.name]
        doc = getattr(func, "__doc__", None) or ""
        return cls(func, name or getattr(func, "__name__", type(func).__name__), desc if desc is not None else doc,
                   args, arg_types, has_kwargs=has_kwargs)

    @classmethod
    def server(cls, builtin: str) -> Tool:
        """A built-in tool of the server, e.g. ``"calculator"``; the server describes and runs it."""

        return cls(None, builtin, builtin=builtin)

    @property
    def runs_here(self) -> bool:
        """Whether this process runs the tool (through ``InferenceService.Run``)."""

        return not self.builtin

    def to_proto(self) -> module_pb2.ToolSpec:
        if self.builtin:
            return module_pb2.ToolSpec(name=self.name, builtin=self.builtin)
        return module_pb2.ToolSpec(name=self.name, description=self.desc, args_json_schema=json.dumps(self.args))

    def prepare(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The LM's arguments converted to the declared types; raises ``ValueError`` if they do not fit."""

        unknown = set(arguments) - set(self.args)
        if unknown and not self.has_kwargs:
            raise ValueError(f"unknown argument(s) {sorted(unknown)} for tool {self.name}")
        try:
            return {k: coerce(self.arg_types.get(k, Any), v, k) for k, v in arguments.items()}
        except OutputTypeError as error:
            raise ValueError(str(error)) from None


def to_tool(tool: Tool | Callable[..., Any] | str) -> Tool:
    """A :class:`Tool` from a ``Tool``, a callable, or a built-in tool's name."""

    if isinstance(tool, Tool):
        return tool
    if isinstance(tool, str):
        return Tool.server(tool)
    if callable(tool):
        return Tool.from_function(tool)
    raise TypeError(f"a tool must be a callable, a Tool or a built-in tool name, not {type(tool).__name__}")


def _argument_schema(hint: Any) -> dict[str, Any]:
    # As dspy.Tool writes it: pydantic's schema of the type, with every $ref replaced by its definition.
    builder = _SchemaBuilder()
    schema = builder.schema(hint)
    if schema.get("$ref") is not None:
        schema = dict(builder.defs[schema["$ref"].rsplit("/", 1)[-1]])
    defs = {name: _sorted(body) for name, body in builder.defs.items()}
    return _inline_refs(_sorted(schema), defs)


def _inline_refs(value: Any, defs: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if "$ref" in value:
            return _inline_refs(defs[value["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline_refs(v, defs) for k, v in value.items()}
    if isinstance(value, list):
        return [_inline_refs(v, defs) for v in value]
    return value

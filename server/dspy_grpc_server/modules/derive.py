"""The signatures DSPy's modules derive from the user's signature, built exactly as DSPy 3.4.1 builds
them (field order, prefixes, descriptions and instructions), so prompts stay byte-identical."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.signature import Field, Role, Signature, with_reasoning
from ..core.types import ANY, STR, dict_of, literal
from .spec import ToolSpec

FINISH = "finish"


def _names(fields: Sequence[Field]) -> str:
    return ", ".join(f"`{f.name}`" for f in fields)


def finish_tool(signature: Signature) -> ToolSpec:
    """ReAct's built-in ``finish`` tool."""

    return ToolSpec(
        name=FINISH,
        description=(
            "Marks the task as complete. That is, signals that all information for producing the outputs, "
            f"i.e. {_names(signature.output_fields)}, are now available to be extracted."
        ),
    )


def python_repr(value: object) -> str:
    """``repr`` of a JSON value as Python prints it (what DSPy shows for a tool's argument schemas)."""

    return repr(value)


def tool_line(tool: ToolSpec) -> str:
    """A tool as DSPy's ``str(Tool)`` renders it in ReAct's instructions."""

    if tool.description:
        desc = f", whose description is <desc>{tool.description}</desc>.".replace("\n", "  ")
    else:
        desc = "."
    return f"{tool.name}{desc} It takes arguments {python_repr(dict(tool.args))}."


def react_instructions(signature: Signature, tools: Sequence[ToolSpec]) -> str:
    """The instructions of ReAct's ``react`` predictor (the user's tools, then ``finish``)."""

    lines = [f"{signature.effective_instructions}\n"] if signature.effective_instructions else []
    lines += [
        f"You are an Agent. In each episode, you will be given the fields {_names(signature.input_fields)} as "
        "input. And you can see your past trajectory so far.",
        "Your goal is to use one or more of the supplied tools to collect any necessary information for "
        f"producing {_names(signature.output_fields)}.\n",
        "To do this, you will interleave next_thought, next_tool_name, and next_tool_args in each turn, and "
        "also when finishing the task.",
        "After each tool call, you receive a resulting observation, which gets appended to your trajectory.\n",
        "When writing next_thought, you may reason about the current situation and plan for future steps.",
        "When selecting the next_tool_name and its next_tool_args, the tool must be one of:\n",
    ]
    every = [*tools, finish_tool(signature)]
    lines += [f"({index + 1}) {tool_line(tool)}" for index, tool in enumerate(every)]
    lines.append("When providing `next_tool_args`, the value inside the field must be in JSON format")
    return "\n".join(lines)


def react_signature(signature: Signature, tools: Sequence[ToolSpec], instructions: str | None = None) -> Signature:
    """ReAct's ``react`` predictor: the inputs and ``trajectory`` -> next thought, tool name and args."""

    names = tuple(tool.name for tool in tools) + (FINISH,)
    fields = signature.input_fields + (
        Field("trajectory", Role.INPUT, STR),
        Field("next_thought", Role.OUTPUT, STR),
        Field("next_tool_name", Role.OUTPUT, literal(*names)),
        Field("next_tool_args", Role.OUTPUT, dict_of(STR, ANY)),
    )
    return Signature(fields, instructions if instructions is not None else react_instructions(signature, tools))


def lenient_tool_name(signature: Signature) -> Signature:
    """The react signature with ``next_tool_name`` read as any text, so that an unknown tool name
    becomes an observation for the LM instead of a parse failure."""

    return signature.with_field("next_tool_name", type=STR)


def extract_signature(signature: Signature, instructions: str | None = None) -> Signature:
    """ReAct's ``extract`` ChainOfThought: inputs, ``trajectory`` -> reasoning and the outputs."""

    base = Signature(signature.input_fields + signature.output_fields, signature.effective_instructions)
    derived = with_reasoning(base.append_field(Field("trajectory", Role.INPUT, STR)))
    return derived if instructions is None else derived.with_instructions(instructions)


def mcc_signature(signature: Signature, m: int) -> Signature:
    """MultiChainComparison's predictor: ``reasoning_attempt_1..M`` inputs and a ``rationale`` output."""

    derived = signature
    for index in range(1, m + 1):
        derived = derived.append_field(
            Field(f"reasoning_attempt_{index}", Role.INPUT, STR, description="${reasoning attempt}",
                  prefix=f"Student Attempt #{index}:")
        )
    return derived.prepend_output(
        Field("rationale", Role.OUTPUT, STR, description="${corrected reasoning}",
              prefix="Accurate Reasoning: Thank you everyone. Let's now holistically")
    )


def with_hint(signature: Signature) -> Signature:
    """Refine's retry signature: a ``hint_`` input appended."""

    return signature.append_field(
        Field("hint_", Role.INPUT, STR, description="A hint to the module from an earlier run")
    )

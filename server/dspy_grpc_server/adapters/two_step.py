"""DSPy's TwoStepAdapter: a free-form prompt for the main LM, then a ChatAdapter extraction call.

The second LM call belongs to the modules layer: :meth:`TwoStepAdapter.extraction_signature` and
:meth:`TwoStepAdapter.extraction_messages` give it what to send, and :meth:`TwoStepAdapter.parse_extraction`
reads the extraction LM's answer.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..core.errors import ParseError
from ..core.signature import Field, Role, Signature
from ..core.types import STR
from .base import Adapter, Message, field_descriptions
from .chat import ChatAdapter


class TwoStepAdapter(Adapter):
    """First step: natural-language task for a (reasoning) LM. Second step: extract fields with ChatAdapter."""

    name = "two_step"

    def format(self, signature: Signature, demos: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any]
               ) -> list[Message]:
        messages: list[Message] = [{"role": "system", "content": self.task_text(signature)}]
        messages.extend(self.format_demos(signature, demos))
        messages.append({"role": "user", "content": self.user_content(signature, inputs)})
        return messages

    def task_text(self, signature: Signature) -> str:
        parts = [
            "You are a helpful assistant that can solve tasks based on user input.",
            "As input, you will be provided with:\n" + field_descriptions(signature.input_fields),
            "Your outputs must contain:\n" + field_descriptions(signature.output_fields),
            "You should lay out your outputs in detail so that your answer can be understood by another agent",
        ]
        if signature.effective_instructions:
            parts.append(f"Specific instructions: {signature.effective_instructions}")
        return "\n".join(parts)

    def field_structure(self, signature: Signature) -> str:  # not used: the system message is task_text
        return ""

    def user_content(self, signature: Signature, values: Mapping[str, Any], prefix: str = "", suffix: str = "",
                     main_request: bool = False) -> str:
        parts = [prefix]
        parts.extend(f"{f.name}: {_py_str(values.get(f.name, ''))}" for f in signature.input_fields if f.name in values)
        parts.append(suffix)
        return "\n\n".join(parts).strip()

    def assistant_content(self, signature: Signature, values: Mapping[str, Any], missing: str | None = None) -> str:
        parts = [f"{f.name}: {_py_str(values.get(f.name, missing))}" for f in signature.output_fields
                 if f.name in values]
        return "\n\n".join(parts).strip()

    def extraction_signature(self, signature: Signature) -> Signature:
        """The extraction step's signature: ``text`` in, the original output fields out."""
        outs = ", ".join(f"`{f.name}`" for f in signature.output_fields)
        instructions = (
            f"The input is a text that should contain all the necessary information to produce the fields {outs}. "
            "            Your job is to extract the fields from the text verbatim. Extract precisely the appropriate "
            "value (content) for each field."
        )
        return Signature((Field("text", Role.INPUT, STR),) + signature.output_fields, instructions)

    def extraction_messages(self, signature: Signature, completion: str) -> list[Message]:
        """The messages for the extraction LM, given the main LM's completion."""
        return ChatAdapter().format(self.extraction_signature(signature), [], {"text": completion})

    def parse_extraction(self, signature: Signature, extraction_completion: str) -> dict[str, Any]:
        """Read the extraction LM's answer into the original signature's outputs (ParseError if it fails)."""
        try:
            return ChatAdapter().parse(self.extraction_signature(signature), extraction_completion)
        except ParseError as exc:
            raise ParseError(f"Failed to parse response from the original completion: {exc.message}",
                             adapter="TwoStepAdapter", completion=extraction_completion) from exc

    def parse(self, signature: Signature, completion: str) -> dict[str, Any]:
        """The main LM's text needs the extraction call; this parses an already-extracted ChatAdapter answer."""
        return self.parse_extraction(signature, completion)


def _py_str(value: Any) -> str:
    return str(value)

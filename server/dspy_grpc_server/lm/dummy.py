"""A scripted, offline :class:`LM` for tests, demos and users' own test suites.

A :class:`DummyLM` answers from a :class:`DummySpec`:

1. ``rules``: the first rule whose ``contains`` text occurs in the last user message answers;
2. otherwise ``responses`` are handed out in order, one per completion (per choice when ``n > 1``);
3. otherwise, if ``auto`` is set, the output fields named in a DSPy-style prompt are filled with
   deterministic values (``"dummy answer for: <first input>"`` for text, 0 for numbers, ...);
4. otherwise the call fails with :class:`~dspy_grpc_server.core.errors.FailedPrecondition`
   (reason ``DUMMY_LM_EXHAUSTED``).

A response is either raw text or a mapping of output field names to values. A mapping is rendered the
way DSPy's ChatAdapter expects (``[[ ## name ## ]]`` sections closed by ``[[ ## completed ## ]]``), or
as a JSON object when the request asks for a ``response_format``.

The position in ``responses`` belongs to one :class:`DummyLM` instance: build a fresh one (or call
:meth:`DummyLM.fresh`) per request so that a stored program answers the same way every time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import FailedPrecondition
from .types import LM, LMRequest, LMResponse, Usage, message_text


@dataclass(frozen=True)
class DummyResponse:
    """One scripted answer: raw ``text``, or ``fields`` (output field name -> value). Set exactly one."""

    text: str | None = None
    fields: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.fields is None):
            raise ValueError("DummyResponse needs exactly one of text or fields")

    @classmethod
    def of(cls, value: str | Mapping[str, Any]) -> DummyResponse:
        """A response from raw text or from a field mapping."""

        return cls(text=value) if isinstance(value, str) else cls(fields=dict(value))

    def render(self, *, as_json: bool) -> str:
        """The completion text: raw text as is, fields in ChatAdapter markers or as a JSON object."""

        if self.text is not None:
            return self.text
        assert self.fields is not None
        return render_fields(self.fields, as_json=as_json)


@dataclass(frozen=True)
class DummyRule:
    """Answer with ``response`` whenever the last user message contains ``contains``."""

    contains: str
    response: DummyResponse


@dataclass(frozen=True)
class DummySpec:
    """The script of a :class:`DummyLM`; see the module documentation for the order of precedence."""

    responses: tuple[DummyResponse, ...] = ()
    rules: tuple[DummyRule, ...] = ()
    auto: bool = False


def render_fields(fields: Mapping[str, Any], *, as_json: bool) -> str:
    """Render output field values as DSPy's ChatAdapter (or, with ``as_json``, JSONAdapter) expects."""

    if as_json:
        return json.dumps(dict(fields), indent=2, ensure_ascii=False)
    parts = []
    for name, value in fields.items():
        rendered = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"[[ ## {name} ## ]]\n{rendered}\n\n")
    parts.append("[[ ## completed ## ]]")
    return "".join(parts)


def estimate_tokens(text: str) -> int:
    """A rough token count (four characters per token), good enough for a dummy's usage numbers."""

    return (len(text) + 3) // 4


# --------------------------------------------------------------------------- auto answers

_OUTPUT_LIST = re.compile(r"Your output fields are:\n((?:\d+\. .*\n?)+)")
_LISTED_FIELD = re.compile(r"^\d+\. `([^`]+)` \(([^)]*(?:\([^)]*\))?[^)]*)\)", re.MULTILINE)
_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with|\Z)", re.DOTALL)


def prompt_output_fields(request: LMRequest) -> list[tuple[str, str]]:
    """``(name, type)`` of the output fields a DSPy-style system prompt asks for, in order."""

    for message in request.messages:
        if message.get("role") != "system":
            continue
        found = _OUTPUT_LIST.search(message_text(message))
        if found:
            return _LISTED_FIELD.findall(found.group(1))
    return []


def first_input_value(request: LMRequest) -> str:
    """The value of the first ``[[ ## field ## ]]`` section of the last user message (else its text)."""

    text = request.last_user_text()
    section = _SECTION.search(text)
    return (section.group(2) if section else text).strip()


def placeholder_value(name: str, type_name: str, first_input: str) -> Any:
    """A deterministic value of the given (DSPy-rendered) type."""

    t = type_name.strip()
    if t == "int":
        return 0
    if t == "float":
        return 0.0
    if t == "bool":
        return True
    if t.startswith(("list", "tuple", "set")):
        return []
    if t.startswith("dict"):
        return {}
    literal = re.match(r"Literal\[\s*(['\"])(.*?)\1", t)
    if literal:
        return literal.group(2)
    return f"dummy {name} for: {first_input}"


def auto_fields(request: LMRequest) -> dict[str, Any] | None:
    """Placeholder values for every output field the prompt names, or ``None`` if it names none."""

    fields = prompt_output_fields(request)
    if not fields:
        return None
    first = first_input_value(request)
    return {name: placeholder_value(name, type_name, first) for name, type_name in fields}


# --------------------------------------------------------------------------- the LM


class DummyLM(LM):
    """An :class:`LM` answering from a :class:`DummySpec`, without any network."""

    #: The provider name recorded as ``gen_ai.system``.
    system = "dummy"

    def __init__(self, spec: DummySpec, *, name: str = "dummy", model: str = "dummy") -> None:
        self.name = name
        self.model = model
        self.spec = spec
        self._next = 0

    def __repr__(self) -> str:
        return f"DummyLM(name={self.name!r}, responses={len(self.spec.responses)}, rules={len(self.spec.rules)})"

    @classmethod
    def from_values(
        cls,
        responses: list[str | Mapping[str, Any]] | None = None,
        rules: Mapping[str, str | Mapping[str, Any]] | None = None,
        *,
        auto: bool = False,
        name: str = "dummy",
    ) -> DummyLM:
        """Convenience: ``DummyLM.from_values([{"answer": "red"}, "raw text"], {"sky": {"answer": "blue"}})``."""

        spec = DummySpec(
            responses=tuple(DummyResponse.of(r) for r in responses or ()),
            rules=tuple(DummyRule(k, DummyResponse.of(v)) for k, v in (rules or {}).items()),
            auto=auto,
        )
        return cls(spec, name=name)

    def fresh(self) -> DummyLM:
        """A new DummyLM with the same script, starting again from the first response."""

        return DummyLM(self.spec, name=self.name, model=self.model)

    @property
    def remaining(self) -> int:
        """How many scripted ``responses`` are still unused."""

        return len(self.spec.responses) - self._next

    def _answer(self, request: LMRequest, last_user: str) -> DummyResponse:
        for rule in self.spec.rules:
            if rule.contains in last_user:
                return rule.response
        if self._next < len(self.spec.responses):
            response = self.spec.responses[self._next]
            self._next += 1
            return response
        if self.spec.auto:
            fields = auto_fields(request)
            return DummyResponse(fields=fields) if fields else DummyResponse(text=f"dummy reply to: {last_user}")
        if self.spec.responses and not self.spec.rules:
            problem = f"all {len(self.spec.responses)} scripted responses are used up"
        elif self.spec.rules and not self.spec.responses:
            problem = f"no rule matched the last user message ({last_user[:80]!r})"
        elif not self.spec.rules:
            problem = "it has no scripted responses or rules"
        else:
            problem = "no rule matched and all scripted responses are used up"
        raise FailedPrecondition(
            f"dummy LM {self.name} cannot answer: {problem}",
            reason="DUMMY_LM_EXHAUSTED",
            metadata={"model": self.name, "responses": str(len(self.spec.responses))},
        )

    async def complete(self, request: LMRequest, *, timeout: float | None = None) -> LMResponse:
        """Answer from the script; one scripted response per requested choice."""

        last_user = request.last_user_text()
        as_json = request.options.response_format is not None
        texts = tuple(
            self._answer(request, last_user).render(as_json=as_json) for _ in range(max(1, request.options.n))
        )
        prompt_tokens = sum(estimate_tokens(message_text(m)) for m in request.messages)
        completion_tokens = sum(estimate_tokens(t) for t in texts)
        return LMResponse(
            texts=texts,
            usage=Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens),
            model=self.model,
            finish_reasons=("stop",) * len(texts),
        )

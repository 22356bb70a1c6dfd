"""What a module is, as data: predictors (signature, demos, adapter, LM) and the module kinds.

A :class:`ModuleSpec` is validated once, when it is built from a request or loaded from storage,
and turned into plain JSON for persistence by :func:`module_to_dict` / :func:`module_from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..core.codec import example_from_dict, example_to_dict, signature_from_dict, signature_to_dict
from ..core.errors import invalid
from ..core.example import Example
from ..core.signature import Signature
from ..lm.dummy import DummyResponse, DummyRule, DummySpec
from ..lm.types import LMOptions

ADAPTERS = ("chat", "json", "xml", "two_step")


class ModuleKind(str, Enum):
    PREDICT = "predict"
    CHAIN_OF_THOUGHT = "chain_of_thought"


@dataclass(frozen=True)
class LMChoice:
    """Which LM a predictor calls: a configured ``model`` alias or an inline scripted ``dummy``.

    Neither set means "whatever the caller or the server default provides". ``options`` are the
    sampling options layered over the model's configured defaults.
    """

    model: str = ""
    dummy: DummySpec | None = None
    options: LMOptions = field(default_factory=LMOptions)

    @property
    def is_set(self) -> bool:
        return bool(self.model) or self.dummy is not None


@dataclass(frozen=True)
class PredictorSpec:
    signature: Signature
    demos: tuple[Example, ...] = ()
    adapter: str = "chat"
    lm: LMChoice = field(default_factory=LMChoice)
    #: The second LM of the two-step adapter (unused by the others).
    extraction_lm: LMChoice = field(default_factory=LMChoice)

    def validate(self, path: str) -> None:
        self.signature.validate(f"{path}.signature")
        if self.adapter not in ADAPTERS:
            raise invalid(f"{path}.adapter", f"must be one of {', '.join(ADAPTERS)}")
        if self.adapter == "two_step" and not self.extraction_lm.is_set:
            raise invalid(f"{path}.extraction_lm", "is required with the two-step adapter")


@dataclass(frozen=True)
class ModuleSpec:
    kind: ModuleKind
    predictor: PredictorSpec

    def validate(self, path: str = "module") -> ModuleSpec:
        self.predictor.validate(f"{path}.{self.kind.value}.predictor")
        return self


# --------------------------------------------------------------------------- JSON for storage


def module_to_dict(spec: ModuleSpec) -> dict[str, Any]:
    return {"kind": spec.kind.value, "predictor": _predictor_to_dict(spec.predictor)}


def module_from_dict(data: Mapping[str, Any]) -> ModuleSpec:
    return ModuleSpec(kind=ModuleKind(data["kind"]), predictor=_predictor_from_dict(data["predictor"]))


def _predictor_to_dict(spec: PredictorSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"signature": signature_to_dict(spec.signature), "adapter": spec.adapter}
    if spec.demos:
        out["demos"] = [example_to_dict(demo) for demo in spec.demos]
    for key in ("lm", "extraction_lm"):
        choice = _lm_to_dict(getattr(spec, key))
        if choice:
            out[key] = choice
    return out


def _predictor_from_dict(data: Mapping[str, Any]) -> PredictorSpec:
    return PredictorSpec(
        signature=signature_from_dict(data["signature"]),
        demos=tuple(example_from_dict(demo) for demo in data.get("demos", ())),
        adapter=data.get("adapter", "chat"),
        lm=_lm_from_dict(data.get("lm", {})),
        extraction_lm=_lm_from_dict(data.get("extraction_lm", {})),
    )


_OPTION_KEYS = ("temperature", "max_tokens", "top_p", "seed")


def _lm_to_dict(choice: LMChoice) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if choice.model:
        out["model"] = choice.model
    if choice.dummy is not None:
        out["dummy"] = {
            "responses": [_response_to_dict(r) for r in choice.dummy.responses],
            "rules": [
                {"contains": rule.contains, "response": _response_to_dict(rule.response)}
                for rule in choice.dummy.rules
            ],
            "auto": choice.dummy.auto,
        }
    options = {key: getattr(choice.options, key) for key in _OPTION_KEYS}
    options = {key: value for key, value in options.items() if value is not None}
    if choice.options.stop:
        options["stop"] = list(choice.options.stop)
    if options:
        out["options"] = options
    return out


def _lm_from_dict(data: Mapping[str, Any]) -> LMChoice:
    dummy = None
    if "dummy" in data:
        raw = data["dummy"]
        dummy = DummySpec(
            responses=tuple(_response_from_dict(r) for r in raw.get("responses", ())),
            rules=tuple(
                DummyRule(rule["contains"], _response_from_dict(rule["response"]))
                for rule in raw.get("rules", ())
            ),
            auto=bool(raw.get("auto", False)),
        )
    options = dict(data.get("options", {}))
    if "stop" in options:
        options["stop"] = tuple(options["stop"])
    return LMChoice(model=data.get("model", ""), dummy=dummy, options=LMOptions(**options))


def _response_to_dict(response: DummyResponse) -> dict[str, Any]:
    if response.text is not None:
        return {"text": response.text}
    return {"fields": dict(response.fields or {})}


def _response_from_dict(data: Mapping[str, Any]) -> DummyResponse:
    return DummyResponse(text=data.get("text"), fields=data.get("fields"))

"""Metrics: score a prediction against an example (a reward for BestOfN/Refine, a metric for evaluation).

A metric is a frozen :class:`MetricSpec` subclass with a ``kind`` (its name on the wire and in storage),
``validate`` and an async ``score(example, prediction, judge)`` returning a float. Rewards in
BestOfN/Refine are scored with the program inputs as the example, as DSPy's ``reward_fn(args, pred)``.

More metrics plug in with :func:`register_metric` (the evaluation layer adds its own there): this
module imports nothing above ``modules/``, so every layer may use it.
"""

from __future__ import annotations

import re
import string
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ..core.errors import invalid
from ..core.types import TypeKind


class JudgeRunner(Protocol):
    """Runs a judge predictor for LM-based metrics (provided by the engine)."""

    async def run_judge(self, metric: LMJudgeMetric, inputs: Mapping[str, Any]) -> Mapping[str, Any]: ...


class MetricSpec(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def validate(self, path: str) -> None:
        """Raise InvalidArgument naming ``path`` if the metric cannot work."""

    @abstractmethod
    async def score(self, example: Mapping[str, Any], prediction: Mapping[str, Any], judge: JudgeRunner) -> float:
        """The score, higher is better."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for storage (``kind`` is added by :func:`metric_to_dict`)."""

    def describe(self) -> str:
        """A short text naming the metric and its settings (shown to Refine's feedback step)."""
        return f"{self.kind}({self.to_dict()})"


# --------------------------------------------------------------------------- exact match


def normalize_text(text: str) -> str:
    """DSPy's answer normalization: NFD, lower case, no punctuation, no English articles, single spaces."""

    text = unicodedata.normalize("NFD", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


def exact_match(prediction: Any, references: list[Any]) -> bool:
    """True when the normalized prediction equals any normalized reference (DSPy's EM)."""

    predicted = normalize_text(str(prediction))
    return any(predicted == normalize_text(str(reference)) for reference in references)


@dataclass(frozen=True)
class ExactMatchMetric(MetricSpec):
    """1.0 when ``prediction[field]`` equals, after DSPy's normalization, one of ``values`` or else
    ``example[reference_field or field]`` (a list there means: any of its items), 0.0 otherwise."""

    field: str
    reference_field: str = ""
    values: tuple[str, ...] = ()
    kind: ClassVar[str] = "exact_match"

    def validate(self, path: str) -> None:
        if not self.field:
            raise invalid(f"{path}.field", "is required: the prediction field to compare")

    @property
    def reference(self) -> str:
        return self.reference_field or self.field

    async def score(self, example: Mapping[str, Any], prediction: Mapping[str, Any], judge: JudgeRunner) -> float:
        if self.values:
            references: list[Any] = list(self.values)
        else:
            expected = example.get(self.reference)
            if expected is None:
                return 0.0
            references = list(expected) if isinstance(expected, (list, tuple)) else [expected]
        value = prediction.get(self.field)
        if value is None:
            return 0.0
        return 1.0 if exact_match(value, references) else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field}
        if self.reference_field:
            out["reference_field"] = self.reference_field
        if self.values:
            out["values"] = list(self.values)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExactMatchMetric:
        return cls(data["field"], data.get("reference_field", ""), tuple(data.get("values", ())))


# --------------------------------------------------------------------------- LM judge


@dataclass(frozen=True)
class LMJudgeMetric(MetricSpec):
    """An LM judges the prediction: ``judge`` is a predictor whose input fields are filled by name from
    the prediction (first) and the example; its ``score_field`` output (bool, int or float; empty: the
    first such output) is the score (True = 1.0). ``chain_of_thought`` runs it as ChainOfThought."""

    judge: Any  # PredictorSpec (typed loosely: spec.py imports this module)
    score_field: str = ""
    chain_of_thought: bool = False
    kind: ClassVar[str] = "lm_judge"

    def score_output(self) -> str:
        if self.score_field:
            return self.score_field
        for item in self.judge.signature.output_fields:
            if item.type.kind in (TypeKind.BOOL, TypeKind.INT, TypeKind.FLOAT):
                return item.name
        return ""

    def validate(self, path: str) -> None:
        self.judge.validate(f"{path}.judge")
        name = self.score_output()
        if not name:
            raise invalid(f"{path}.score_field", "the judge needs a bool, int or float output field to score with")
        try:
            item = self.judge.signature.field(name)
        except KeyError:
            raise invalid(f"{path}.score_field", f"{name!r} is not an output field of the judge") from None
        if item.type.kind not in (TypeKind.BOOL, TypeKind.INT, TypeKind.FLOAT):
            raise invalid(f"{path}.score_field", f"{name!r} must be a bool, int or float output field")

    async def score(self, example: Mapping[str, Any], prediction: Mapping[str, Any], judge: JudgeRunner) -> float:
        inputs: dict[str, Any] = {}
        for item in self.judge.signature.input_fields:
            if item.name in prediction:
                inputs[item.name] = prediction[item.name]
            elif item.name in example:
                inputs[item.name] = example[item.name]
        outputs = await judge.run_judge(self, inputs)
        value = outputs.get(self.score_output())
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        return float(value or 0.0)

    def to_dict(self) -> dict[str, Any]:
        from .storage import predictor_to_dict

        out: dict[str, Any] = {"judge": predictor_to_dict(self.judge)}
        if self.score_field:
            out["score_field"] = self.score_field
        if self.chain_of_thought:
            out["chain_of_thought"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LMJudgeMetric:
        from .storage import predictor_from_dict

        return cls(predictor_from_dict(data["judge"]), data.get("score_field", ""), bool(data.get("chain_of_thought")))

    def describe(self) -> str:
        sig = self.judge.signature
        inputs = ", ".join(f.name for f in sig.input_fields)
        outputs = ", ".join(f.name for f in sig.output_fields)
        return (f"An LM judge ({inputs} -> {outputs}) with the instructions {sig.effective_instructions!r}; "
                f"the score is its {self.score_output()!r} output.")


# --------------------------------------------------------------------------- registry and storage

_KINDS: dict[str, Callable[[Mapping[str, Any]], MetricSpec]] = {
    ExactMatchMetric.kind: ExactMatchMetric.from_dict,
    LMJudgeMetric.kind: LMJudgeMetric.from_dict,
}


def register_metric(kind: str, from_dict: Callable[[Mapping[str, Any]], MetricSpec]) -> None:
    """Make a metric kind readable from storage (its class provides ``to_dict``)."""

    _KINDS[kind] = from_dict


def metric_to_dict(metric: MetricSpec) -> dict[str, Any]:
    return {"kind": metric.kind, **metric.to_dict()}


def metric_from_dict(data: Mapping[str, Any]) -> MetricSpec:
    kind = data["kind"]
    if kind not in _KINDS:
        raise ValueError(f"unknown metric kind {kind!r}")
    return _KINDS[kind](data)


__all__ = [
    "ExactMatchMetric", "JudgeRunner", "LMJudgeMetric", "MetricSpec", "exact_match", "metric_from_dict",
    "metric_to_dict", "normalize_text", "register_metric",
]

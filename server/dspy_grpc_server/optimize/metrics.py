"""Metrics as data: DSPy's built-in metrics, an LM judge and weighted combinations.

A metric scores one prediction against its example between 0 and 1. Like a DSPy metric it is
called in one of two modes: *evaluating* (DSPy's ``trace is None``: the score as a number) and
*bootstrapping* (a trace is given: DSPy's metrics then answer pass/fail, e.g. SemanticF1 returns
``score >= threshold``). Field metrics read the program's final outputs, or with ``predictor`` set
the outputs of that predictor's last call in the trace.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import bounds
from ..core.errors import invalid
from ..core.example import Example
from ..core.signature import Signature, parse_signature
from ..modules.metrics import exact_match, normalize_text
from ..modules.spec import LMChoice, PredictorSpec
from ..modules.storage import predictor_from_dict, predictor_to_dict

# --------------------------------------------------------------------------- DSPy's text helpers


def token_f1(prediction: str, answer: str) -> float:
    """DSPy's ``f1_score`` over normalized whitespace tokens (0 when nothing overlaps)."""

    predicted, expected = normalize_text(prediction).split(), normalize_text(answer).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def _dpr_tokens(text: str) -> list[str]:
    """DPR's SimpleTokenizer, uncased: runs of letters/digits/marks, or single other visible chars."""

    tokens: list[str] = []
    current: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        category = unicodedata.category(ch)
        if category[0] in "LNM":
            current.append(ch)
            continue
        if current:
            tokens.append("".join(current).lower())
            current = []
        if category[0] not in "ZC":
            tokens.append(ch.lower())
    if current:
        tokens.append("".join(current).lower())
    return tokens


def passage_has_answer(passage: str, answers: Sequence[str]) -> bool:
    """DSPy's ``_passage_match`` for one passage: an answer's DPR tokens occur in the passage's."""

    words = _dpr_tokens(normalize_text(passage))
    for answer in answers:
        tokens = _dpr_tokens(normalize_text(answer))
        for start in range(len(words) - len(tokens) + 1):
            if words[start:start + len(tokens)] == tokens:
                return True
    return False


_NUMBER = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        found = _NUMBER.search(value)
        if found:
            try:
                return float(found.group(0).replace(",", ""))
            except ValueError:
                return None
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _answers(label: Any) -> list[str]:
    if isinstance(label, (list, tuple)):
        return [_as_text(item) for item in label]
    return [_as_text(label)]


def f1_of(precision: float, recall: float) -> float:
    precision, recall = max(0.0, min(1.0, precision)), max(0.0, min(1.0, recall))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------- specs

FIELD_KINDS = ("exact_match", "token_f1", "passage_match", "contains", "numeric")


@dataclass(frozen=True)
class FieldMetric:
    """A metric comparing one prediction field with one example field."""

    kind: str
    field: str = ""
    label_field: str = ""
    predictor: str = ""
    frac: float | None = None
    case_sensitive: bool = False
    abs_tolerance: float = 0.0
    rel_tolerance: float = 0.0

    @property
    def prediction_field(self) -> str:
        return self.field or ("context" if self.kind == "passage_match" else "answer")

    @property
    def example_field(self) -> str:
        if self.label_field:
            return self.label_field
        return "answer" if self.kind == "passage_match" else self.prediction_field


@dataclass(frozen=True)
class LMJudgeMetric:
    """An LM judge: ``judge`` (its signature and LM) runs as ChainOfThought on inputs taken from the
    example and the prediction (``inputs``: judge input -> "example.<f>" / "prediction.<f>"); the
    score is its one ``score_fields`` output, or the F1 of two (SemanticF1's recall and precision)."""

    judge: PredictorSpec
    inputs: Mapping[str, str]
    score_fields: tuple[str, ...]
    threshold: float | None = None


@dataclass(frozen=True)
class WeightedMetric:
    terms: tuple[tuple[float, Metric], ...]


Metric = FieldMetric | LMJudgeMetric | WeightedMetric

#: Runs a judge predictor (as ChainOfThought) on inputs -> the judge's outputs.
JudgeCall = Callable[[PredictorSpec, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


def _semantic_signature(decompositional: bool) -> Signature:
    if decompositional:
        text = ("question, ground_truth, system_response -> ground_truth_key_ideas, system_response_key_ideas, "
                "discussion, recall: float, precision: float")
        instructions = (
            "Compare a system's response to the ground truth to compute recall and precision of key ideas.\n"
            "You will first enumerate key ideas in each response, discuss their overlap, and then report "
            "recall and precision."
        )
    else:
        text = "question, ground_truth, system_response -> recall: float, precision: float"
        instructions = (
            "Compare a system's response to the ground truth to compute its recall and precision.\n"
            "If asked to reason, enumerate key ideas in each response, and whether they are present in the "
            "other response."
        )
    descriptions = {
        "ground_truth_key_ideas": "enumeration of key ideas in the ground truth",
        "system_response_key_ideas": "enumeration of key ideas in the system response",
        "discussion": "discussion of the overlap between ground truth and system response",
        "recall": "fraction (out of 1.0) of ground truth covered by the system response",
        "precision": "fraction (out of 1.0) of system response covered by the ground truth",
    }
    signature = parse_signature(text, instructions)
    for name, description in descriptions.items():
        if any(f.name == name for f in signature.fields):
            signature = signature.with_field(name, description=description)
    return signature


SEMANTIC_F1_INPUTS = {
    "question": "example.question", "ground_truth": "example.response", "system_response": "prediction.response",
}


def semantic_f1(decompositional: bool = False, *, lm: LMChoice | None = None, threshold: float | None = None,
                inputs: Mapping[str, str] | None = None) -> LMJudgeMetric:
    """DSPy's ``SemanticF1`` as a judge metric."""

    judge = PredictorSpec(signature=_semantic_signature(decompositional), lm=lm or LMChoice())
    return LMJudgeMetric(judge, dict(inputs or SEMANTIC_F1_INPUTS), ("recall", "precision"), threshold)


# --------------------------------------------------------------------------- validation


#: Bounds of a metric's numbers.
NON_NEGATIVE = bounds.Range(0, math.inf)
MAX_WEIGHTED_TERMS = 100


def validate_metric(
    metric: Metric, *, outputs: set[str], predictor_outputs: Mapping[str, set[str]],
    example_keys: set[str], path: str = "metric",
) -> None:
    """Reject fields the program or the examples do not have (INVALID_ARGUMENT naming the field)."""

    if isinstance(metric, FieldMetric):
        available = outputs
        if metric.predictor:
            if metric.predictor not in predictor_outputs:
                known = ", ".join(sorted(predictor_outputs)) or "none"
                raise invalid(f"{path}.{metric.kind}.predictor", f"no predictor named {metric.predictor!r} (known: {known})")
            available = predictor_outputs[metric.predictor]
        if metric.prediction_field not in available:
            raise invalid(
                f"{path}.{metric.kind}.field",
                f"the program has no output field {metric.prediction_field!r} (outputs: {', '.join(sorted(available))})",
            )
        if metric.example_field not in example_keys:
            raise invalid(
                f"{path}.{metric.kind}.label_field",
                f"the dataset's examples have no field {metric.example_field!r} (fields: {', '.join(sorted(example_keys))})",
            )
        if metric.frac is not None and not 0 < metric.frac <= 1:
            raise invalid(f"{path}.exact_match.frac", "must be in (0, 1]")
        NON_NEGATIVE.check(metric.abs_tolerance, f"{path}.numeric.abs_tolerance")
        NON_NEGATIVE.check(metric.rel_tolerance, f"{path}.numeric.rel_tolerance")
        return
    if isinstance(metric, LMJudgeMetric):
        base = f"{path}.lm_judge"
        bounds.FINITE.check(metric.threshold, f"{base}.threshold")
        signature = metric.judge.signature
        metric.judge.validate(base)
        inputs = {f.name for f in signature.input_fields}
        for name in inputs:
            if name not in metric.inputs:
                raise invalid(f"{base}.inputs", f"no source for the judge's input field {name!r}")
        for name, source in metric.inputs.items():
            where, _, key = source.partition(".")
            if name not in inputs:
                raise invalid(f"{base}.inputs[{name}]", "is not an input field of the judge's signature")
            if where == "example" and key not in example_keys:
                raise invalid(f"{base}.inputs[{name}]", f"the dataset's examples have no field {key!r}")
            elif where == "prediction" and key not in outputs:
                raise invalid(f"{base}.inputs[{name}]", f"the program has no output field {key!r}")
            elif where not in ("example", "prediction"):
                raise invalid(f"{base}.inputs[{name}]", "must be 'example.<field>' or 'prediction.<field>'")
        if len(metric.score_fields) not in (1, 2):
            raise invalid(f"{base}.score_fields", "name one output field (the score) or two (combined by F1)")
        for name in metric.score_fields:
            if name not in {f.name for f in signature.output_fields}:
                raise invalid(f"{base}.score_fields", f"{name!r} is not an output field of the judge's signature")
        return
    if not metric.terms:
        raise invalid(f"{path}.weighted.terms", "needs at least one term")
    if len(metric.terms) > MAX_WEIGHTED_TERMS:
        raise invalid(f"{path}.weighted.terms", f"must hold at most {MAX_WEIGHTED_TERMS} terms")
    for index, (weight, term) in enumerate(metric.terms):
        if not weight > 0 or math.isinf(weight):
            raise invalid(f"{path}.weighted.terms[{index}].weight", "must be positive")
        validate_metric(term, outputs=outputs, predictor_outputs=predictor_outputs, example_keys=example_keys,
                        path=f"{path}.weighted.terms[{index}].metric")


def judge_metrics(metric: Metric) -> list[LMJudgeMetric]:
    if isinstance(metric, LMJudgeMetric):
        return [metric]
    if isinstance(metric, WeightedMetric):
        return [judge for _, term in metric.terms for judge in judge_metrics(term)]
    return []


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Scored:
    """What a metric sees of one run: the final outputs and each predictor's last outputs."""

    outputs: Mapping[str, Any]
    predictor_outputs: Mapping[str, Mapping[str, Any]]


def _field_score(metric: FieldMetric, example: Example, run: Scored) -> float:
    source = run.predictor_outputs.get(metric.predictor, {}) if metric.predictor else run.outputs
    value = source.get(metric.prediction_field)
    label = example.data.get(metric.example_field)
    if metric.kind == "exact_match":
        answers = _answers(label)
        if metric.frac is not None and metric.frac < 1.0:
            return float(max(token_f1(_as_text(value), a) for a in answers) >= metric.frac)
        return float(exact_match(_as_text(value), answers))
    if metric.kind == "token_f1":
        return max(token_f1(_as_text(value), a) for a in _answers(label))
    if metric.kind == "passage_match":
        passages = value if isinstance(value, (list, tuple)) else [value]
        answers = _answers(label)
        return float(any(passage_has_answer(_as_text(p), answers) for p in passages))
    if metric.kind == "contains":
        text = _as_text(value)
        if metric.case_sensitive:
            return float(any(a in text for a in _answers(label)))
        normalized = normalize_text(text)
        return float(any(normalize_text(a) in normalized for a in _answers(label)))
    predicted, expected = as_number(value), as_number(label)
    if predicted is None or expected is None:
        return 0.0
    tolerance = max(metric.abs_tolerance, metric.rel_tolerance * abs(expected))
    return float(abs(predicted - expected) <= tolerance)


async def score(
    metric: Metric, example: Example, run: Scored, *, judge: JudgeCall, bootstrapping: bool = False
) -> float:
    """The metric's score for one run (pass/fail as 1/0 for the judge when ``bootstrapping``)."""

    if isinstance(metric, FieldMetric):
        return _field_score(metric, example, run)
    if isinstance(metric, LMJudgeMetric):
        inputs = {}
        for name, source in metric.inputs.items():
            where, _, key = source.partition(".")
            inputs[name] = (example.data if where == "example" else run.outputs).get(key)
        outputs = await judge(metric.judge, inputs)
        values = [as_number(outputs.get(name)) or 0.0 for name in metric.score_fields]
        value = values[0] if len(values) == 1 else f1_of(values[1], values[0])
        if bootstrapping:
            threshold = 0.66 if metric.threshold is None else metric.threshold
            return float(value >= threshold)
        return value
    total = sum(weight for weight, _ in metric.terms)
    parts = [weight * await score(term, example, run, judge=judge, bootstrapping=bootstrapping)
             for weight, term in metric.terms]
    return sum(parts) / total


def score_range(metric: Metric) -> tuple[float, float]:
    """The lowest and highest score ``metric`` can give one run (infinite where it sets no bound:
    an LM judge's single score field)."""

    if isinstance(metric, FieldMetric):
        return 0.0, 1.0
    if isinstance(metric, LMJudgeMetric):
        return (0.0, 1.0) if len(metric.score_fields) == 2 else (-math.inf, math.inf)
    total = sum(weight for weight, _ in metric.terms)
    ranges = [(weight, score_range(term)) for weight, term in metric.terms]
    return (sum(weight * low for weight, (low, _) in ranges) / total,
            sum(weight * high for weight, (_, high) in ranges) / total)


# --------------------------------------------------------------------------- JSON for storage


def metric_to_dict(metric: Metric) -> dict[str, Any]:
    if isinstance(metric, FieldMetric):
        return {key: value for key, value in metric.__dict__.items() if value not in ("", None, False, 0.0)} | {
            "kind": metric.kind
        }
    if isinstance(metric, LMJudgeMetric):
        out: dict[str, Any] = {"kind": "lm_judge", "judge": predictor_to_dict(metric.judge),
                               "inputs": dict(metric.inputs), "score_fields": list(metric.score_fields)}
        if metric.threshold is not None:
            out["threshold"] = metric.threshold
        return out
    return {"kind": "weighted", "terms": [{"weight": w, "metric": metric_to_dict(m)} for w, m in metric.terms]}


def metric_from_dict(data: Mapping[str, Any]) -> Metric:
    kind = data["kind"]
    if kind in FIELD_KINDS:
        return FieldMetric(**{key: value for key, value in data.items()})
    if kind == "lm_judge":
        return LMJudgeMetric(
            predictor_from_dict(data["judge"]), dict(data["inputs"]), tuple(data["score_fields"]), data.get("threshold")
        )
    return WeightedMetric(tuple((float(t["weight"]), metric_from_dict(t["metric"])) for t in data["terms"]))


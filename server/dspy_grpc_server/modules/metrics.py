"""Metrics as data: the one metric system of evaluations, optimizers and BestOfN/Refine rewards.

A metric scores one run of a program against its example -- DSPy's ``metric(example, pred, trace)``
-- and says why, as feedback text (DSPy's GEPA feedback protocol: ``dspy.Prediction(score=...,
feedback=...)``, per predictor where the metric looks at one predictor's outputs):

* field metrics compare one output with one label (exact match, token F1, passage match, contains,
  numeric) and explain a miss (what was expected, what came);
* an LM judge runs a signature on values taken from the example and the prediction and reads the
  score (and optionally the feedback) from its outputs (SemanticF1 by default);
* a weighted metric averages its terms and merges their feedback.

Like a DSPy metric it is called in one of two modes: *evaluating* (DSPy's ``trace is None``: the score
as a number) and *bootstrapping* (a trace is given: DSPy's metrics then answer pass/fail, e.g.
SemanticF1 returns ``score >= threshold``). As a reward the module's inputs stand in for the example.

This module sits in ``modules/`` (rollouts score rewards with it) and imports nothing above it, so
optimizers and evaluations use the same code.
"""

from __future__ import annotations

import json
import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import bounds
from ..core.errors import invalid
from ..core.signature import Signature, parse_signature
from ..core.types import TypeKind
from ..core.values import allows_none
from .spec import LMChoice, PredictorSpec

# --------------------------------------------------------------------------- DSPy's text helpers


def normalize_text(text: str) -> str:
    """DSPy's answer normalization: NFD, lower case, no punctuation, no English articles, single spaces."""

    text = unicodedata.normalize("NFD", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


def exact_match(prediction: Any, references: Sequence[Any]) -> bool:
    """True when the normalized prediction equals any normalized reference (DSPy's EM)."""

    predicted = normalize_text(str(prediction))
    return any(predicted == normalize_text(str(reference)) for reference in references)


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
    """A metric comparing one prediction field with one example field (or with fixed ``values``)."""

    kind: str
    field: str = ""
    label_field: str = ""
    predictor: str = ""
    frac: float | None = None
    case_sensitive: bool = False
    abs_tolerance: float = 0.0
    rel_tolerance: float = 0.0
    #: Fixed labels used instead of the example's field (a reward's ``values``).
    values: tuple[str, ...] = ()

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
    """An LM judge: ``judge`` (its signature and LM) runs as ChainOfThought (Predict without
    ``chain_of_thought``) on inputs taken from the example and the prediction (``inputs``: judge
    input -> "example.<f>" / "prediction.<f>"; empty: each judge input by name from the prediction,
    else the example); the score is its one ``score_fields`` output, or the F1 of two (SemanticF1's
    recall and precision); ``feedback_field`` names an output holding feedback text."""

    judge: PredictorSpec
    inputs: Mapping[str, str]
    score_fields: tuple[str, ...]
    threshold: float | None = None
    chain_of_thought: bool = True
    feedback_field: str = ""


@dataclass(frozen=True)
class WeightedMetric:
    terms: tuple[tuple[float, Metric], ...]


Metric = FieldMetric | LMJudgeMetric | WeightedMetric

#: Runs a judge (as its metric says: ChainOfThought or Predict) on inputs -> the judge's outputs.
JudgeCall = Callable[[LMJudgeMetric, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


def first_score_output(signature: Signature) -> str:
    """The judge's first bool, int or float output ("" when it has none)."""

    for item in signature.output_fields:
        if item.type.kind in (TypeKind.BOOL, TypeKind.INT, TypeKind.FLOAT):
            return item.name
    return ""


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
    """Reject fields the program or the examples do not have (INVALID_ARGUMENT naming the field).
    For a reward, ``example_keys`` are the module's input fields."""

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
        if not metric.values and metric.example_field not in example_keys:
            raise invalid(
                f"{path}.{metric.kind}.label_field",
                f"the examples have no field {metric.example_field!r} (fields: {', '.join(sorted(example_keys))})",
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
        input_fields = {f.name: f for f in signature.input_fields}
        if metric.inputs:
            for name in input_fields:
                if name not in metric.inputs:
                    raise invalid(f"{base}.inputs", f"no source for the judge's input field {name!r}")
        else:
            for name, item in input_fields.items():
                if name not in outputs | example_keys and not allows_none(item.type):
                    raise invalid(f"{base}.signature",
                                  f"the judge input {name!r} is neither an output of the program nor a field of the examples")
        for name, source in metric.inputs.items():
            where, _, key = source.partition(".")
            if name not in input_fields:
                raise invalid(f"{base}.inputs[{name}]", "is not an input field of the judge's signature")
            if where == "example" and key not in example_keys:
                raise invalid(f"{base}.inputs[{name}]", f"the examples have no field {key!r}")
            elif where == "prediction" and key not in outputs:
                raise invalid(f"{base}.inputs[{name}]", f"the program has no output field {key!r}")
            elif where not in ("example", "prediction"):
                raise invalid(f"{base}.inputs[{name}]", "must be 'example.<field>' or 'prediction.<field>'")
        output_names = {f.name for f in signature.output_fields}
        if len(metric.score_fields) not in (1, 2):
            raise invalid(f"{base}.score_fields", "name one output field (the score) or two (combined by F1); "
                          "the judge needs a bool, int or float output to score with")
        for name in metric.score_fields:
            if name not in output_names:
                raise invalid(f"{base}.score_fields", f"{name!r} is not an output field of the judge's signature")
        if metric.feedback_field and metric.feedback_field not in output_names:
            raise invalid(f"{base}.feedback_field", f"{metric.feedback_field!r} is not an output field of the judge")
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
    predictor_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Assessment:
    """A metric's answer for one run: the score and the feedback lines, each for every predictor
    (target None) or for one named predictor."""

    score: float
    lines: tuple[tuple[str | None, str], ...] = ()

    def feedback(self, predictor: str | None = None) -> str:
        """The feedback for ``predictor`` (None: the whole program), or -- when the metric says
        nothing -- DSPy's default "This trajectory got a score of ...". """

        texts = [text for target, text in self.lines if predictor is None or target in (None, predictor)]
        return "\n".join(texts) if texts else f"This trajectory got a score of {self.score}."


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _labels(metric: FieldMetric, example: Mapping[str, Any]) -> Any:
    if metric.values:
        return list(metric.values) if len(metric.values) > 1 else metric.values[0]
    return example.get(metric.example_field)


def _field_assess(metric: FieldMetric, example: Mapping[str, Any], run: Scored) -> Assessment:
    source = run.predictor_outputs.get(metric.predictor, {}) if metric.predictor else run.outputs
    value = source.get(metric.prediction_field)
    label = _labels(metric, example)
    answers = _answers(label)
    kind = metric.kind
    if kind == "exact_match":
        if metric.frac is not None and metric.frac < 1.0:
            score = float(max(token_f1(_as_text(value), a) for a in answers) >= metric.frac)
        else:
            score = float(exact_match(_as_text(value), answers))
    elif kind == "token_f1":
        score = max(token_f1(_as_text(value), a) for a in answers)
    elif kind == "passage_match":
        passages = value if isinstance(value, (list, tuple)) else [value]
        score = float(any(passage_has_answer(_as_text(p), answers) for p in passages))
    elif kind == "contains":
        text = _as_text(value)
        if metric.case_sensitive:
            score = float(any(a in text for a in answers))
        else:
            normalized = normalize_text(text)
            score = float(any(normalize_text(a) in normalized for a in answers))
    else:
        predicted, expected = as_number(value), as_number(label)
        if predicted is None or expected is None:
            score = 0.0
        else:
            tolerance = max(metric.abs_tolerance, metric.rel_tolerance * abs(expected))
            score = float(abs(predicted - expected) <= tolerance)
    name = metric.prediction_field
    expected_text = " or ".join(_show(a) for a in answers) if isinstance(label, (list, tuple)) else _show(label)
    if score >= 1.0:
        text = f"The {name} {_show(value)} is correct (expected {expected_text})."
    elif kind == "token_f1" and score > 0:
        text = f"The {name} {_show(value)} only partly matches the expected {expected_text} (token F1 {score:.2f})."
    else:
        text = f"The {name} {_show(value)} is incorrect: the expected {name} is {expected_text}."
    return Assessment(score, ((metric.predictor or None, text),))


def _judge_inputs(metric: LMJudgeMetric, example: Mapping[str, Any], run: Scored) -> dict[str, Any]:
    if metric.inputs:
        inputs = {}
        for name, source in metric.inputs.items():
            where, _, key = source.partition(".")
            inputs[name] = (example if where == "example" else run.outputs).get(key)
        return inputs
    inputs = {}
    for item in metric.judge.signature.input_fields:
        if item.name in run.outputs:
            inputs[item.name] = run.outputs[item.name]
        elif item.name in example:
            inputs[item.name] = example[item.name]
    return inputs


async def assess(
    metric: Metric, example: Mapping[str, Any], run: Scored, *, judge: JudgeCall, bootstrapping: bool = False
) -> Assessment:
    """The metric's score and feedback for one run (pass/fail as 1/0 for a judge when ``bootstrapping``).
    ``example`` is the example's fields (a reward: the module's inputs)."""

    if isinstance(metric, FieldMetric):
        return _field_assess(metric, example, run)
    if isinstance(metric, LMJudgeMetric):
        outputs = await judge(metric, _judge_inputs(metric, example, run))
        values = []
        for name in metric.score_fields:
            raw = outputs.get(name)
            values.append((1.0 if raw else 0.0) if isinstance(raw, bool) else (as_number(raw) or 0.0))
        value = values[0] if len(values) == 1 else f1_of(values[1], values[0])
        if bootstrapping:
            threshold = 0.66 if metric.threshold is None else metric.threshold
            value = float(value >= threshold)
        lines: tuple[tuple[str | None, str], ...] = ()
        if metric.feedback_field and outputs.get(metric.feedback_field) not in (None, ""):
            lines = ((None, _as_text(outputs.get(metric.feedback_field))),)
        return Assessment(value, lines)
    total = sum(weight for weight, _ in metric.terms)
    parts = [await assess(term, example, run, judge=judge, bootstrapping=bootstrapping) for _, term in metric.terms]
    score = sum(weight * part.score for (weight, _), part in zip(metric.terms, parts, strict=True)) / total
    return Assessment(score, tuple(line for part in parts for line in part.lines))


async def score(
    metric: Metric, example: Mapping[str, Any], run: Scored, *, judge: JudgeCall, bootstrapping: bool = False
) -> float:
    """The metric's score for one run."""

    return (await assess(metric, example, run, judge=judge, bootstrapping=bootstrapping)).score


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


def describe(metric: Metric) -> str:
    """A short text naming the metric and its settings (Refine's feedback step shows it as the reward)."""

    if isinstance(metric, LMJudgeMetric):
        sig = metric.judge.signature
        inputs = ", ".join(f.name for f in sig.input_fields)
        outputs = ", ".join(f.name for f in sig.output_fields)
        scored = " and ".join(repr(name) for name in metric.score_fields)
        return (f"An LM judge ({inputs} -> {outputs}) with the instructions {sig.effective_instructions!r}; "
                f"the score is its {scored} output.")
    data = metric_to_dict(metric)
    kind = data.pop("kind")
    return f"{kind}({data})"


# --------------------------------------------------------------------------- JSON for storage


def metric_to_dict(metric: Metric) -> dict[str, Any]:
    from .storage import predictor_to_dict

    if isinstance(metric, FieldMetric):
        out = {key: value for key, value in metric.__dict__.items() if value not in ("", None, False, 0.0, ())}
        if metric.values:
            out["values"] = list(metric.values)
        return out | {"kind": metric.kind}
    if isinstance(metric, LMJudgeMetric):
        out: dict[str, Any] = {"kind": "lm_judge", "judge": predictor_to_dict(metric.judge),
                               "inputs": dict(metric.inputs), "score_fields": list(metric.score_fields),
                               "chain_of_thought": metric.chain_of_thought}
        if metric.threshold is not None:
            out["threshold"] = metric.threshold
        if metric.feedback_field:
            out["feedback_field"] = metric.feedback_field
        return out
    return {"kind": "weighted", "terms": [{"weight": w, "metric": metric_to_dict(m)} for w, m in metric.terms]}


def metric_from_dict(data: Mapping[str, Any]) -> Metric:
    """Also reads the reward forms stored before rewards and metrics were one system
    (``reference_field``; an LM judge with ``score_field`` and no ``inputs``)."""

    from .storage import predictor_from_dict

    kind = data["kind"]
    if kind in FIELD_KINDS:
        values = {key: value for key, value in data.items() if key not in ("reference_field", "values")}
        if data.get("reference_field"):
            values["label_field"] = data["reference_field"]
        return FieldMetric(**values, values=tuple(data.get("values", ())))
    if kind == "lm_judge":
        judge = predictor_from_dict(data["judge"])
        if "score_fields" in data:
            score_fields = tuple(data["score_fields"])
        else:
            score_fields = tuple(name for name in [data.get("score_field") or first_score_output(judge.signature)] if name)
        return LMJudgeMetric(
            judge, dict(data.get("inputs", {})), score_fields, data.get("threshold"),
            bool(data.get("chain_of_thought", "inputs" in data)), data.get("feedback_field", ""),
        )
    if kind == "weighted":
        return WeightedMetric(tuple((float(t["weight"]), metric_from_dict(t["metric"])) for t in data["terms"]))
    raise ValueError(f"unknown metric kind {kind!r}")


__all__ = [
    "Assessment", "FieldMetric", "JudgeCall", "LMJudgeMetric", "Metric", "Scored", "WeightedMetric", "as_number",
    "assess", "describe", "exact_match", "first_score_output", "judge_metrics", "metric_from_dict", "metric_to_dict",
    "normalize_text", "passage_has_answer", "score", "score_range", "semantic_f1", "token_f1", "validate_metric",
]

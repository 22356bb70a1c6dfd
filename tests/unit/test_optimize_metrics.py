"""Metric specs against dspy 3.4.1's own metric functions, and the JSON they are stored as."""

from __future__ import annotations

import asyncio

import pytest
from dspy.evaluate import metrics as dspy_metrics
from dspy.evaluate.auto_evaluation import f1_score as dspy_semantic_f1

from dspy_grpc_server.core.example import Example
from dspy_grpc_server.modules.metrics import (
    FieldMetric,
    LMJudgeMetric,
    Scored,
    WeightedMetric,
    assess,
    metric_from_dict,
    metric_to_dict,
    score,
    score_range,
    semantic_f1,
    token_f1,
)

PAIRS = [
    ("The Eiffel Tower", "Eiffel Tower"), ("paris", "Paris, France"), ("Eiffel Tower is in Paris", "Paris"),
    ("", ""), ("  a  b  ", "b a"), ("Café", "cafe"), ("Ünïcödé!", "unicode"), ("42", "42.0"), ("no", "yes"),
]


def _score(metric, label, value, *, trace=None, bootstrapping=False, judge=None):
    async def no_judge(_judge, _inputs):
        raise AssertionError("no judge expected")

    example = Example({"answer": label, "question": "q", "response": label}, ("question",))
    run = Scored({"answer": value, "context": value, "response": value}, trace or {})
    return asyncio.run(score(metric, example.data, run, judge=judge or no_judge, bootstrapping=bootstrapping))


@pytest.mark.parametrize(("prediction", "label"), PAIRS)
def test_exact_match_and_f1_are_dspys(prediction, label):
    assert _score(FieldMetric("exact_match"), label, prediction) == float(dspy_metrics.EM(prediction, [label]))
    assert token_f1(prediction, label) == pytest.approx(dspy_metrics.f1_score(prediction, label))
    for frac in (0.3, 0.5):
        expected = dspy_metrics.answer_exact_match(
            type("E", (), {"answer": label})(), type("P", (), {"answer": prediction})(), frac=frac)
        assert _score(FieldMetric("exact_match", frac=frac), label, prediction) == float(expected)


def test_lists_of_labels_mean_any_of_them():
    assert _score(FieldMetric("exact_match"), ["Louvre", "Eiffel Tower"], "the eiffel tower") == 1.0
    assert _score(FieldMetric("token_f1"), ["a b", "c d e"], "c d") == pytest.approx(0.8)


@pytest.mark.parametrize(("passages", "answer"), [
    (["The Eiffel Tower is in Paris.", "x"], "Eiffel Tower"), (["Paris-based towers"], "tower"),
    (["naïve approach"], "naive"), (["U.S.A. won"], "usa"), (["nothing here"], "Paris"),
])
def test_passage_match_is_dspys(passages, answer):
    assert _score(FieldMetric("passage_match"), answer, passages) == float(
        dspy_metrics._passage_match(passages, [answer]))


def test_contains_numeric_and_weighted():
    assert _score(FieldMetric("contains"), "Paris", "It is PARIS, France.") == 1.0
    assert _score(FieldMetric("contains", case_sensitive=True), "Paris", "It is PARIS") == 0.0
    assert _score(FieldMetric("numeric"), "42", "The answer is 42.0") == 1.0
    assert _score(FieldMetric("numeric", abs_tolerance=0.5), "10", "10.4") == 1.0
    assert _score(FieldMetric("numeric", rel_tolerance=0.1), "100", "1,090") == 0.0
    assert _score(FieldMetric("numeric"), "1", "none") == 0.0
    weighted = WeightedMetric(((3.0, FieldMetric("exact_match")), (1.0, FieldMetric("contains"))))
    assert _score(weighted, "Paris", "Paris, France") == 0.25


def test_field_metrics_can_read_a_predictor_from_the_trace():
    metric = FieldMetric("exact_match", field="answer", predictor="draft.predict")
    assert _score(metric, "Paris", "Lyon", trace={"draft.predict": {"answer": "Paris"}}) == 1.0


def test_semantic_f1_judge_scores_like_dspy_and_passes_or_fails_while_bootstrapping():
    seen = {}

    async def judge(predictor, inputs):
        seen.update(inputs)
        return {"reasoning": "...", "recall": 0.8, "precision": "0.5"}

    metric = semantic_f1()
    value = _score(metric, "Paris is the capital", "Paris", judge=judge)
    assert value == pytest.approx(dspy_semantic_f1(0.5, 0.8))
    assert seen == {"question": "q", "ground_truth": "Paris is the capital", "system_response": "Paris"}
    assert _score(metric, "x", "y", judge=judge, bootstrapping=True) == 0.0  # 0.615 < 0.66
    assert _score(semantic_f1(threshold=0.6), "x", "y", judge=judge, bootstrapping=True) == 1.0


def test_metrics_round_trip_through_json():
    metrics = [
        FieldMetric("exact_match", field="a", label_field="b", predictor="p", frac=0.5),
        FieldMetric("numeric", abs_tolerance=1.0, rel_tolerance=0.1),
        semantic_f1(decompositional=True, threshold=0.7),
        WeightedMetric(((1.0, FieldMetric("contains", case_sensitive=True)), (2.0, semantic_f1()))),
    ]
    for metric in metrics:
        assert metric_from_dict(metric_to_dict(metric)) == metric
    assert isinstance(metric_from_dict(metric_to_dict(metrics[2])), LMJudgeMetric)


def test_score_range_is_what_a_metric_can_give_one_run():
    """What MIPROv2's look-ahead relies on: the lowest and highest score a run can get."""

    judge = semantic_f1()
    one_field = LMJudgeMetric(judge.judge, judge.inputs, ("recall",))
    assert score_range(FieldMetric("exact_match")) == (0.0, 1.0)
    assert score_range(FieldMetric("token_f1")) == (0.0, 1.0)
    assert score_range(judge) == (0.0, 1.0)  # the F1 of recall and precision, each clamped
    assert score_range(one_field) == (float("-inf"), float("inf"))  # whatever number the judge writes
    assert score_range(WeightedMetric(((3.0, FieldMetric("exact_match")), (1.0, judge)))) == (0.0, 1.0)
    assert score_range(WeightedMetric(((1.0, FieldMetric("contains")), (1.0, one_field)))) == (
        float("-inf"), float("inf"))


def _assess(metric, example, run, judge=None):
    async def no_judge(_metric, _inputs):
        raise AssertionError("no judge expected")

    return asyncio.run(assess(metric, example, run, judge=judge or no_judge))


def test_field_metrics_explain_a_miss_and_weighted_metrics_merge_feedback():
    example = {"answer": "Paris", "city": "Paris"}
    run = Scored({"answer": "Lyon"}, {"draft": {"city": "Paris"}})
    miss = _assess(FieldMetric("exact_match"), example, run)
    assert miss.score == 0.0
    assert miss.feedback() == 'The answer Lyon is incorrect: the expected answer is Paris.'
    weighted = WeightedMetric(((1.0, FieldMetric("exact_match")), (1.0, FieldMetric("contains", "city", predictor="draft"))))
    both = _assess(weighted, example, run)
    assert both.score == 0.5
    # The predictor-specific term's feedback goes to that predictor only (DSPy's pred_name feedback).
    assert both.feedback("draft") == ("The answer Lyon is incorrect: the expected answer is Paris.\n"
                                      "The city Paris is correct (expected Paris).")
    assert both.feedback("answerer") == "The answer Lyon is incorrect: the expected answer is Paris."
    assert _assess(FieldMetric("token_f1"), {"answer": "big dog"}, Scored({"answer": "big cat"})).feedback() == (
        "The answer big cat only partly matches the expected big dog (token F1 0.50).")


def test_an_lm_judge_returns_its_feedback_field_or_the_dspy_default():
    judge = semantic_f1()
    with_feedback = LMJudgeMetric(judge.judge, judge.inputs, ("recall",), feedback_field="precision")

    async def answer(_metric, _inputs):
        return {"recall": 0.25, "precision": "Mention the river."}

    run = Scored({"response": "Paris"})
    assert _assess(with_feedback, {"question": "q", "response": "r"}, run, answer).feedback() == "Mention the river."
    plain = LMJudgeMetric(judge.judge, judge.inputs, ("recall",))
    assert _assess(plain, {"question": "q", "response": "r"}, run, answer).feedback() == (
        "This trajectory got a score of 0.25.")


def test_reward_forms_stored_before_the_merge_still_load():
    old_match = metric_from_dict({"kind": "exact_match", "field": "answer", "reference_field": "gold",
                                  "values": ["x"]})
    assert old_match == FieldMetric("exact_match", "answer", "gold", values=("x",))
    judge = semantic_f1().judge
    from dspy_grpc_server.modules.storage import predictor_to_dict

    old_judge = metric_from_dict({"kind": "lm_judge", "judge": predictor_to_dict(judge), "score_field": "recall"})
    assert old_judge.score_fields == ("recall",) and not old_judge.chain_of_thought and old_judge.inputs == {}
    assert metric_from_dict(metric_to_dict(old_judge)) == old_judge

"""The [limits] config table: server-wide bounds a deployment may raise, checked when read."""

from __future__ import annotations

from pathlib import Path

import pytest

from dspy_grpc_server.app.config import load_config
from dspy_grpc_server.core.bounds import Limits, Range
from dspy_grpc_server.core.errors import InvalidArgument, ResourceExhausted


def load(tmp_path: Path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path, environ={})


def test_limits_default_and_raised_from_toml(tmp_path: Path) -> None:
    assert load(tmp_path, "").limits == Limits()
    raised = load(tmp_path, "[limits]\nmax_candidates = 500\nmax_job_lm_calls = 1000000\n").limits
    assert raised.max_candidates == 500 and raised.max_job_lm_calls == 1_000_000
    assert raised.max_trials == Limits().max_trials


@pytest.mark.parametrize(("text", "field"), [
    ("[limits]\nmax_candidats = 5\n", "limits.max_candidats"),
    ("[limits]\nmax_trials = 0\n", "limits.max_trials"),
    ("[limits]\nmax_depth = \"many\"\n", "limits.max_depth"),
])
def test_bad_limits_name_the_key(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load(tmp_path, text)
    assert caught.value.violations[0].field == field


def test_a_range_names_the_field_and_refuses_non_finite_numbers() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Range(0, 10).check(11, "optimization.copro.depth")
    assert caught.value.violations[0].field == "optimization.copro.depth"
    with pytest.raises(InvalidArgument):
        Range(0, 10).check(float("nan"), "x")
    Range(0, 10).check(None, "x")  # unset: nothing to check


def test_admission_refuses_over_the_cap_with_the_cap_in_metadata() -> None:
    Limits(max_job_lm_calls=10).admit(10, "evaluation.dataset")
    with pytest.raises(ResourceExhausted) as caught:
        Limits(max_job_lm_calls=10).admit(11, "evaluation.dataset")
    assert caught.value.reason == "JOB_TOO_LARGE"
    assert caught.value.metadata == {"field": "evaluation.dataset", "planned_lm_calls": "11", "max_job_lm_calls": "10"}

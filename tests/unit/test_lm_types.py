"""Plain data of the LM layer: options merging, usage sums, config validation, error helpers."""

from __future__ import annotations

from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest

from dspy_grpc_server.core.errors import InvalidArgument, Unavailable
from dspy_grpc_server.lm import DeploymentConfig, LMOptions, LMRequest, ModelConfig, RetryPolicy, Usage
from dspy_grpc_server.lm.providers.openai import request_body, usage_from
from dspy_grpc_server.lm.provider_errors import error_for_status, parse_retry_after, scrub


def test_usage_adds_up() -> None:
    assert Usage(1, 2, 3) + Usage(10, 20, 30) == Usage(11, 22, 33)
    assert (Usage(1, 2, 3) + Usage(1, 1, 2, estimated=True)).estimated


def test_request_options_override_defaults_only_where_set() -> None:
    defaults = LMOptions(temperature=0.7, max_tokens=100, stop=("END",), n=3)
    merged = LMOptions(temperature=0.0, seed=5).merged_over(defaults)
    assert merged == LMOptions(temperature=0.0, max_tokens=100, stop=("END",), seed=5, n=3)


def test_request_body_includes_only_set_options() -> None:
    request = LMRequest(({"role": "user", "content": "hi"},))
    assert request_body("m", request) == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    options = LMOptions(temperature=0.0, stop=("x",), n=2, response_format={"type": "json_object"},
                        rollout_id=3, cache="bypass")
    body = request_body("m", request.with_options(**options.__dict__))
    assert body["temperature"] == 0.0 and body["stop"] == ["x"] and body["n"] == 2
    assert body["response_format"] == {"type": "json_object"}
    assert "rollout_id" not in body and "cache" not in body  # never sent to the provider


def test_usage_from_tolerates_missing_numbers() -> None:
    assert usage_from({"prompt_tokens": 3, "completion_tokens": 4}) == Usage(3, 4, 7)
    assert usage_from(None) is None


def test_last_user_text() -> None:
    request = LMRequest(
        (
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        )
    )
    assert request.last_user_text() == "a\nb"
    assert request.with_options(n=2).options.n == 2


@pytest.mark.parametrize(
    ("model", "deployment", "field"),
    [
        ({"alias": ""}, {}, "models[0].alias"),
        ({"routing": "random"}, {}, "models[0].routing"),
        ({"fallbacks": ("a",)}, {}, "models[0].fallbacks"),
        ({}, {"provider": "azure"}, "models[0].deployments[0].provider"),
        ({}, {"base_url": "ftp://x"}, "models[0].deployments[0].base_url"),
        ({}, {"timeout_s": 0}, "models[0].deployments[0].timeout_s"),
        ({}, {"max_retries": -1}, "models[0].deployments[0].max_retries"),
        ({}, {"rpm": -5}, "models[0].deployments[0].rpm"),
        ({}, {"weight": 0}, "models[0].deployments[0].weight"),
        ({}, {"input_price_per_1m": -1.0}, "models[0].deployments[0].input_price_per_1m"),
    ],
)
def test_model_config_validation_names_the_field(model: dict, deployment: dict, field: str) -> None:
    config = ModelConfig(**{"alias": "a", **model,
                            "deployments": (DeploymentConfig(**{"provider": "openai", "model": "m", **deployment}),)})
    with pytest.raises(InvalidArgument) as caught:
        config.validate("models[0]")
    assert caught.value.violations[0].field == field


def test_deployments_are_named_after_the_alias_unless_named() -> None:
    config = ModelConfig("gpt", (DeploymentConfig("openai", "a"), DeploymentConfig("openai", "b", name="backup")))
    assert [d.name for d in config.deployments] == ["gpt/0", "backup"]
    assert config.deployments[0].cost_usd(1_000_000, 0) == 0.0
    priced = DeploymentConfig("openai", "m", input_price_per_1m=2.0, output_price_per_1m=8.0)
    assert priced.cost_usd(500_000, 250_000) == pytest.approx(3.0)


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 31


def test_scrub_masks_the_secret_and_truncates() -> None:
    assert scrub("bad key sk-123", "sk-123") == "bad key ***"
    assert len(scrub("x" * 2000, None)) == 501


def test_error_for_status_reads_openai_error_bodies() -> None:
    error = error_for_status(
        502, b'{"error": {"message": "upstream down"}}', {}, metadata={"model": "m"}, secret=None
    )
    assert isinstance(error, Unavailable)
    assert "upstream down" in error.message and error.metadata["status"] == "502"


def test_retry_policy_prefers_retry_after_and_caps_backoff() -> None:
    policy = RetryPolicy(max_retries=2, base_delay_s=0.2, max_delay_s=1.0)
    assert policy.delay_before_retry(1, Unavailable("x", retry_after=4.0)) == 4.0
    for retry in range(1, 8):
        delay = policy.delay_before_retry(retry, Unavailable("x"))
        cap = min(1.0, 0.2 * 2 ** (retry - 1))
        assert cap / 2 <= delay <= cap

"""The [jobs] runner keys: where `serve` runs jobs, what "auto" chooses, and the bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from dspy_grpc_server.app.config import load_config
from dspy_grpc_server.core.errors import InvalidArgument

MODEL = '[[models]]\nalias = "m"\nprovider = "openai"\nmodel = "x"\nbase_url = "http://127.0.0.1:9/v1"\n'


def load(tmp_path: Path, text: str, database: str = "sqlite+aiosqlite:///{dir}/db.sqlite"):
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{database.format(dir=tmp_path)}"\n\n' + text)
    return load_config(path, environ={})


def test_auto_runs_jobs_in_their_own_process_on_a_database_file(tmp_path: Path) -> None:
    config = load(tmp_path, MODEL)
    assert config.job_runner == "auto" and config.job_runner_nice == 10
    assert config.jobs_in_own_process


@pytest.mark.parametrize("limit", ["rpm = 60", "tpm = 1000", "max_in_flight = 4"])
def test_auto_keeps_jobs_in_the_serving_process_when_unshared_deployment_limits_would_double(
        tmp_path: Path, limit: str) -> None:
    assert not load(tmp_path, MODEL + limit + "\n").jobs_in_own_process
    shared = load(tmp_path, '[cache]\nredis_url = "redis://127.0.0.1:6379/0"\n\n' + MODEL + limit + "\n")
    assert shared.jobs_in_own_process  # Redis shares the limits between the processes
    assert load(tmp_path, '[jobs]\nrunner = "process"\n\n' + MODEL + limit + "\n").jobs_in_own_process


def test_auto_and_in_process_keep_jobs_in_the_serving_process(tmp_path: Path) -> None:
    assert not load(tmp_path, MODEL, database="sqlite+aiosqlite://").jobs_in_own_process
    assert not load(tmp_path, '[jobs]\nrunner = "in_process"\n\n' + MODEL).jobs_in_own_process


@pytest.mark.parametrize(("text", "database", "field"), [
    ('[jobs]\nrunner = "thread"\n', "sqlite+aiosqlite:///{dir}/db.sqlite", "jobs.runner"),
    ('[jobs]\nrunner = "process"\n', "sqlite+aiosqlite:///:memory:", "jobs.runner"),
    ("[jobs]\nrunner_nice = 20\n", "sqlite+aiosqlite:///{dir}/db.sqlite", "jobs.runner_nice"),
    ("[jobs]\nrunner_nice = -1\n", "sqlite+aiosqlite:///{dir}/db.sqlite", "jobs.runner_nice"),
])
def test_bad_runner_settings_name_the_key(tmp_path: Path, text: str, database: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load(tmp_path, text, database)
    assert caught.value.violations[0].field == field

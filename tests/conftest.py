"""Shared fixtures: a real dspy-grpc server on a free loopback port, the mock LM server, and private
PostgreSQL and Redis servers (tests/services.py).

``server_factory`` starts servers in-process (grpc.aio on 127.0.0.1, port 0) with a fresh SQLite
file each; ``server`` is one such server per test module, configured with a "mock" model that
points at the session's mock OpenAI-compatible LM server.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import grpc
import pytest
import pytest_asyncio

from dspy_grpc_server.api.server import RunningServer, start_server
from dspy_grpc_server.app.config import BUILTIN_DUMMY, Config
from dspy_grpc_server.lm.config import DeploymentConfig, ModelConfig
from tests.mocklm.fixtures import mock_lm, mock_lm_server  # noqa: F401  (fixtures)
from tests.services import PostgresCluster, RedisServer, postgres_bin_dir, require_binary

MOCK_KEY_ENV = "DSPY_GRPC_TEST_MOCK_KEY"
MOCK_KEY = "sk-test-planted-key-0123456789"

ServerFactory = Callable[..., Awaitable[RunningServer]]


def mock_model_config(base_url: str, alias: str = "mock", **settings) -> ModelConfig:
    """A model with one OpenAI-compatible deployment at ``base_url`` (the mock LM server).

    ``settings`` go to the deployment when they are deployment fields, else to the model."""

    deployment_fields = {f.name for f in dataclasses.fields(DeploymentConfig)}
    deployment = {"provider": "openai", "model": "mock-model", "base_url": base_url, "api_key_env": MOCK_KEY_ENV,
                  "timeout_s": 10, "max_retries": 1}
    deployment.update({k: v for k, v in settings.items() if k in deployment_fields})
    model = {k: v for k, v in settings.items() if k not in deployment_fields}
    return ModelConfig.single(alias, DeploymentConfig(**deployment), **model)


@pytest_asyncio.fixture(loop_scope="session")
async def server_factory(tmp_path_factory, mock_lm_server, monkeypatch) -> AsyncIterator[ServerFactory]:
    """Start servers with ``Config`` overrides; all are stopped at the end of the test."""

    monkeypatch.setenv(MOCK_KEY_ENV, MOCK_KEY)
    started: list[RunningServer] = []

    async def start(**overrides) -> RunningServer:
        db = tmp_path_factory.mktemp("db") / "dspy-grpc.db"
        mock_model = mock_model_config(mock_lm_server.base_url)
        config = Config(
            host="127.0.0.1", port=0, database_url=f"sqlite+aiosqlite:///{db}",
            models=(mock_model, BUILTIN_DUMMY), grace_period_s=1.0,
        )
        config = dataclasses.replace(config, **overrides)
        config.validate()
        running = await start_server(config)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop(grace=0)


@pytest_asyncio.fixture(loop_scope="session")
async def server(server_factory) -> RunningServer:
    return await server_factory()


@pytest_asyncio.fixture(loop_scope="session")
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        yield chan


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One private PostgreSQL cluster for the whole run (started on first use)."""

    cluster = PostgresCluster(require_binary(postgres_bin_dir(), "PostgreSQL (initdb)")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of a new, empty PostgreSQL database for this test."""

    return postgres_cluster.create_database()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The URL of a new, empty redis-server for this test."""

    server = RedisServer(require_binary(shutil.which("redis-server"), "redis-server")).start()
    try:
        yield server.url
    finally:
        server.stop()

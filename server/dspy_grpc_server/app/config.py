"""The server's one configuration object, read once at start.

Sources, later ones winning: built-in defaults, an optional TOML file, ``DSPY_GRPC_*`` environment
variables, then command-line flags (applied by the CLI through :meth:`Config.with_overrides`).

TOML layout (every table and key optional)::

    [server]
    host = "127.0.0.1"
    port = 50051
    max_message_bytes = 16777216
    grace_period_s = 10.0
    keepalive_time_s = 60.0
    keepalive_timeout_s = 20.0
    log_level = "INFO"

    [database]
    url = "sqlite+aiosqlite:///./data/dspy-grpc.db"

    [lm]
    default_model = "local"

    [[models]]
    alias = "local"
    provider = "openai"          # any OpenAI-compatible endpoint; or "dummy"
    model = "llama3.1"
    base_url = "http://127.0.0.1:11434/v1"
    api_key_env = "LOCAL_API_KEY" # the NAME of the variable holding the key, never the key
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..core.errors import InvalidArgument, invalid
from ..lm.config import ModelConfig

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/dspy-grpc.db"

#: Always available (unless the config defines its own "dummy"): answers every prompt with
#: deterministic placeholder values, for trying the server out and for users' own tests.
BUILTIN_DUMMY = ModelConfig(alias="dummy", provider="dummy", model="dummy")

#: Environment variable -> (config attribute, parser).
ENVIRONMENT: dict[str, tuple[str, type]] = {
    "DSPY_GRPC_HOST": ("host", str),
    "DSPY_GRPC_PORT": ("port", int),
    "DSPY_GRPC_DATABASE_URL": ("database_url", str),
    "DSPY_GRPC_DEFAULT_MODEL": ("default_model", str),
    "DSPY_GRPC_MAX_MESSAGE_BYTES": ("max_message_bytes", int),
    "DSPY_GRPC_GRACE_PERIOD_S": ("grace_period_s", float),
    "DSPY_GRPC_LOG_LEVEL": ("log_level", str),
}
#: Environment variable naming the TOML file.
CONFIG_FILE_ENV = "DSPY_GRPC_CONFIG"

_TOML_TABLES: dict[str, dict[str, str]] = {
    "server": {
        "host": "host",
        "port": "port",
        "max_message_bytes": "max_message_bytes",
        "grace_period_s": "grace_period_s",
        "keepalive_time_s": "keepalive_time_s",
        "keepalive_timeout_s": "keepalive_timeout_s",
        "log_level": "log_level",
    },
    "database": {"url": "database_url"},
    "lm": {"default_model": "default_model"},
}


@dataclass(frozen=True)
class Config:
    """Everything the server reads at start. Immutable; build it with :func:`load_config`."""

    host: str = "127.0.0.1"
    port: int = 50051
    database_url: str = DEFAULT_DATABASE_URL
    #: Largest request or response message accepted, in bytes.
    max_message_bytes: int = 16 * 1024 * 1024
    #: How long in-flight calls may run after SIGTERM/SIGINT before they are cancelled.
    grace_period_s: float = 10.0
    keepalive_time_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    log_level: str = "INFO"
    #: Model alias used when a request names no LM.
    default_model: str = ""
    models: tuple[ModelConfig, ...] = (BUILTIN_DUMMY,)

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with the given non-None attributes replaced (command-line flags), validated."""

        changes = {key: value for key, value in overrides.items() if value is not None}
        config = replace(self, **changes)
        config.validate()
        return config

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise invalid("port", f"must be between 0 and 65535, got {self.port}")
        if self.max_message_bytes < 1024:
            raise invalid("max_message_bytes", "must be at least 1024")
        if self.grace_period_s < 0:
            raise invalid("grace_period_s", "must not be negative")
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise invalid(
                "database_url", "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        aliases = [model.alias for model in self.models]
        for index, model in enumerate(self.models):
            model.validate(f"models[{index}]")
            if aliases.count(model.alias) > 1:
                raise invalid(f"models[{index}].alias", f"duplicate alias {model.alias!r}")
        if self.default_model and self.default_model not in aliases:
            raise invalid("default_model", f"{self.default_model!r} is not a configured model alias")


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Build the config from an optional TOML file (``path``, else ``$DSPY_GRPC_CONFIG``) and env."""

    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_FILE_ENV) or None
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_toml(Path(path)))
    known = {f.name: f.type for f in fields(Config)}
    for variable, (attribute, parse) in ENVIRONMENT.items():
        if variable in environ:
            try:
                values[attribute] = parse(environ[variable])
            except ValueError:
                raise invalid(variable, f"expected {parse.__name__}, got {environ[variable]!r}")
    assert set(values) <= set(known)
    config = Config(**values)
    config.validate()
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise invalid("config", f"config file {path} does not exist")
    except tomllib.TOMLDecodeError as error:
        raise invalid("config", f"{path} is not valid TOML: {error}")
    values: dict[str, Any] = {}
    for table, keys in document.items():
        if table == "models":
            models = tuple(_model(entry, index) for index, entry in enumerate(keys))
            if all(model.alias != BUILTIN_DUMMY.alias for model in models):
                models += (BUILTIN_DUMMY,)
            values["models"] = models
            continue
        mapping = _TOML_TABLES.get(table)
        if mapping is None or not isinstance(keys, dict):
            raise invalid(table, f"unknown config table [{table}] in {path}")
        for key, value in keys.items():
            if key not in mapping:
                raise invalid(f"{table}.{key}", f"unknown key in {path}")
            values[mapping[key]] = value
    return values


def _model(entry: Any, index: int) -> ModelConfig:
    if not isinstance(entry, dict):
        raise invalid(f"models[{index}]", "must be a table ([[models]])")
    known = {f.name for f in fields(ModelConfig)}
    for key in entry:
        if key not in known:
            raise invalid(f"models[{index}].{key}", "unknown key")
    if "stop" in entry:
        entry = {**entry, "stop": tuple(entry["stop"])}
    try:
        return ModelConfig(**entry)
    except TypeError as error:
        raise InvalidArgument(f"models[{index}]: {error}") from None

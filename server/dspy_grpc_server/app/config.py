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
    workers = 1                  # server processes sharing the port (PostgreSQL only when > 1)

    [database]
    url = "sqlite+aiosqlite:///./data/dspy-grpc.db"

    [programs]
    quarantine_failures = 3      # failures of one input within the window before it is quarantined
    quarantine_window_s = 600.0
    active_revision_refresh_s = 1.0  # polling bound: cached program state is re-read at least this often
    notifications = "auto"       # change feed: auto | postgresql | redis | off (see README "Shared state")

    [jobs]                       # leased jobs (see README "Running in production")
    lease_s = 10.0               # a dead replica's job is taken over this long after its last heartbeat
    heartbeat_s = 1.0            # how often the owner renews the lease and re-checks the job (cancel)
    scan_interval_s = 1.0        # how often every replica looks for jobs without a live lease
    watch_poll_s = 1.0           # Watch re-reads the job at least this often (LISTEN/NOTIFY is faster)
    max_owner_deaths = 2         # a job whose owner died this many times in a row running it is quarantined
    threads_while_live = 1       # a job's program runs at once while live calls are in flight (1 to 256)
    live_quiet_s = 0.2           # ... and for this long after the last one ended (0 to 10)
    runner = "auto"              # where `serve` runs jobs: auto | process (a job-runner child) | in_process
    runner_nice = 10             # the job-runner process's CPU niceness (0 to 19): live calls get the CPU first

    [lm]
    default_model = "local"

    [[models]]
    alias = "local"
    provider = "openai"          # a model with one deployment: its keys right here
    model = "llama3.1"            # ("openai" = any OpenAI-compatible endpoint, "anthropic", "dummy")
    base_url = "http://127.0.0.1:11434/v1"
    api_key_env = "LOCAL_API_KEY" # the NAME of the variable holding the key, never the key

    [[models]]
    alias = "gpt"                # several deployments: [[models.deployments]] tables (see README)
    routing = "least-busy"       # or "weighted"
    fallbacks = ["local"]
    [[models.deployments]]
    provider = "openai"
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"
    rpm = 500
    input_price_per_1m = 0.15
    output_price_per_1m = 0.60

    [cache]                      # LM response cache: memory unless redis_url is set
    enabled = true
    max_entries = 10000
    ttl_s = 86400.0
    redis_url = "redis://127.0.0.1:6379/0"

    [[budgets]]                  # refuse LM calls once spent (USD per day | month | total)
    program = "qa"               # or api_key = "<key id>"
    limit_usd = 5.0
    period = "day"

    [server]                     # TLS for the gRPC port (PEM files); a client CA turns on mTLS
    tls_cert_file = "server.crt"
    tls_key_file = "server.key"
    tls_client_ca_file = "clients-ca.crt"

    [telemetry]
    service_name = "dspy-grpc"
    otlp_endpoint = "http://127.0.0.1:4317"   # OTLP/gRPC traces + metrics; nothing is exported when unset
    metrics_export_interval_s = 60.0
    capture_content = false                   # record prompts and completions in spans
    prometheus_enabled = false                # GET /metrics on prometheus_host:prometheus_port
    prometheus_host = "127.0.0.1"
    prometheus_port = 9464

    [auth]
    enabled = false                           # require "authorization: Bearer <API key>"
    open_health = true                        # health checks need no key
    open_reflection = true                    # reflection needs no key
    cache_ttl_s = 5.0                         # how long a verified key is trusted before re-checking

    [dashboard]
    enabled = false
    host = "127.0.0.1"
    port = 8080
    refresh_s = 1.0

    [limits]                     # server-wide bounds on what callers set (defaults shown; see README)
    max_candidates = 64          # MIPROv2 num_candidates, random search num_candidate_programs, COPRO breadth
    max_trials = 500             # MIPROv2 num_trials and minibatch_full_eval_steps
    max_depth = 20               # COPRO depth
    max_demos = 100              # k, max_bootstrapped_demos, max_labeled_demos
    max_rounds = 20              # max_rounds
    max_num_threads = 256        # a job's num_threads
    max_dataset_examples = 100000  # examples one dataset may hold
    max_job_lm_calls = 200000    # admission: a job planning more LM calls is refused (RESOURCE_EXHAUSTED)
    [retrieval]
    colbertv2_urls = ["http://127.0.0.1:8893/api/search"]  # ColBERTv2 servers retrieve modules may call
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..core.bounds import Limits
from ..core.errors import InvalidArgument, invalid
from ..store.changes import NOTIFICATION_MODES
from ..lm.config import BudgetConfig, CacheConfig, DeploymentConfig, ModelConfig, validate_models

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/dspy-grpc.db"
#: Upper bound of programs.active_revision_refresh_s (the staleness bound when notifications fail).
MAX_REFRESH_S = 3600.0

#: Always available (unless the config defines its own "dummy"): answers every prompt with
#: deterministic placeholder values, for trying the server out and for users' own tests.
BUILTIN_DUMMY = ModelConfig.single("dummy", DeploymentConfig(provider="dummy", model="dummy"))


#: Where ``serve`` runs jobs (``jobs.runner``).
JOB_RUNNERS = ("auto", "process", "in_process")


def _is_private_database(url: str) -> bool:
    """An in-memory SQLite database: only the connection that made it can see it."""

    return url.startswith("sqlite") and ("///" not in url or url.split("///", 1)[1] in ("", ":memory:"))


def boolean(text: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case)."""

    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


#: Environment variable -> (config attribute, parser).
ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "DSPY_GRPC_HOST": ("host", str),
    "DSPY_GRPC_PORT": ("port", int),
    "DSPY_GRPC_DATABASE_URL": ("database_url", str),
    "DSPY_GRPC_DEFAULT_MODEL": ("default_model", str),
    "DSPY_GRPC_MAX_MESSAGE_BYTES": ("max_message_bytes", int),
    "DSPY_GRPC_GRACE_PERIOD_S": ("grace_period_s", float),
    "DSPY_GRPC_LOG_LEVEL": ("log_level", str),
    "DSPY_GRPC_CACHE_REDIS_URL": ("cache_redis_url", str),
    "DSPY_GRPC_TLS_CERT_FILE": ("tls_cert_file", str),
    "DSPY_GRPC_TLS_KEY_FILE": ("tls_key_file", str),
    "DSPY_GRPC_TLS_CLIENT_CA_FILE": ("tls_client_ca_file", str),
    "DSPY_GRPC_OTLP_ENDPOINT": ("otlp_endpoint", str),
    "DSPY_GRPC_PROMETHEUS_ENABLED": ("prometheus_enabled", boolean),
    "DSPY_GRPC_PROMETHEUS_PORT": ("prometheus_port", int),
    "DSPY_GRPC_AUTH_ENABLED": ("auth_enabled", boolean),
    "DSPY_GRPC_DASHBOARD_ENABLED": ("dashboard_enabled", boolean),
    "DSPY_GRPC_DASHBOARD_HOST": ("dashboard_host", str),
    "DSPY_GRPC_DASHBOARD_PORT": ("dashboard_port", int),
    "DSPY_GRPC_JOB_LEASE_S": ("job_lease_s", float),
    "DSPY_GRPC_JOB_RUNNER": ("job_runner", str),
    "DSPY_GRPC_WORKERS": ("workers", int),
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
        "tls_cert_file": "tls_cert_file",
        "tls_key_file": "tls_key_file",
        "tls_client_ca_file": "tls_client_ca_file",
        "workers": "workers",
    },
    "telemetry": {
        "service_name": "telemetry_service_name",
        "otlp_endpoint": "otlp_endpoint",
        "metrics_export_interval_s": "metrics_export_interval_s",
        "capture_content": "telemetry_capture_content",
        "prometheus_enabled": "prometheus_enabled",
        "prometheus_host": "prometheus_host",
        "prometheus_port": "prometheus_port",
    },
    "auth": {
        "enabled": "auth_enabled",
        "open_health": "auth_open_health",
        "open_reflection": "auth_open_reflection",
        "cache_ttl_s": "auth_cache_ttl_s",
    },
    "dashboard": {
        "enabled": "dashboard_enabled",
        "host": "dashboard_host",
        "port": "dashboard_port",
        "refresh_s": "dashboard_refresh_s",
    },
    "database": {"url": "database_url"},
    "programs": {
        "quarantine_failures": "quarantine_failures",
        "quarantine_window_s": "quarantine_window_s",
        "active_revision_refresh_s": "active_revision_refresh_s",
        "notifications": "program_notifications",
    },
    "lm": {"default_model": "default_model", "usage_flush_interval_s": "usage_flush_interval_s"},
    "retrieval": {"colbertv2_urls": "retrieval_colbertv2_urls"},
    "jobs": {
        "lease_s": "job_lease_s",
        "heartbeat_s": "job_heartbeat_s",
        "scan_interval_s": "job_scan_interval_s",
        "watch_poll_s": "job_watch_poll_s",
        "max_owner_deaths": "job_max_owner_deaths",
        "threads_while_live": "job_threads_while_live",
        "live_quiet_s": "job_live_quiet_s",
        "runner": "job_runner",
        "runner_nice": "job_runner_nice",
    },
    "cache": {
        "enabled": "cache_enabled",
        "max_entries": "cache_max_entries",
        "ttl_s": "cache_ttl_s",
        "redis_url": "cache_redis_url",
    },
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
    # [cache]: the LM response cache (memory unless a Redis URL is set).
    cache_enabled: bool = True
    cache_max_entries: int = 10_000
    cache_ttl_s: float = 24 * 3600.0
    cache_redis_url: str = ""
    #: [[budgets]]: spending limits per program or API key.
    budgets: tuple[BudgetConfig, ...] = ()
    #: How often LM usage is written to the usage ledger.
    usage_flush_interval_s: float = 1.0
    #: TLS for the gRPC port: PEM certificate chain and private key; a client CA requires client certs (mTLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # [telemetry]: nothing is exported unless an OTLP endpoint or the Prometheus endpoint is configured.
    telemetry_service_name: str = "dspy-grpc"
    otlp_endpoint: str = ""
    metrics_export_interval_s: float = 60.0
    #: Record prompts, completions and exception messages in spans (off: only sizes, models, reasons).
    telemetry_capture_content: bool = False
    prometheus_enabled: bool = False
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    # [auth]: API keys in "authorization: Bearer <key>" metadata; off for the embedded quick start.
    auth_enabled: bool = False
    auth_open_health: bool = True
    auth_open_reflection: bool = True
    auth_cache_ttl_s: float = 5.0
    # [dashboard]: the live web dashboard on its own port.
    dashboard_enabled: bool = False
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8080
    dashboard_refresh_s: float = 1.0
    # [programs]: an input failing a program (crash, timeout, parse error) this many times within the
    # window is quarantined (0 turns quarantine off); how long a server trusts its cached active revision.
    quarantine_failures: int = 3
    quarantine_window_s: float = 600.0
    active_revision_refresh_s: float = 1.0
    # [jobs]: leases of evaluation/optimization jobs across replicas (bounds checked in validate()).
    job_lease_s: float = 10.0
    job_heartbeat_s: float = 1.0
    job_scan_interval_s: float = 1.0
    job_watch_poll_s: float = 1.0
    job_max_owner_deaths: int = 2
    # [jobs]: live calls go first -- while live calls are in flight (and live_quiet_s after), a job runs
    # at most this many programs at once (see optimize.live_traffic).
    job_threads_while_live: int = 1
    job_live_quiet_s: float = 0.2
    #: [jobs] runner: where ``dspy-grpc serve`` runs jobs -- "process" (a job-runner child process
    #: claims and runs them; the serving processes only create, watch and cancel them), "in_process"
    #: (in the serving process), or "auto" (see :attr:`jobs_in_own_process`).
    job_runner: str = "auto"
    #: [jobs] runner_nice: the job-runner process's niceness (0-19), so the kernel runs live calls first.
    job_runner_nice: int = 10
    #: [server] workers: server processes sharing the port on this host (needs PostgreSQL when > 1).
    workers: int = 1
    #: How replicas hear of each other's changes: "auto" (PostgreSQL LISTEN/NOTIFY on a PostgreSQL
    #: database, else Redis pub/sub when cache.redis_url is set, else none), "postgresql", "redis", "off".
    program_notifications: str = "auto"
    #: [limits]: the server-wide bounds on numbers callers set (optimizer budgets, threads, job size).
    limits: Limits = Limits()
    # [retrieval]: the ColBERTv2 servers (exact URLs) that `retrieve` modules may call; none by default.
    retrieval_colbertv2_urls: tuple[str, ...] = ()

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
        validate_models(self.models)
        self.cache.validate()
        for index, budget in enumerate(self.budgets):
            budget.validate(f"budgets[{index}]")
        if self.usage_flush_interval_s <= 0:
            raise invalid("lm.usage_flush_interval_s", "must be positive")
        if self.default_model and self.default_model not in aliases:
            raise invalid("default_model", f"{self.default_model!r} is not a configured model alias")
        self._validate_operations()
        if self.quarantine_failures < 0:
            raise invalid("programs.quarantine_failures", "must not be negative")
        urls = self.retrieval_colbertv2_urls
        if isinstance(urls, str) or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
            raise invalid("retrieval.colbertv2_urls", "must be a list of http(s) URLs")
        if self.quarantine_window_s <= 0:
            raise invalid("programs.quarantine_window_s", "must be positive")
        if not 0 <= self.active_revision_refresh_s <= MAX_REFRESH_S:
            raise invalid("programs.active_revision_refresh_s", f"must be between 0 and {MAX_REFRESH_S:g}")
        if self.program_notifications not in NOTIFICATION_MODES:
            raise invalid("programs.notifications", f"must be one of {', '.join(NOTIFICATION_MODES)}")
        if self.program_notifications == "postgresql" and not self.database_url.startswith("postgresql"):
            raise invalid("programs.notifications", "\"postgresql\" needs a PostgreSQL database.url")
        if self.program_notifications == "redis" and not self.cache_redis_url:
            raise invalid("programs.notifications", "\"redis\" needs cache.redis_url")
        self.limits.validate()
        self._validate_jobs()

    def _validate_jobs(self) -> None:
        for key, low, high in (("heartbeat_s", 0.05, 60.0), ("scan_interval_s", 0.05, 60.0),
                               ("watch_poll_s", 0.05, 60.0), ("lease_s", 0.5, 3600.0)):
            value = getattr(self, f"job_{key}")
            if not low <= value <= high:
                raise invalid(f"jobs.{key}", f"must be between {low} and {high} seconds, got {value}")
        if self.job_lease_s < 2 * self.job_heartbeat_s:
            raise invalid("jobs.lease_s", "must be at least twice jobs.heartbeat_s (a lease must survive a late beat)")
        if not 0 <= self.job_max_owner_deaths <= 100:
            raise invalid("jobs.max_owner_deaths", "must be between 0 (never quarantine) and 100")
        if not 1 <= self.job_threads_while_live <= 256:
            raise invalid("jobs.threads_while_live", f"must be between 1 and 256, got {self.job_threads_while_live}")
        if not 0.0 <= self.job_live_quiet_s <= 10.0:
            raise invalid("jobs.live_quiet_s", f"must be between 0 and 10 seconds, got {self.job_live_quiet_s}")
        if self.job_runner not in JOB_RUNNERS:
            raise invalid("jobs.runner", f"must be one of {', '.join(JOB_RUNNERS)}, got {self.job_runner!r}")
        if self.job_runner == "process" and _is_private_database(self.database_url):
            raise invalid("jobs.runner", "\"process\" needs a database file or server that two processes can "
                          "open, not a private in-memory SQLite database")
        if not 0 <= self.job_runner_nice <= 19:
            raise invalid("jobs.runner_nice", f"must be between 0 and 19, got {self.job_runner_nice}")
        if not 1 <= self.workers <= 256:
            raise invalid("server.workers", f"must be between 1 and 256, got {self.workers}")
        if self.workers > 1 and not self.database_url.startswith("postgresql"):
            raise invalid("server.workers", "more than one server process needs the shared PostgreSQL database "
                          "(database.url = postgresql+asyncpg://...): SQLite is one process's embedded store")

    @property
    def jobs_in_own_process(self) -> bool:
        """Whether ``serve`` runs jobs in a job-runner child process. "auto" does, except on a private
        in-memory database, or when a model deployment has rpm/tpm/max_in_flight limits and no Redis
        shares them (each process would enforce the whole limit on its own: up to twice the rate)."""

        if self.job_runner != "auto":
            return self.job_runner == "process"
        local_limits = not self.cache_redis_url and any(
            d.rpm or d.tpm or d.max_in_flight for model in self.models for d in model.deployments
        )
        return not local_limits and not _is_private_database(self.database_url)

    @property
    def cache(self) -> CacheConfig:
        """The ``[cache]`` settings as the provider layer takes them."""

        return CacheConfig(enabled=self.cache_enabled, max_entries=self.cache_max_entries,
                           ttl_s=self.cache_ttl_s, redis_url=self.cache_redis_url)

    def _validate_operations(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise invalid("server.tls_cert_file", "set both tls_cert_file and tls_key_file, or neither")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise invalid("server.tls_client_ca_file", "mTLS needs tls_cert_file and tls_key_file too")
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise invalid(f"server.{name}", f"file {path} does not exist")
        for name in ("prometheus_port", "dashboard_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise invalid(name, f"must be between 0 and 65535, got {getattr(self, name)}")
        if self.otlp_endpoint and not self.otlp_endpoint.startswith(("http://", "https://")):
            raise invalid("telemetry.otlp_endpoint", "must start with http:// or https://")
        for name in ("metrics_export_interval_s", "dashboard_refresh_s"):
            if getattr(self, name) <= 0:
                raise invalid(name, "must be positive")
        if self.auth_cache_ttl_s < 0:
            raise invalid("auth.cache_ttl_s", "must not be negative")


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
        if table == "budgets":
            values["budgets"] = tuple(_budget(entry, index) for index, entry in enumerate(keys))
            continue
        if table == "limits":
            values["limits"] = _limits(keys, path)
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
    """A ``[[models]]`` table: model keys plus either ``[[models.deployments]]`` tables or, for a
    model with one deployment, that deployment's keys in the model table itself."""

    where = f"models[{index}]"
    if not isinstance(entry, dict):
        raise invalid(where, "must be a table ([[models]])")
    model_keys = {f.name for f in fields(ModelConfig)}
    deployment_keys = {f.name for f in fields(DeploymentConfig)} - {"name"}
    model_part = {k: v for k, v in entry.items() if k in model_keys}
    inline = {k: v for k, v in entry.items() if k in deployment_keys}
    for key in entry:
        if key not in model_keys and key not in deployment_keys:
            raise invalid(f"{where}.{key}", "unknown key")
    if "deployments" in entry:
        if inline:
            raise invalid(f"{where}.{next(iter(inline))}",
                          "belongs in a [[models.deployments]] table when the model lists deployments")
        raw = entry["deployments"]
        if not isinstance(raw, list):
            raise invalid(f"{where}.deployments", "must be an array of tables ([[models.deployments]])")
        deployments = tuple(_deployment(d, f"{where}.deployments[{i}]") for i, d in enumerate(raw))
    else:
        deployments = (_deployment(inline, where),) if inline else ()
    for key in ("stop", "fallbacks"):
        if key in model_part:
            model_part[key] = tuple(model_part[key])
    model_part["deployments"] = deployments
    try:
        return ModelConfig(**model_part)
    except TypeError as error:
        raise InvalidArgument(f"{where}: {error}") from None


def _deployment(entry: Any, where: str) -> DeploymentConfig:
    if not isinstance(entry, dict):
        raise invalid(where, "must be a table")
    known = {f.name for f in fields(DeploymentConfig)}
    for key in entry:
        if key not in known:
            raise invalid(f"{where}.{key}", "unknown key")
    if "provider" not in entry:
        raise invalid(f"{where}.provider", "is required (openai, anthropic or dummy)")
    try:
        return DeploymentConfig(**entry)
    except TypeError as error:
        raise InvalidArgument(f"{where}: {error}") from None


def _budget(entry: Any, index: int) -> BudgetConfig:
    where = f"budgets[{index}]"
    if not isinstance(entry, dict):
        raise invalid(where, "must be a table ([[budgets]])")
    known = {f.name for f in fields(BudgetConfig)}
    for key in entry:
        if key not in known:
            raise invalid(f"{where}.{key}", "unknown key")
    if "limit_usd" not in entry:
        raise invalid(f"{where}.limit_usd", "is required")
    return BudgetConfig(**entry)


def _limits(entry: Any, path: Path) -> Limits:
    if not isinstance(entry, dict):
        raise invalid("limits", "must be a table ([limits])")
    known = {f.name for f in fields(Limits)}
    for key, value in entry.items():
        if key not in known:
            raise invalid(f"limits.{key}", f"unknown key in {path}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"limits.{key}", "must be an integer")
    return Limits(**entry)

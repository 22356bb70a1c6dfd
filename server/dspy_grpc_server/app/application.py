"""Wiring: builds the engine's services from one :class:`Config` and closes them again."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..core import telemetry
from ..lm.registry import LMRegistry
from ..modules.engine import Engine
from ..optimize.knn_few_shot import ServingBootstrapper
from ..optimize.live_traffic import LiveBoard, LiveTraffic
from ..lm.budgets import BudgetBook
from ..store.budgets import BudgetStore
from ..store.changes import open_change_feed
from ..store.corpora import CorpusStore
from ..store.database import Database
from ..store.datasets import DatasetStore
from ..store.jobs import JobStore
from ..store.programs import ProgramStore
from ..store.quarantine import QuarantineStore
from ..store.usage import UsageLedgerStore
from .usage_queries import UsageQueries
from .activity import Activity
from .auth import ApiKeys
from .budgets import Budgets, StoredBudgets
from .config import Config
from .corpora import Corpora
from .optimizations import check_embedding_model
from .retrievers import Retrievers
from .datasets import Datasets
from .evaluations import Evaluations
from .jobs import JobHost, LeaseSettings
from .optimizations import Optimizations
from .inference import Inference
from .programs import Programs
from .telemetry import TelemetrySetup
from .workers import ProgramWorkers, Quarantine

log = logging.getLogger("dspy_grpc_server.app")


async def _embed(registry: LMRegistry, model: str, texts: Sequence[str]) -> list[tuple[float, ...]]:
    """Vectors for ``texts`` through the provider layer (cache, limits, budgets, usage ledger)."""

    return list((await registry.get(model).embed(texts)).vectors)


@dataclass(frozen=True)
class ProcessRole:
    """What this process does among those ``serve`` forks (see :mod:`.processes`). The default --
    one process serving calls and running jobs -- is also what embedding :func:`start_server` gives."""

    #: Whether this process claims and runs jobs (False: a job-runner process does).
    run_jobs: bool = True
    #: Where the host's serving processes publish that they have live calls (job runner: reads it).
    live_board: LiveBoard | None = None
    #: This serving process's cell on the board (None: the job runner, which only reads).
    live_cell: int | None = None
    #: Where the processes of one ``serve`` tell each other of changes when neither PostgreSQL nor
    #: Redis carries them (see store.changes.HostChangeFeed); None: no such siblings.
    host_feed_directory: str | None = None


class Application:
    """Everything the API layer serves, usable in-process without gRPC."""

    def __init__(self, config: Config, database: Database, registry: LMRegistry, *,
                 role: ProcessRole = ProcessRole()) -> None:
        self.config = config
        self.database = database
        self.registry = registry
        # Changes to shared state reach every replica's caches through the change feed.
        self.changes = open_change_feed(config.program_notifications, database, config.cache_redis_url,
                                        role.host_feed_directory)
        # Corpora of documents, and what `retrieve` modules search (checked when programs are saved).
        self.corpora = Corpora(
            CorpusStore(database), embedder=lambda model, texts: _embed(registry, model, texts),
            check_model=lambda model, path: check_embedding_model(registry, model, path),
        )
        self.retrievers = Retrievers(self.corpora, config.retrieval_colbertv2_urls)
        self.programs = Programs(ProgramStore(database), self.changes, check=self.retrievers.check)
        self.engine = Engine(registry, default_model=config.default_model, bootstrapper=ServingBootstrapper(),
                             retrievers=self.retrievers)
        # Stored programs run through workers (loaded once, with metrics) guarded by input quarantine.
        self.quarantine_store = QuarantineStore(database)
        self.workers = ProgramWorkers(
            self.programs,
            Quarantine(self.quarantine_store, failures=config.quarantine_failures,
                       window_s=config.quarantine_window_s, changes=self.changes,
                       refresh_s=config.active_revision_refresh_s),
            refresh_s=config.active_revision_refresh_s,
        )
        # Live calls go first: jobs run fewer programs at once while live calls are in flight.
        self.live_traffic = LiveTraffic(threads_while_live=config.job_threads_while_live,
                                        quiet_s=config.job_live_quiet_s, board=role.live_board, cell=role.live_cell)
        self.inference = Inference(self.workers, self.engine, self.live_traffic)
        assert registry.budgets is not None
        self.budgets = Budgets(registry.budgets, BudgetStore(database), self.changes)
        # Datasets, and evaluation/optimization jobs (supervised, resumed by start_jobs()).
        self.datasets = Datasets(DatasetStore(database), config.limits)
        self.jobs = JobHost(JobStore(database), settings=LeaseSettings(
            lease_s=config.job_lease_s, heartbeat_s=config.job_heartbeat_s, scan_interval_s=config.job_scan_interval_s,
            watch_poll_s=config.job_watch_poll_s, max_owner_deaths=config.job_max_owner_deaths,
        ), single_process=database.dialect == "sqlite", changes=self.changes, runs_jobs=role.run_jobs)
        self.evaluations = Evaluations(self.jobs, self.programs, self.datasets, registry, config.default_model,
                                       config.limits, retrievers=self.retrievers, live=self.live_traffic)
        self.optimizations = Optimizations(self.jobs, self.programs, self.datasets, registry, config.default_model,
                                           config.limits, retrievers=self.retrievers, live=self.live_traffic)
        # Operations: telemetry (recorded into by every layer), live activity for the dashboard, API keys.
        self.telemetry_setup = TelemetrySetup(config)
        self.telemetry = self.telemetry_setup.telemetry
        self.telemetry.breaker_states = registry.breaker_states
        self.activity = Activity()
        self.telemetry.sinks.append(self.activity)
        telemetry.set_default(self.telemetry)
        self.api_keys = ApiKeys(database, cache_ttl_s=config.auth_cache_ttl_s)
        self.usage = UsageQueries(registry.usage, UsageLedgerStore(database))

    @classmethod
    async def start(cls, config: Config, role: ProcessRole = ProcessRole()) -> Application:
        """Open the database (running migrations) and the LM registry."""

        database = await Database.open(config.database_url)
        budgets = BudgetBook(config.budgets, StoredBudgets(BudgetStore(database)),
                             refresh_s=config.active_revision_refresh_s)
        registry = LMRegistry(
            config.models, cache=config.cache, budgets=budgets, ledger=UsageLedgerStore(database),
            usage_flush_interval_s=config.usage_flush_interval_s,
        )
        try:
            await registry.start()  # the supervised provider workers and the usage-ledger flusher
        except BaseException:
            await database.close()
            raise
        log.info("database ready; models: %s", ", ".join(registry.aliases()) or "(none configured)")
        app = cls(config, database, registry, role=role)
        await app.changes.start()
        log.info("change notifications: %s", app.changes.transport)
        return app

    async def start_jobs(self) -> None:
        """Start the job supervisor and resume jobs left unfinished by the last run."""

        await self.jobs.start()

    async def aclose(self) -> None:
        await self.jobs.stop()
        await self.changes.aclose()
        await self.retrievers.aclose()
        await self.registry.aclose()
        await self.database.close()
        if telemetry.is_default(self.telemetry):
            telemetry.set_default(None)
        await self.telemetry_setup.aclose()

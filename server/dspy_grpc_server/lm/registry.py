"""The models a server knows, by alias, and the supervised workers behind them.

:class:`LMRegistry` builds one :class:`~.worker.DeploymentWorker` per deployment, a
:class:`~.router.Router` and a :class:`~.gateway.GatewayLM` per alias, the response cache and the
usage recorder. :meth:`LMRegistry.start` runs the workers and the usage-ledger flusher under one
:class:`~dspy_grpc_server.core.supervisor.Supervisor`; :meth:`LMRegistry.aclose` stops them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from ..core.errors import FieldViolation, NotFound
from ..core.supervisor import ChildSpec, Supervisor, SupervisorEscalation
from .cache import ResponseCache
from .budgets import BudgetBook
from .shared_limits import SharedLimits
from .config import CacheConfig, ModelConfig, validate_models
from .gateway import GatewayLM
from .retry import RetryPolicy
from .router import Router
from .status import CacheStatus, DeploymentStatus, ModelStatus
from .usage import UsageLedger, UsageRecorder
from .worker import DeploymentWorker

log = logging.getLogger("dspy_grpc_server.lm")

#: Restart intensity of the workers' supervisor: more restarts than this within the period and
#: it gives up (every deployment then reports ``serving = false``).
MAX_RESTARTS = 20
RESTART_PERIOD_S = 60.0


class LMRegistry:
    """Maps the aliases of the app config's model table to LMs (:class:`GatewayLM`)."""

    def __init__(
        self,
        models: Iterable[ModelConfig],
        *,
        cache: CacheConfig | None = CacheConfig(),
        budgets: BudgetBook | None = None,
        ledger: UsageLedger | None = None,
        environ: Mapping[str, str] | None = None,
        usage_flush_interval_s: float = 1.0,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        configs = tuple(models)
        validate_models(configs)
        self._configs = {config.alias: config for config in configs}
        self.cache = ResponseCache(cache) if cache is not None and cache.enabled else None
        self.usage = UsageRecorder(ledger)
        self.budgets = budgets
        # With Redis configured, deployment limits are counted there, across every replica.
        limited = any(d.rpm or d.tpm or d.max_in_flight for c in configs for d in c.deployments)
        self.shared_limits = SharedLimits(cache.redis_url) if cache is not None and cache.redis_url and limited \
            else None
        self._flush_interval_s = usage_flush_interval_s
        self.workers: dict[str, DeploymentWorker] = {}
        routers: dict[str, Router] = {}
        for config in configs:
            workers = []
            for deployment in config.deployments:
                worker = DeploymentWorker(deployment, environ=environ, retry_policy=retry_policy,
                                          shared_limits=self.shared_limits)
                self.workers[deployment.name] = worker
                workers.append(worker)
            routers[config.alias] = Router(config.alias, workers, config.routing)
        for config in configs:
            routers[config.alias].fallbacks = [routers[alias] for alias in config.fallbacks]
        self._lms = {
            alias: GatewayLM(config, routers[alias], cache=self.cache, usage=self.usage, budgets=budgets)
            for alias, config in self._configs.items()
        }
        self.supervisor = Supervisor("lm", max_restarts=MAX_RESTARTS, period_s=RESTART_PERIOD_S,
                                     on_escalation=self._escalated)
        self._started = False

    async def start(self) -> LMRegistry:
        """Start the workers, the ledger flusher and the budget-reservation janitor."""

        if self._started:
            return self
        self.supervisor.start()
        for worker in self.workers.values():
            self.supervisor.start_child(ChildSpec(f"deployment:{worker.name}", worker.run))
        self.supervisor.start_child(
            ChildSpec("usage-ledger", lambda: self.usage.run_flusher(self._flush_interval_s))
        )
        if self.budgets is not None:
            self.supervisor.start_child(ChildSpec("budget-reservations", self.budgets.run_janitor))
        self._started = True
        if self.cache is not None:
            log.info("LM response cache: %s", self.cache.describe())
        return self

    def _escalated(self, escalation: SupervisorEscalation) -> None:
        log.critical("LM workers keep dying; no deployment will serve until restart: %s", escalation)

    async def __aenter__(self) -> LMRegistry:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ lookup

    def aliases(self) -> list[str]:
        """Every configured alias, in config order."""

        return list(self._configs)

    def config(self, alias: str) -> ModelConfig:
        """The configuration of ``alias``; unknown -> :class:`NotFound` (``MODEL_NOT_FOUND``)."""

        try:
            return self._configs[alias]
        except KeyError:
            raise self._not_found(alias) from None

    def get(self, alias: str) -> GatewayLM:
        """The LM known as ``alias``; unknown -> :class:`NotFound`."""

        if not self._started:
            raise RuntimeError("LMRegistry.start() must be awaited before models are used")
        lm = self._lms.get(alias)
        if lm is None:
            raise self._not_found(alias)
        return lm

    def _not_found(self, alias: str) -> NotFound:
        known = ", ".join(self._configs) or "none"
        description = f"no model is configured under the alias {alias!r} (known: {known})"
        return NotFound(
            f"lm.model: {description}",
            reason="MODEL_NOT_FOUND",
            metadata={"model": alias},
            violations=[FieldViolation("lm.model", description)],
        )

    # ------------------------------------------------------------------ status

    def status(self, alias: str = "") -> list[ModelStatus]:
        """The state of every model (or of ``alias`` only: unknown -> :class:`NotFound`)."""

        aliases = [self.config(alias).alias] if alias else self.aliases()
        children = self.supervisor.children
        out = []
        for name in aliases:
            lm = self._lms[name]
            stats = lm.cache_stats
            cache = CacheStatus(
                backend=self.cache.backend if self.cache is not None else "off",
                hits=stats.hits, misses=stats.misses, coalesced=stats.coalesced, hit_ratio=stats.hit_ratio,
            )
            deployments = []
            for worker in lm.router.workers:
                child = children.get(f"deployment:{worker.name}")
                headroom = worker.limiter.headroom()
                deployments.append(DeploymentStatus(
                    name=worker.name,
                    provider=worker.deployment.provider,
                    model=worker.deployment.model,
                    serving=worker.serving,
                    restarts=child.restarts if child is not None else 0,
                    breaker_state=worker.breaker.state,
                    consecutive_failures=worker.breaker.consecutive_failures,
                    breaker_opened=worker.breaker.times_opened,
                    breaker_retry_after_s=worker.breaker.retry_after(),
                    in_flight=headroom.in_flight,
                    max_in_flight=headroom.max_in_flight,
                    requests_headroom=headroom.requests,
                    tokens_headroom=headroom.tokens,
                    cooldown_s=headroom.cooldown_s,
                    calls=worker.metrics.calls,
                    successes=worker.metrics.successes,
                    failures=worker.metrics.failures,
                    retries=worker.metrics.retries,
                    recent_errors=tuple(worker.metrics.recent_errors),
                ))
            out.append(ModelStatus(alias=name, routing=lm.config.routing, fallbacks=tuple(lm.config.fallbacks),
                                   cache=cache, deployments=tuple(deployments)))
        return out

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Stop the workers (closing their connections), flush the usage ledger, close the cache."""

        await self.supervisor.stop()
        self._started = False
        if self.cache is not None:
            await self.cache.aclose()
        if self.shared_limits is not None:
            await self.shared_limits.aclose()

"""Snapshots of the provider layer's state, for GetProviderStatus and logs."""

from __future__ import annotations

from dataclasses import dataclass

from .worker import RecentError


@dataclass(frozen=True)
class DeploymentStatus:
    name: str
    provider: str
    model: str
    #: The worker is running (False while the supervisor restarts it).
    serving: bool
    restarts: int
    breaker_state: str  # "closed" | "open" | "half_open"
    consecutive_failures: int
    breaker_opened: int
    breaker_retry_after_s: float
    in_flight: int
    max_in_flight: int | None
    requests_headroom: int | None
    tokens_headroom: int | None
    cooldown_s: float
    calls: int
    successes: int
    failures: int
    retries: int
    recent_errors: tuple[RecentError, ...]


@dataclass(frozen=True)
class CacheStatus:
    backend: str  # "memory" | "redis" | "off"
    hits: int
    misses: int
    coalesced: int
    hit_ratio: float


@dataclass(frozen=True)
class ModelStatus:
    alias: str
    routing: str
    fallbacks: tuple[str, ...]
    cache: CacheStatus
    deployments: tuple[DeploymentStatus, ...]

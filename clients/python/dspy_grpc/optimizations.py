"""Optimization jobs (OptimizationService): start GEPA and SIMBA runs, follow their progress, read the result.

    with dspy_grpc.Client("127.0.0.1:50051") as client:
        job = client.start_gepa("qa", "qa-train", reflection_lm="gpt-4o", auto="light",
                                metric={"exact_match": {"field": "answer"}})
        for update in client.watch_optimization(job.name):
            print(update.state, update.progress.metric_calls_used, update.progress.best_score)
        print(update.program_revision, update.best_score)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from google.protobuf import json_format

from ._requests import LMLike, lm_spec
from .v1 import job_pb2, metric_pb2, optimization_pb2

__all__ = ["MetricLike", "Optimization", "OptimizationCandidate", "OptimizationProgress"]

#: A metric: a ``MetricSpec`` proto or its JSON form, e.g. ``{"exact_match": {"field": "answer"}}``.
MetricLike = Union[metric_pb2.MetricSpec, Mapping[str, Any]]

_STATES = {
    job_pb2.JOB_STATE_QUEUED: "queued", job_pb2.JOB_STATE_RUNNING: "running",
    job_pb2.JOB_STATE_SUCCEEDED: "succeeded", job_pb2.JOB_STATE_FAILED: "failed",
    job_pb2.JOB_STATE_CANCELLED: "cancelled",
}
#: States a job never leaves.
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def _time(stamp: Any) -> _dt.datetime | None:
    return stamp.ToDatetime(tzinfo=_dt.timezone.utc) if stamp.seconds or stamp.nanos else None


@dataclass(frozen=True)
class OptimizationProgress:
    """How far a job has come (GEPA fills the metric-call budget, frontier and parent fields)."""

    phase: str = ""
    lm_calls_done: int = 0
    lm_calls_planned: int = 0
    examples_done: int = 0
    examples_total: int = 0
    #: Best score so far, 0-100; None before the first evaluation.
    best_score: float | None = None
    current_candidate: str = ""
    #: Seconds left at the pace so far; None until it can be estimated.
    eta_s: float | None = None
    metric_calls_used: int = 0
    metric_calls_budget: int = 0
    pareto_front_size: int = 0
    parent_candidate: str = ""

    @classmethod
    def from_proto(cls, raw: job_pb2.JobProgress) -> OptimizationProgress:
        return cls(
            phase=raw.phase, lm_calls_done=raw.lm_calls_done, lm_calls_planned=raw.lm_calls_planned,
            examples_done=raw.examples_done, examples_total=raw.examples_total,
            best_score=raw.best_score if raw.HasField("best_score") else None,
            current_candidate=raw.current_candidate,
            eta_s=raw.eta.ToTimedelta().total_seconds() if raw.HasField("eta") else None,
            metric_calls_used=raw.metric_calls_used, metric_calls_budget=raw.metric_calls_budget,
            pareto_front_size=raw.pareto_front_size, parent_candidate=raw.parent_candidate,
        )


@dataclass(frozen=True)
class Optimization:
    """An optimization job as the server last reported it.

    ``state`` is "queued", "running", "succeeded", "failed" or "cancelled"; once "succeeded",
    ``program_revision`` names the new revision ("programs/qa@r0002") and ``best_score`` its score
    (0-100); once "failed", ``error_code``/``error_reason``/``error_message`` say why.
    """

    name: str
    program: str
    optimizer: str
    state: str
    progress: OptimizationProgress
    program_revision: str = ""
    activated: bool = False
    best_score: float | None = None
    best_candidate: int = 0
    error_code: str = ""
    error_reason: str = ""
    error_message: str = ""
    create_time: _dt.datetime | None = None
    end_time: _dt.datetime | None = None
    raw: optimization_pb2.Optimization = field(default_factory=optimization_pb2.Optimization, repr=False,
                                               compare=False)

    @property
    def optimization_id(self) -> str:
        return self.name.removeprefix("optimizations/")

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @classmethod
    def from_proto(cls, raw: optimization_pb2.Optimization) -> Optimization:
        result = raw.result
        return cls(
            name=raw.name, program=raw.program, optimizer=raw.WhichOneof("optimizer") or "",
            state=_STATES.get(raw.state, "unspecified"), progress=OptimizationProgress.from_proto(raw.progress),
            program_revision=result.program_revision, activated=result.activated,
            best_score=result.best_score if result.HasField("best_score") else None,
            best_candidate=result.best_candidate, error_code=raw.error.code, error_reason=raw.error.reason,
            error_message=raw.error.message, create_time=_time(raw.create_time), end_time=_time(raw.end_time),
            raw=raw,
        )


@dataclass(frozen=True)
class OptimizationCandidate:
    """A candidate program a job evaluated; for GEPA also its lineage and per-example scores."""

    index: int
    label: str
    score: float | None
    parents: tuple[int, ...]
    changed_predictors: tuple[str, ...]
    instance_scores: tuple[float, ...]
    raw: optimization_pb2.OptimizationCandidate = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, raw: optimization_pb2.OptimizationCandidate) -> OptimizationCandidate:
        return cls(
            index=raw.index, label=raw.label, score=raw.score if raw.HasField("score") else None,
            parents=tuple(raw.parents), changed_predictors=tuple(raw.changed_predictors),
            instance_scores=tuple(raw.instance_scores), raw=raw,
        )


def optimization_name(name: str) -> str:
    """``"opt-1"`` or ``"optimizations/opt-1"`` -> ``"optimizations/opt-1"``."""

    return name if name.startswith("optimizations/") else f"optimizations/{name}"


def _metric(metric: MetricLike) -> metric_pb2.MetricSpec:
    if isinstance(metric, metric_pb2.MetricSpec):
        return metric
    if isinstance(metric, Mapping):
        return json_format.ParseDict(dict(metric), metric_pb2.MetricSpec())
    raise TypeError(f"metric must be a MetricSpec or its JSON form (a dict), got {type(metric).__name__}")


def _settings(message: Any, settings: Mapping[str, Any]) -> Any:
    """Set the given (non-None) settings on an optimizer's message; LM settings accept ``lm=`` forms."""

    for key, value in settings.items():
        if value is None:
            continue
        if key == "reflection_lm":
            spec = lm_spec(value)
            if spec is not None:
                message.reflection_lm.CopyFrom(spec)
        else:
            setattr(message, key, value)
    return message


def create_request(program: str, dataset: str, optimizer: str, settings: Mapping[str, Any], *,
                   metric: MetricLike, task_lm: LMLike, num_threads: int, max_errors: int | None, activate: bool,
                   display_name: str, optimization_id: str) -> optimization_pb2.CreateOptimizationRequest:
    job = optimization_pb2.Optimization(
        program=program if program.startswith("programs/") else f"programs/{program}",
        dataset=dataset if dataset.startswith("datasets/") else f"datasets/{dataset}",
        num_threads=num_threads, activate=activate, display_name=display_name,
    )
    job.metric.CopyFrom(_metric(metric))
    if max_errors is not None:
        job.max_errors = max_errors
    spec = lm_spec(task_lm)
    if spec is not None:
        job.task_lm.CopyFrom(spec)
    if optimizer == "gepa":
        _settings(job.gepa, settings)
    elif optimizer == "simba":
        _settings(job.simba, settings)
    else:  # pragma: no cover - callers pass one of the two
        raise ValueError(f"unknown optimizer {optimizer!r}")
    return optimization_pb2.CreateOptimizationRequest(optimization_id=optimization_id, optimization=job)


def gepa_settings(*, reflection_lm: LMLike, auto: str | None, max_metric_calls: int | None,
                  max_full_evals: int | None, **rest: Any) -> dict[str, Any]:
    chosen = [name for name, value in (("auto", auto), ("max_metric_calls", max_metric_calls),
                                       ("max_full_evals", max_full_evals)) if value is not None]
    if len(chosen) != 1:
        raise ValueError("give exactly one of auto, max_metric_calls and max_full_evals")
    return {"reflection_lm": reflection_lm, "auto": auto, "max_metric_calls": max_metric_calls,
            "max_full_evals": max_full_evals, **rest}

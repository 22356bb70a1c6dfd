"""Bounds on the numbers a caller sets: one place that says how large (and how small) each may be.

Every count, size, depth, seed or budget in a request is checked against a :class:`Range` when the
resource is created, so nothing a caller sends can plan unbounded work. Fixed ranges (seeds,
temperatures, module runs) are constants here; the server-wide ones a deployment may want to raise
(optimizer budgets, threads, the cap on a job's planned LM calls) are the fields of :class:`Limits`,
read from the ``[limits]`` table of the config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .errors import ResourceExhausted, invalid

#: Seeds of our own random choices (Python's and numpy's generators, optuna's sampler).
SEED_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Range:
    """Inclusive bounds; ``check`` raises INVALID_ARGUMENT naming the field when a value is outside."""

    low: float
    high: float

    def check(self, value: float | None, path: str) -> None:
        if value is None:
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise invalid(path, "must be a finite number")
        if not self.low <= value <= self.high:
            raise invalid(path, f"must be between {_text(self.low)} and {_text(self.high)} (got {_text(value)})")

    def __str__(self) -> str:
        return f"[{_text(self.low)}, {_text(self.high)}]"


def _text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**63 else repr(value)


SEED = Range(0, SEED_MAX)
#: Sampling temperatures (OpenAI's range).
TEMPERATURE = Range(0.0, 2.0)
FRACTION = Range(0.0, 1.0)
#: Any finite number (thresholds, weights, scores): NaN and infinities are refused.
FINITE = Range(-math.inf, math.inf)
#: Scores are 0-100 (evaluation scores and stop_at_score).
SCORE = Range(0.0, 100.0)
#: Runs of an inner module per call (BestOfN, Refine, majority).
MODULE_RUNS = Range(1, 100)
REACT_ITERS = Range(1, 100)
#: MultiChainComparison's M.
CHAIN_COMPARISONS = Range(1, 20)
#: Threads of a parallel module and concurrency of a batch.
CONCURRENCY = Range(1, 256)
#: Errors tolerated before a run stops (parallel modules, jobs).
MAX_ERRORS = Range(0, 1_000_000)
#: Completions per LM request (n) and tokens per completion (max_tokens).
COMPLETIONS = Range(1, 64)
MAX_TOKENS = Range(1, 1_000_000)
#: Neighbours and demos of a KNN few-shot module; attempts per example.
DEMOS = Range(0, 100)
#: How long a Run waits for one caller tool result (seconds; a day at most).
TOOL_TIMEOUT_S = Range(0, 86_400)
ROUNDS = Range(1, 20)


@dataclass(frozen=True)
class Limits:
    """Server-wide bounds, raisable (or lowered) by the ``[limits]`` table of the config."""

    #: Candidates of an optimizer: MIPROv2 num_candidates, random search num_candidate_programs, COPRO breadth.
    max_candidates: int = 64
    #: MIPROv2 num_trials (and minibatch_full_eval_steps).
    max_trials: int = 500
    #: COPRO depth (rounds of proposals).
    max_depth: int = 20
    #: Demos per predictor: k, max_bootstrapped_demos, max_labeled_demos.
    max_demos: int = 100
    #: Attempts per training example (max_rounds).
    max_rounds: int = 20
    #: Program runs at once in one job (num_threads).
    max_num_threads: int = 256
    #: Examples one dataset may hold (jobs load a dataset's examples into memory).
    max_dataset_examples: int = 100_000
    #: Admission control: the most LM calls one job may plan; a job planning more is refused with
    #: RESOURCE_EXHAUSTED (reason JOB_TOO_LARGE, the cap in the ErrorInfo metadata).
    max_job_lm_calls: int = 200_000

    def validate(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) < 1:
                raise invalid(f"limits.{field.name}", "must be at least 1")

    def admit(self, planned_lm_calls: int, path: str) -> None:
        """Refuse a job whose planned work is over the cap."""

        if planned_lm_calls > self.max_job_lm_calls:
            raise ResourceExhausted(
                f"{path}: the job plans about {planned_lm_calls} LM calls, over this server's cap of "
                f"{self.max_job_lm_calls} (limits.max_job_lm_calls); lower its budget or split the dataset",
                reason="JOB_TOO_LARGE",
                metadata={"field": path, "planned_lm_calls": str(planned_lm_calls),
                          "max_job_lm_calls": str(self.max_job_lm_calls)},
            )

"""Evaluation jobs: DSPy's ``Evaluate`` over a stored dataset, durable and observable."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..core import bounds
from ..core.errors import invalid
from ..core.names import validate_resource_id
from ..modules.spec import LMChoice
from ..optimize import program as program_view
from ..optimize.evaluate import ExampleResult, evaluate
from ..modules.metrics import Metric, metric_from_dict, metric_to_dict
from ..optimize.splits import Split
from ..store.jobs import JobRecord
from ..modules.storage import lm_from_dict, lm_to_dict
from . import job_setup
from .jobs import JobControl, JobKind

KIND = "evaluation"
SCOPE = "eval"


@dataclass(frozen=True)
class EvaluationRequest:
    program_id: str
    revision_id: str | None
    dataset_id: str
    metric: Metric
    split: Split | None = None
    part: str = ""
    lm: LMChoice = LMChoice()
    num_threads: int = 0
    max_errors: int | None = None
    failure_score: float = 0.0
    display_name: str = ""


class Evaluations(JobKind):
    KIND = KIND
    WATCHED_SCOPE = SCOPE

    async def watch_results(self, job_id: str) -> AsyncIterator[tuple[JobRecord, list[ExampleResult]]]:
        """Watch, with each stored per-example result exactly once (see :meth:`JobHost.watch`)."""

        async for record, rows in self.watch(job_id):
            yield record, [ExampleResult.from_dict(index, data) for index, data in rows]

    async def create(self, job_id: str, request: EvaluationRequest) -> JobRecord:
        job_id = validate_resource_id(job_id, field="evaluation_id") if job_id else f"eval-{secrets.token_hex(6)}"
        path = "evaluation"
        bounds.FINITE.check(request.failure_score, f"{path}.failure_score")
        program = await self._programs.get(request.program_id, request.revision_id)
        if request.split is not None:
            request.split.validate(f"{path}.split")
            if request.part not in ("train", "dev"):
                raise invalid(f"{path}.part", "is required with a split: SPLIT_PART_TRAIN or SPLIT_PART_DEV")
        elif request.part:
            raise invalid(f"{path}.split", "is required when part is set")
        dataset = await self._datasets.get(request.dataset_id)
        examples = await self._datasets.examples(
            request.dataset_id, split=request.split, part=request.part, count=dataset.example_count
        )
        if not examples:
            raise invalid(f"{path}.dataset", "has no examples to evaluate on" + (" in that part" if request.split else ""))
        job_setup.check_inputs(program.module, examples, f"{path}.dataset")
        job_setup.check_metric(request.metric, program.module, examples, f"{path}.metric")
        planned = len(examples) * max(1, len(program_view.predictors(program.module)))
        self._limits.admit(planned, f"{path}.dataset")
        spec = {
            "program": f"programs/{request.program_id}" + (f"@{request.revision_id}" if request.revision_id else ""),
            "program_id": program.record.program_id, "revision_id": program.record.revision_id,
            "dataset_id": request.dataset_id, "example_count": dataset.example_count,
            "split": request.split.to_dict() if request.split else None, "part": request.part,
            "metric": metric_to_dict(request.metric), "lm": lm_to_dict(request.lm),
            "num_threads": job_setup.num_threads(request.num_threads, f"{path}.num_threads", self._limits),
            "max_errors": job_setup.max_errors(request.max_errors, f"{path}.max_errors"),
            "failure_score": request.failure_score, "display_name": request.display_name,
        }
        record = await self._store.create(
            KIND, job_id, spec, {"phase": "queued", "examples_total": len(examples), "lm_calls_planned": planned}
        )
        await self._host.launch(record)
        return await self._store.get(KIND, job_id)

    async def results(self, job_id: str, *, page_size: int, page_token: str) -> tuple[list[ExampleResult], str]:
        await self._store.get(KIND, job_id)
        rows, token = await self._store.results_page(KIND, job_id, SCOPE, page_size=page_size, page_token=page_token)
        return [ExampleResult.from_dict(index, data) for index, data in rows], token

    async def _body(self, record: JobRecord, control: JobControl) -> dict[str, Any]:
        spec = record.spec
        program = await self._programs.get(spec["program_id"], spec["revision_id"])
        split = Split.from_dict(spec["split"]) if spec.get("split") else None
        examples = await self._datasets.examples(spec["dataset_id"], split=split, part=spec.get("part", ""),
                                                 count=spec["example_count"])
        known = {
            index: ExampleResult.from_dict(index, data)
            for index, data in (await self._store.results(KIND, record.job_id, SCOPE)).items()
        }
        progress = control.progress
        progress.update(phase="evaluate", examples_total=len(examples), examples_done=len(known),
                        lm_calls_planned=max(progress.lm_calls_planned, len(examples)))
        journal = await control.journal()
        runner = job_setup.build_runner(
            self._registry, self._default_model, journal, progress, task_lm=lm_from_dict(spec["lm"]),
            threads=spec["num_threads"], program=program.module, retrievers=self._retrievers, live=self._live,
        )

        async def on_result(result: ExampleResult) -> None:
            await self._store.put_results(control.lease, SCOPE, {result.index: result.to_dict()})
            control.announce()

        outcome = await evaluate(
            runner, program.module, examples, metric_from_dict(spec["metric"]), max_errors=spec["max_errors"],
            failure_score=spec["failure_score"], known=known, on_result=on_result,
        )
        progress.update(best_score=outcome.score)
        return {"score": outcome.score, "error_count": sum(1 for r in outcome.results if r.error)}

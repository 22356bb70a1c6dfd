"""proto <-> domain for datasets, metrics, evaluation and optimization jobs."""

from __future__ import annotations

import re
from typing import Any

from dspy_grpc.v1 import dataset_pb2, evaluation_pb2, job_pb2, optimization_pb2
from google.protobuf import duration_pb2

from ..app.evaluations import EvaluationRequest
from ..app.optimizations import OptimizationRequest
from ..core import errors as core_errors
from ..core.errors import invalid
from ..modules.spec import LMChoice
from ..modules.storage import lm_from_dict, lm_to_dict
from ..optimize.bootstrap import BootstrapConfig
from ..optimize.context import Candidate
from ..modules.metrics import metric_from_dict, metric_to_dict
from ..optimize.copro import CoproConfig
from ..optimize.ensemble import EnsembleConfig
from ..optimize.evaluate import ExampleResult
from ..optimize.gepa import GepaConfig
from ..optimize.knn_few_shot import KNNFewShotConfig
from ..optimize.labeled_few_shot import LabeledFewShotConfig
from ..optimize.mipro import MiproConfig
from ..optimize.random_search import RandomSearchConfig
from ..optimize.simba import SimbaConfig
from ..optimize.splits import Split
from ..store.datasets import DatasetRecord
from ..store.jobs import JobRecord
from .errors import status_code_for
from .convert import (
    _timestamp,
    ensemble_reduce_from_proto,
    ensemble_reduce_to_proto,
    lm_from_proto,
    metric_from_proto,
    metric_to_proto,
    module_to_proto,
    program_ref,
    values_fields,
)

_NAME = {kind: re.compile(rf"{kind}s/([a-z][a-z0-9-]{{0,62}})") for kind in ("dataset", "evaluation", "optimization")}


def resource_id(kind: str, name: str, field: str) -> str:
    """The id in "{kind}s/{id}"; INVALID_ARGUMENT naming ``field`` otherwise."""

    if not name:
        raise invalid(field, f"is required: a name such as \"{kind}s/my-{kind}\"")
    match = _NAME[kind].fullmatch(name)
    if match is None:
        raise invalid(field, f"{name!r} is not a {kind} name of the form {kind}s/{{id}}")
    return match.group(1)


def _lm(message: Any, field: str, prefix: str) -> LMChoice:
    return lm_from_proto(getattr(message, field), f"{prefix}.{field}") if message.HasField(field) else LMChoice()


# --------------------------------------------------------------------------- datasets


def dataset_to_proto(record: DatasetRecord) -> dataset_pb2.Dataset:
    return dataset_pb2.Dataset(
        name=record.name, display_name=record.display_name, description=record.description,
        labels=dict(record.labels), input_keys=list(record.input_keys), example_count=record.example_count,
        create_time=_timestamp(record.create_time), update_time=_timestamp(record.update_time),
    )


_PARTS = {dataset_pb2.SPLIT_PART_UNSPECIFIED: "", dataset_pb2.SPLIT_PART_TRAIN: "train",
          dataset_pb2.SPLIT_PART_DEV: "dev"}
_PART_ENUMS = {value: key for key, value in _PARTS.items()}


def split_from_proto(message: Any, path: str) -> Split | None:
    if not message.HasField("split"):
        return None
    return Split(int(message.split.seed), float(message.split.dev_fraction)).validate(path)


def part_from_proto(value: int, path: str) -> str:
    if value not in _PARTS:
        raise invalid(path, "is not a known split part")
    return _PARTS[value]


def split_to_proto(data: dict[str, Any] | None) -> dataset_pb2.DatasetSplit | None:
    if not data:
        return None
    return dataset_pb2.DatasetSplit(seed=int(data["seed"]), dev_fraction=float(data["dev_fraction"]))


# --------------------------------------------------------------------------- metrics


# --------------------------------------------------------------------------- jobs

_STATES = {
    "QUEUED": job_pb2.JOB_STATE_QUEUED, "RUNNING": job_pb2.JOB_STATE_RUNNING,
    "SUCCEEDED": job_pb2.JOB_STATE_SUCCEEDED, "FAILED": job_pb2.JOB_STATE_FAILED,
    "CANCELLED": job_pb2.JOB_STATE_CANCELLED,
}


def job_state_to_proto(state: str) -> int:
    return _STATES[state]


def progress_to_proto(data: dict[str, Any]) -> job_pb2.JobProgress:
    progress = job_pb2.JobProgress(
        phase=data.get("phase", ""), lm_calls_done=int(data.get("lm_calls_done", 0)),
        lm_calls_planned=int(data.get("lm_calls_planned", 0)), examples_done=int(data.get("examples_done", 0)),
        examples_total=int(data.get("examples_total", 0)), current_candidate=data.get("current_candidate", ""),
        metric_calls_used=int(data.get("metric_calls_used", 0)),
        metric_calls_budget=int(data.get("metric_calls_budget", 0)),
        pareto_front_size=int(data.get("pareto_front_size", 0)), parent_candidate=data.get("parent_candidate", ""),
    )
    if data.get("best_score") is not None:
        progress.best_score = float(data["best_score"])
    if data.get("eta_s") is not None:
        seconds = max(0.0, float(data["eta_s"]))
        progress.eta.CopyFrom(duration_pb2.Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9)))
    return progress


def _job_fields(record: JobRecord) -> dict[str, Any]:
    spec = record.spec
    fields: dict[str, Any] = {
        "program": spec.get("program", f"programs/{spec['program_id']}"),
        "program_revision": f"programs/{spec['program_id']}@{spec['revision_id']}",
        "dataset": f"datasets/{spec['dataset_id']}" if spec.get("dataset_id") else "",
        "num_threads": spec["num_threads"], "max_errors": spec["max_errors"],
        "display_name": spec.get("display_name", ""), "state": _STATES[record.state],
        "progress": progress_to_proto(dict(record.progress)), "create_time": _timestamp(record.create_time),
    }
    if spec.get("metric"):
        fields["metric"] = metric_to_proto(metric_from_dict(spec["metric"]))
    split = split_to_proto(spec.get("split"))
    if split is not None:
        fields["split"] = split
    if record.error:
        fields["error"] = job_error_to_proto(record.error)
    if record.start_time is not None:
        fields["start_time"] = _timestamp(record.start_time)
    if record.end_time is not None:
        fields["end_time"] = _timestamp(record.end_time)
    return fields


def job_error_to_proto(error: Any) -> job_pb2.JobError:
    """A stored job error, with the status code the same error would get on a failed call."""

    kind = getattr(core_errors, error.get("error_class", ""), None)
    code = "INTERNAL"
    if isinstance(kind, type) and issubclass(kind, core_errors.DspyGrpcError):
        code = status_code_for(kind.__new__(kind)).name  # a bare instance, for the isinstance checks only
    return job_pb2.JobError(code=code, reason=error.get("reason", ""), message=error.get("message", ""))


def _lm_spec(data: dict[str, Any]):
    from .convert import lm_to_proto

    return lm_to_proto(lm_from_dict(data)) if data else None


# --------------------------------------------------------------------------- evaluations


def evaluation_request(message: evaluation_pb2.Evaluation) -> EvaluationRequest:
    ref = program_ref(message.program, "evaluation.program")
    if not message.HasField("metric"):
        raise invalid("evaluation.metric", "is required")
    return EvaluationRequest(
        program_id=ref.program_id, revision_id=ref.revision_id,
        dataset_id=resource_id("dataset", message.dataset, "evaluation.dataset"),
        metric=metric_from_proto(message.metric, "evaluation.metric"),
        split=split_from_proto(message, "evaluation.split"), part=part_from_proto(message.part, "evaluation.part"),
        lm=_lm(message, "lm", "evaluation"), num_threads=message.num_threads,
        max_errors=message.max_errors if message.HasField("max_errors") else None,
        failure_score=message.failure_score, display_name=message.display_name,
    )


def evaluation_to_proto(record: JobRecord) -> evaluation_pb2.Evaluation:
    spec = record.spec
    fields = _job_fields(record)
    evaluation = evaluation_pb2.Evaluation(
        name=f"evaluations/{record.job_id}", part=_PART_ENUMS.get(spec.get("part", ""), 0),
        failure_score=spec.get("failure_score", 0.0), **fields,
    )
    lm = _lm_spec(spec.get("lm") or {})
    if lm is not None:
        evaluation.lm.CopyFrom(lm)
    if record.result:
        evaluation.score = record.result["score"]
        evaluation.error_count = int(record.result.get("error_count", 0))
    return evaluation


def evaluation_result_to_proto(result: ExampleResult) -> evaluation_pb2.EvaluationResult:
    return evaluation_pb2.EvaluationResult(
        example_index=result.index, **values_fields("prediction", result.outputs), score=result.score,
        error=result.error,
    )


# --------------------------------------------------------------------------- optimizations


def _opt(message: Any, field: str, default: Any) -> Any:
    return getattr(message, field) if message.HasField(field) else default


def optimizer_from_proto(message: optimization_pb2.Optimization) -> tuple[str, Any]:
    kind = message.WhichOneof("optimizer")
    if kind is None:
        raise invalid("optimization.optimizer",
                      "set one of labeled_few_shot, bootstrap_few_shot, random_search, copro, mipro_v2, ensemble, "
                      "knn_few_shot, gepa, simba")
    body = getattr(message, kind)
    if kind == "ensemble":
        programs = tuple(program_ref(name, f"optimization.ensemble.programs[{index}]")
                         for index, name in enumerate(body.programs))
        return kind, EnsembleConfig(
            programs=tuple((ref.program_id, ref.revision_id) for ref in programs),
            reduce=ensemble_reduce_from_proto(body.reduce, "optimization.ensemble.reduce"), size=body.size,
            seed=body.seed, field=body.field,
        )
    if kind == "labeled_few_shot":
        return kind, LabeledFewShotConfig(k=_opt(body, "k", 16), sample=_opt(body, "sample", True))
    if kind == "copro":
        return kind, CoproConfig(breadth=_opt(body, "breadth", 10), depth=_opt(body, "depth", 3),
                                 init_temperature=_opt(body, "init_temperature", 1.4))
    if kind == "knn_few_shot":
        return kind, KNNFewShotConfig(
            k=body.k, embedding_model=body.embedding_model,
            max_bootstrapped_demos=_opt(body, "max_bootstrapped_demos", 4),
            max_labeled_demos=_opt(body, "max_labeled_demos", 16), max_rounds=_opt(body, "max_rounds", 1),
            bootstrap_metric=metric_to_dict(metric_from_proto(body.bootstrap_metric, f"optimization.{kind}.bootstrap_metric"))
            if body.HasField("bootstrap_metric") else None,
        )
    if kind == "simba":
        simba_defaults = SimbaConfig()
        return kind, SimbaConfig(**{name: _opt(body, name, getattr(simba_defaults, name)) for name in (
            "bsize", "num_candidates", "max_steps", "max_demos", "demo_input_field_maxlen",
            "temperature_for_sampling", "temperature_for_candidates", "seed")})
    if kind == "gepa":
        defaults = GepaConfig()
        values = {name: _opt(body, name, getattr(defaults, name)) for name in (
            "max_full_evals", "max_metric_calls", "reflection_minibatch_size", "skip_perfect_score", "use_merge",
            "max_merge_invocations", "failure_score", "perfect_score", "seed")}
        return kind, GepaConfig(
            auto=body.auto, reflection_lm=lm_to_dict(_lm(body, "reflection_lm", "optimization.gepa")),
            candidate_selection_strategy=body.candidate_selection_strategy or defaults.candidate_selection_strategy,
            component_selector=body.component_selector or defaults.component_selector, **values,
        )
    if kind == "mipro_v2":
        manual = body.HasField("num_candidates") or body.HasField("num_trials")
        defaults = MiproConfig()
        values = {name: _opt(body, name, getattr(defaults, name)) for name in (
            "num_candidates", "num_trials", "max_bootstrapped_demos", "max_labeled_demos", "minibatch",
            "minibatch_size", "minibatch_full_eval_steps", "init_temperature", "seed", "metric_threshold",
            "program_aware_proposer", "data_aware_proposer", "tip_aware_proposer", "fewshot_aware_proposer",
            "view_data_batch_size")}
        return kind, MiproConfig(auto=body.auto or (None if manual else "light"), **values)
    common = dict(
        max_bootstrapped_demos=_opt(body, "max_bootstrapped_demos", 4),
        max_labeled_demos=_opt(body, "max_labeled_demos", 16), max_rounds=_opt(body, "max_rounds", 1),
        metric_threshold=_opt(body, "metric_threshold", None),
    )
    if kind == "bootstrap_few_shot":
        return kind, BootstrapConfig(**common)
    return kind, RandomSearchConfig(
        **common, num_candidate_programs=_opt(body, "num_candidate_programs", 16),
        stop_at_score=_opt(body, "stop_at_score", None),
    )


def optimization_request(message: optimization_pb2.Optimization) -> OptimizationRequest:
    ref = program_ref(message.program, "optimization.program")
    # An ensemble needs no data: its dataset and metric are optional (the app checks they come together).
    optional_data = message.WhichOneof("optimizer") == "ensemble"
    if not message.HasField("metric") and not optional_data:
        raise invalid("optimization.metric", "is required")
    optimizer, config = optimizer_from_proto(message)
    dataset_id = "" if optional_data and not message.dataset else resource_id(
        "dataset", message.dataset, "optimization.dataset")
    metric = metric_from_proto(message.metric, "optimization.metric") if message.HasField("metric") else None
    return OptimizationRequest(
        program_id=ref.program_id, revision_id=ref.revision_id, dataset_id=dataset_id,
        metric=metric, optimizer=optimizer, config=config,
        split=split_from_proto(message, "optimization.split"), task_lm=_lm(message, "task_lm", "optimization"),
        teacher_lm=_lm(message, "teacher_lm", "optimization"), prompt_lm=_lm(message, "prompt_lm", "optimization"),
        num_threads=message.num_threads,
        max_errors=message.max_errors if message.HasField("max_errors") else None,
        activate=message.activate, display_name=message.display_name,
    )


def optimization_to_proto(record: JobRecord) -> optimization_pb2.Optimization:
    spec = record.spec
    optimization = optimization_pb2.Optimization(
        name=f"optimizations/{record.job_id}", activate=spec.get("activate", False), **_job_fields(record)
    )
    config = {key: value for key, value in spec["config"].items() if value is not None}
    if spec["optimizer"] == "ensemble":
        config["programs"] = [f"programs/{program_id}" + (f"@{revision_id}" if revision_id else "")
                              for program_id, revision_id in config.get("programs", ())]
        config["reduce"] = ensemble_reduce_to_proto(config.get("reduce", "none"))
    for key in ("bootstrap_metric",):
        if config.get(key):
            config[key] = metric_to_proto(metric_from_dict(config[key]))
    for key in ("reflection_lm",):
        if key in config:
            lm = _lm_spec(config.pop(key) or {})
            if lm is not None:
                config[key] = lm
    message_class = {
        "labeled_few_shot": optimization_pb2.LabeledFewShot, "bootstrap_few_shot": optimization_pb2.BootstrapFewShot,
        "random_search": optimization_pb2.BootstrapFewShotWithRandomSearch,
        "copro": optimization_pb2.COPRO, "mipro_v2": optimization_pb2.MIPROv2,
        "ensemble": optimization_pb2.Ensemble,
        "knn_few_shot": optimization_pb2.KNNFewShot, "gepa": optimization_pb2.GEPA,
        "simba": optimization_pb2.SIMBA,
    }[spec["optimizer"]]
    known = set(message_class.DESCRIPTOR.fields_by_name)
    getattr(optimization, spec["optimizer"]).CopyFrom(
        message_class(**{key: value for key, value in config.items() if key in known})
    )
    for field in ("task_lm", "teacher_lm", "prompt_lm"):
        lm = _lm_spec(spec.get(field) or {})
        if lm is not None:
            getattr(optimization, field).CopyFrom(lm)
    if record.result:
        result = optimization_pb2.OptimizationResult(
            program_revision=record.result["program_revision"], activated=record.result.get("activated", False),
            best_candidate=int(record.result.get("best_candidate", 0)),
        )
        if record.result.get("best_score") is not None:
            result.best_score = record.result["best_score"]
        optimization.result.CopyFrom(result)
    return optimization


def candidate_to_proto(candidate: Candidate) -> optimization_pb2.OptimizationCandidate:
    message = optimization_pb2.OptimizationCandidate(
        index=candidate.index, label=candidate.label, module=module_to_proto(candidate.module)
    )
    if candidate.score is not None:
        message.score = candidate.score
    message.parents.extend(candidate.parents)
    message.changed_predictors.extend(candidate.changed_predictors)
    message.instance_scores.extend(candidate.instance_scores)
    return message

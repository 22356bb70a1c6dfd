"""Optimization jobs: DSPy's optimizers on a stored program; the result is a new revision."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..core import bounds
from ..core.bounds import Limits, Range
from ..core.errors import InvalidArgument, NotFound, invalid
from ..core.names import validate_resource_id
from ..modules.build import build_module
from ..modules.spec import LMChoice, ModuleSpec
from ..optimize import program as program_view
from ..optimize.bootstrap import BootstrapConfig, run_bootstrap_few_shot
from ..optimize.context import Candidate, OptimizeContext, Outcome
from ..optimize.copro import CoproConfig, run_copro
from ..optimize.ensemble import EnsembleConfig, run_ensemble
from ..optimize import gepa, simba
from ..optimize.mipro import MiproConfig, run_mipro
from ..optimize.mipro import plan as mipro_plan
from ..optimize.mipro import validate as validate_mipro
from ..optimize.knn_few_shot import EMBED_BATCH_SIZE, KNNFewShotConfig, run_knn_few_shot
from ..optimize.labeled_few_shot import LabeledFewShotConfig, run_labeled_few_shot
from ..modules.metrics import Metric, metric_from_dict, metric_to_dict
from ..optimize.random_search import RandomSearchConfig, run_random_search
from ..optimize.splits import Split
from ..store.jobs import Guard, JobRecord
from ..modules.storage import lm_from_dict, lm_to_dict
from . import job_setup
from .jobs import JobControl, JobKind

KIND = "optimization"

#: Most examples a MIPROv2 minibatch (or a trainset summary batch) may take; DSPy caps its valset at 1000.
MAX_VALSET = 1000
#: Most programs one ensemble combines.
MAX_ENSEMBLE_PROGRAMS = 100

OptimizerConfig = (LabeledFewShotConfig | BootstrapConfig | RandomSearchConfig | CoproConfig | MiproConfig
                   | EnsembleConfig | KNNFewShotConfig | gepa.GepaConfig | simba.SimbaConfig)

#: optimizer name (as stored) -> (config class, runner)
OPTIMIZERS: dict[str, tuple[type, Callable[[OptimizeContext, ModuleSpec, Any], Awaitable[Outcome]]]] = {
    "labeled_few_shot": (LabeledFewShotConfig, run_labeled_few_shot),
    "bootstrap_few_shot": (BootstrapConfig, run_bootstrap_few_shot),
    "random_search": (RandomSearchConfig, run_random_search),
    "copro": (CoproConfig, run_copro),
    "mipro_v2": (MiproConfig, run_mipro),
    "ensemble": (EnsembleConfig, run_ensemble),
    "knn_few_shot": (KNNFewShotConfig, run_knn_few_shot),
    "gepa": (gepa.GepaConfig, gepa.run_gepa),
    "simba": (simba.SimbaConfig, simba.run_simba),
}


@dataclass(frozen=True)
class OptimizationRequest:
    program_id: str
    revision_id: str | None
    #: Empty / None only for ``ensemble``, which needs no data.
    dataset_id: str
    metric: Metric | None
    optimizer: str
    config: OptimizerConfig
    split: Split | None = None
    task_lm: LMChoice = LMChoice()
    teacher_lm: LMChoice = LMChoice()
    prompt_lm: LMChoice = LMChoice()
    num_threads: int = 0
    max_errors: int | None = None
    activate: bool = False
    display_name: str = ""


def config_ranges(limits: Limits) -> dict[type, dict[str, Range]]:
    """The bounds of every number in each optimizer's config (fields not listed are not numbers)."""

    demos, rounds = Range(0, limits.max_demos), Range(1, limits.max_rounds)
    common = {"max_bootstrapped_demos": demos, "max_labeled_demos": demos, "max_rounds": rounds,
              "metric_threshold": bounds.FINITE}
    return {
        LabeledFewShotConfig: {"k": demos},
        BootstrapConfig: common,
        RandomSearchConfig: {**common, "num_candidate_programs": Range(0, limits.max_candidates),
                             "stop_at_score": bounds.FINITE},
        CoproConfig: {"breadth": Range(2, limits.max_candidates), "depth": Range(1, limits.max_depth),
                      "init_temperature": bounds.TEMPERATURE},
        MiproConfig: {**common, "num_candidates": Range(1, limits.max_candidates),
                      "num_trials": Range(1, limits.max_trials), "minibatch_size": Range(1, MAX_VALSET),
                      "minibatch_full_eval_steps": Range(1, limits.max_trials), "init_temperature": bounds.TEMPERATURE,
                      "seed": bounds.SEED, "view_data_batch_size": Range(1, MAX_VALSET)},
        EnsembleConfig: {"seed": bounds.SEED, "size": Range(0, MAX_ENSEMBLE_PROGRAMS)},
        KNNFewShotConfig: {"k": Range(1, limits.max_demos), "max_bootstrapped_demos": demos,
                           "max_labeled_demos": demos, "max_rounds": rounds},
        # The budgets these give relate to the data: gepa.validate and simba.validate check those.
        gepa.GepaConfig: {"seed": bounds.SEED, "failure_score": bounds.FINITE, "perfect_score": bounds.FINITE,
                          "max_full_evals": Range(1, gepa.MAX_FULL_EVALS),
                          "max_metric_calls": Range(1, gepa.MAX_METRIC_CALLS),
                          "reflection_minibatch_size": Range(1, gepa.MAX_MINIBATCH),
                          "max_merge_invocations": Range(0, gepa.MAX_MERGES)},
        simba.SimbaConfig: {"seed": bounds.SEED, "bsize": Range(1, simba.MAX_BSIZE),
                            "num_candidates": Range(1, simba.MAX_CANDIDATES), "max_steps": Range(1, simba.MAX_STEPS),
                            "max_demos": Range(0, simba.MAX_DEMOS),
                            "demo_input_field_maxlen": Range(0, simba.MAX_FIELD_LENGTH)},
    }


def check_ranges(name: str, config: Any, limits: Limits) -> None:
    """Every number of the config within its bounds (INVALID_ARGUMENT naming the field otherwise)."""

    for key, allowed in config_ranges(limits)[type(config)].items():
        allowed.check(getattr(config, key), f"optimization.{name}.{key}")
    if isinstance(config, EnsembleConfig) and len(config.programs) > MAX_ENSEMBLE_PROGRAMS:
        raise invalid(f"optimization.{name}.programs", f"must list at most {MAX_ENSEMBLE_PROGRAMS} programs")


def _check_config(name: str, config: Any, predictors: int, trainset_size: int, valset_size: int | None) -> None:
    """The checks that relate a config's numbers to each other and to the data (ranges come first)."""

    path = f"optimization.{name}"
    if isinstance(config, MiproConfig):
        validate_mipro(config, predictors, trainset_size, valset_size, path)
    if isinstance(config, gepa.GepaConfig):
        gepa.validate(config, predictors, trainset_size, valset_size, path)
    if isinstance(config, simba.SimbaConfig):
        simba.validate(config, trainset_size, path)
    if isinstance(config, RandomSearchConfig):
        if config.num_candidate_programs > 0 and config.max_bootstrapped_demos < 1:
            raise invalid(f"{path}.max_bootstrapped_demos",
                          "must be at least 1: each shuffled candidate bootstraps 1..max_bootstrapped_demos demos")
    if isinstance(config, BootstrapConfig) and config.max_bootstrapped_demos == 0 and config.max_labeled_demos == 0:
        raise invalid(f"{path}.max_bootstrapped_demos", "and max_labeled_demos are both 0: nothing to optimize")


def planned_lm_calls(config: Any, predictors: int, train: int, val: int | None) -> int:
    """About how many LM calls the job will make (admission control): program runs times the
    program's predictors, plus the prompt LM's proposals. Rough, but it grows as the work does."""

    per_run = max(1, predictors)
    scored = val if val is not None else train
    if isinstance(config, LabeledFewShotConfig):
        return 0
    if isinstance(config, RandomSearchConfig):
        runs = ((config.num_candidate_programs + 3) * scored
                + (config.num_candidate_programs + 1) * train * config.max_rounds)
        return runs * per_run
    if isinstance(config, BootstrapConfig):
        return train * config.max_rounds * per_run
    if isinstance(config, CoproConfig):
        candidates = config.breadth * config.depth * per_run
        return candidates * train * per_run + config.depth * per_run
    if isinstance(config, MiproConfig):
        valset = val if val is not None else min(1000, max(1, int(train * 0.8)))
        budget = mipro_plan(config, per_run, valset)
        return budget.lm_calls * per_run + budget.fewshot_n * train * config.max_rounds * per_run
    if isinstance(config, EnsembleConfig):
        return (len(config.programs) + (config.size or len(config.programs))) * (scored if train else 0) * per_run
    if isinstance(config, KNNFewShotConfig):
        embeddings = -(-train // EMBED_BATCH_SIZE)
        return embeddings + (val or 0) * (1 + config.k * config.max_rounds) * per_run
    if isinstance(config, gepa.GepaConfig):
        metric_calls = gepa.metric_budget(config, predictors, train, val)
        return metric_calls * per_run + -(-metric_calls // config.reflection_minibatch_size)
    if isinstance(config, simba.SimbaConfig):
        steps = config.max_steps * config.num_candidates  # one rule or demo proposal per candidate and step
        return simba.planned_runs(config, train) * per_run + steps
    raise AssertionError(type(config))  # pragma: no cover - every optimizer is listed


def check_embedding_model(registry: Any, alias: str, path: str) -> None:
    if not alias:
        raise invalid(path, "is required: the alias of an embedding model (kind = \"embedding\")")
    if alias not in registry.aliases():
        raise invalid(path, f"{alias!r} is not a configured model (known: {', '.join(registry.aliases())})")
    if registry.config(alias).kind != "embedding":
        raise invalid(path, f"{alias!r} is a chat model; name a model configured with kind = \"embedding\"")


def _check_chat_model(registry: Any, choice: LMChoice, path: str) -> None:
    if not choice.model:
        return  # a scripted (dummy) LM
    if choice.model not in registry.aliases():
        raise invalid(f"{path}.model", f"{choice.model!r} is not a configured model "
                      f"(known: {', '.join(registry.aliases())})")
    if registry.config(choice.model).kind == "embedding":
        raise invalid(f"{path}.model", f"{choice.model!r} is an embedding model; name a chat model")


class Optimizations(JobKind):
    KIND = KIND

    async def create(self, job_id: str, request: OptimizationRequest) -> JobRecord:
        job_id = validate_resource_id(job_id, field="optimization_id") if job_id else f"opt-{secrets.token_hex(6)}"
        path = "optimization"
        if request.optimizer not in OPTIMIZERS:
            raise invalid(f"{path}.optimizer", "set one of: " + ", ".join(OPTIMIZERS))
        check_ranges(request.optimizer, request.config, self._limits)
        program = await self._programs.get(request.program_id, request.revision_id)
        config = request.config
        extra: dict[str, Any] = {}
        if isinstance(config, EnsembleConfig):
            config, module = await self._ensemble(config, f"{path}.ensemble")
            extra["module"] = program_view.to_json(module)
            if bool(request.dataset_id) != (request.metric is not None):
                missing = "metric" if request.dataset_id else "dataset"
                raise invalid(f"{path}.{missing}", "is required with the "
                              f"{'dataset' if missing == 'metric' else 'metric'}: an ensemble is scored with both")
        else:
            module = program.module
            program_view.check_optimizable(module, f"{path}.program")
            if not request.dataset_id or request.metric is None:
                raise invalid(f"{path}.{'metric' if request.dataset_id else 'dataset'}", "is required")
        example_count = 0
        trainset: list = []
        valset: list | None = None
        if request.dataset_id:
            dataset = await self._datasets.get(request.dataset_id)
            example_count = dataset.example_count
            trainset, valset = await self._sets(request.dataset_id, request.split, example_count, path)
            if not trainset:
                raise invalid(f"{path}.dataset", "has no training examples")
            if valset is not None and not valset:
                raise invalid(f"{path}.split.dev_fraction", "leaves no validation examples")
            everything = trainset + (valset or [])
            job_setup.check_inputs(module, everything, f"{path}.dataset")
            assert request.metric is not None
            job_setup.check_metric(request.metric, module, everything, f"{path}.metric")
            _check_config(request.optimizer, config, len(program_view.predictors(module)), len(trainset),
                          None if valset is None else len(valset))
            if isinstance(config, KNNFewShotConfig) and config.bootstrap_metric:
                job_setup.check_metric(metric_from_dict(config.bootstrap_metric), module, trainset,
                                       f"{path}.{request.optimizer}.bootstrap_metric")
        if isinstance(config, gepa.GepaConfig):
            _check_chat_model(self._registry, lm_from_dict(config.reflection_lm), f"{path}.gepa.reflection_lm")
        if isinstance(config, KNNFewShotConfig):
            check_embedding_model(self._registry, config.embedding_model, f"{path}.{request.optimizer}.embedding_model")
        planned = planned_lm_calls(config, len(program_view.predictors(module)), len(trainset),
                                   None if not request.dataset_id or valset is None else len(valset))
        self._limits.admit(planned, f"{path}.{request.optimizer}")
        spec = {
            "program": f"programs/{request.program_id}" + (f"@{request.revision_id}" if request.revision_id else ""),
            "program_id": program.record.program_id, "revision_id": program.record.revision_id,
            "dataset_id": request.dataset_id, "example_count": example_count,
            "split": request.split.to_dict() if request.split else None,
            "metric": metric_to_dict(request.metric) if request.metric is not None else None,
            "optimizer": request.optimizer, "config": dataclasses.asdict(config),
            "task_lm": lm_to_dict(request.task_lm), "teacher_lm": lm_to_dict(request.teacher_lm),
            "prompt_lm": lm_to_dict(request.prompt_lm),
            "num_threads": job_setup.num_threads(request.num_threads, f"{path}.num_threads", self._limits),
            "max_errors": job_setup.max_errors(request.max_errors, f"{path}.max_errors"),
            "activate": request.activate, "display_name": request.display_name, **extra,
        }
        record = await self._store.create(KIND, job_id, spec, {"phase": "queued", "lm_calls_planned": planned})
        await self._host.launch(record)
        return await self._store.get(KIND, job_id)

    async def _ensemble(self, config: EnsembleConfig, path: str) -> tuple[EnsembleConfig, ModuleSpec]:
        """The programs' revisions resolved now (the config then names the exact revisions), and the
        ensemble module, checked: unknown revisions and incompatible signatures name the program."""

        if not config.programs:
            raise invalid(f"{path}.programs", "is required: at least one program revision")
        resolved, modules = [], []
        for index, (program_id, revision_id) in enumerate(config.programs):
            try:
                member = await self._programs.get(program_id, revision_id)
            except (NotFound, InvalidArgument) as error:
                raise invalid(f"{path}.programs[{index}]", error.message) from None
            resolved.append((member.record.program_id, member.record.revision_id))
            modules.append(member.module)
        config = dataclasses.replace(config, programs=tuple(resolved))
        module = config.module(modules)
        build_module(module, path.rpartition(".")[0])
        return config, module

    async def _sets(self, dataset_id: str, split: Split | None, count: int, path: str):
        if split is None:
            return await self._datasets.examples(dataset_id, count=count), None
        split.validate(f"{path}.split")
        train = await self._datasets.examples(dataset_id, split=split, part="train", count=count)
        dev = await self._datasets.examples(dataset_id, split=split, part="dev", count=count)
        return train, dev

    async def candidates(self, job_id: str, *, page_size: int, page_token: str) -> tuple[list[Candidate], str]:
        await self._store.get(KIND, job_id)
        rows, token = await self._store.candidates_page(KIND, job_id, page_size=page_size, page_token=page_token)
        return [
            Candidate(index, data["label"], program_view.from_json(data["module"]), data.get("score"),
                      tuple(data.get("parents", ())), tuple(data.get("changed_predictors", ())),
                      tuple(data.get("instance_scores", ())))
            for index, data in rows
        ], token

    async def _body(self, record: JobRecord, control: JobControl) -> dict[str, Any]:
        spec = record.spec
        if "module" in spec:  # built when the job was created (ensemble)
            student = program_view.from_json(spec["module"])
        else:
            student = (await self._programs.get(spec["program_id"], spec["revision_id"])).module
        split = Split.from_dict(spec["split"]) if spec.get("split") else None
        trainset, valset = [], None
        if spec.get("dataset_id"):
            trainset, valset = await self._sets(spec["dataset_id"], split, spec["example_count"], "optimization")
        progress = control.progress
        journal = await control.journal()
        runner = job_setup.build_runner(
            self._registry, self._default_model, journal, progress, task_lm=lm_from_dict(spec["task_lm"]),
            teacher_lm=lm_from_dict(spec["teacher_lm"]), prompt_lm=lm_from_dict(spec["prompt_lm"]),
            threads=spec["num_threads"], program=student, retrievers=self._retrievers, live=self._live,
        )

        async def record_candidate(candidate: Candidate) -> None:
            data: dict[str, Any] = {
                "label": candidate.label, "score": candidate.score, "module": program_view.to_json(candidate.module),
            }
            if candidate.parents or candidate.instance_scores:
                data.update(parents=list(candidate.parents), changed_predictors=list(candidate.changed_predictors),
                            instance_scores=list(candidate.instance_scores))
            await self._store.put_candidate(control.lease, candidate.index, data)
            control.announce()

        config_class, run = OPTIMIZERS[spec["optimizer"]]
        metric = metric_from_dict(spec["metric"]) if spec.get("metric") else None
        ctx = OptimizeContext(runner, metric, trainset, valset,  # type: ignore[arg-type] - no metric: no data
                              max_errors=spec["max_errors"], record_candidate=record_candidate)
        outcome = await run(ctx, student, config_class(**spec["config"]))
        progress.update(phase="finalize", current_candidate="")
        revision = await self._write_revision(record, outcome.module, activate=spec["activate"],
                                              guard=self._store.guard(control.lease))
        result: dict[str, Any] = {
            "program_revision": f"programs/{spec['program_id']}@{revision}", "activated": spec["activate"],
            "best_candidate": outcome.best_candidate,
        }
        if outcome.best_score is not None:
            result["best_score"] = outcome.best_score
        return result

    async def _write_revision(self, record: JobRecord, module: ModuleSpec, *, activate: bool, guard: Guard) -> str:
        """Write the result as a new revision -- once: a job resumed after writing it finds it again;
        ``guard`` refuses the write from a replica that no longer holds the job."""

        program_id = record.spec["program_id"]
        wanted = program_view.to_json(module)
        revisions, _ = await self._programs.list_revisions(program_id, page_size=50, page_token="")
        for revision in revisions:
            if revision.record.revision_create_time < record.create_time:
                break
            if program_view.to_json(revision.module) == wanted:
                return revision.record.revision_id
        written = await self._programs.update(program_id, module=module, activate=activate, guard=guard)
        return written.record.revision_id

"""DSPy's ``KNNFewShot``: the job that builds the program, and the per-call bootstrapping it runs.

The job embeds every training example's input text once with the embedding model (batches of 200,
DSPy's ``Embedder`` default) and writes a ``knn_few_shot`` module holding the student, the examples
and their vectors (see :mod:`~dspy_grpc_server.modules.knn`). DSPy's compile does not evaluate; with a
dataset split the job scores the program on the dev part (``best_score``), which costs one run per
dev example.

On every call the program bootstraps demos from the ``k`` nearest examples with
:class:`BootstrapFewShot` -- the same loop the ``bootstrap_few_shot`` optimizer runs -- through
:class:`ServingBootstrapper`, which the app layer gives the engine. DSPy's KNNFewShot passes its
``few_shot_bootstrap_args`` to BootstrapFewShot; without a metric there (its documented use) every
teacher run that completes is a demo, and so it is here unless the program names a metric (the
job's ``bootstrap_metric``): then a teacher run must pass it, scored as BootstrapFewShot scores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.example import Example
from ..modules.build import build_module
from ..modules.context import RunContext
from ..modules.knn import training_text
from ..modules.metrics import metric_from_dict
from ..modules.prediction import Prediction
from ..modules.spec import KNNExample, KNNFewShotSpec, LMChoice, ModuleSpec
from .bootstrap import BootstrapConfig, BootstrapFewShot
from .context import Candidate, OptimizeContext, Outcome, examples_only
from .runner import ProgramRunner

#: Texts per embeddings request (DSPy's ``Embedder(batch_size=200)``).
EMBED_BATCH_SIZE = 200


@dataclass(frozen=True)
class KNNFewShotConfig:
    k: int = 0
    embedding_model: str = ""
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    #: The per-call bootstrap's metric (as ``metric_to_dict``; stored in the job's config as JSON).
    bootstrap_metric: dict[str, Any] | None = None


class _WithinRequest:
    """The engine a :class:`ProgramRunner` needs, running programs inside one request's context:
    its LMs, deadline and usage, a trace of their own, no streamed events. A runner's rollout
    options (BootstrapFewShot's later rounds) apply to every LM call of the run."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    async def run(self, module: ModuleSpec, inputs: Mapping[str, Any], *, request_lm: LMChoice | None = None,
                  include_trace: bool = False) -> Prediction:
        overrides = self.ctx.option_overrides
        options = request_lm.options if request_lm is not None else None
        if options is not None and options.rollout_id is not None:
            overrides = dataclasses.replace(overrides, rollout_id=options.rollout_id, temperature=options.temperature)
        scoped = self.ctx.scoped(trace=[], include_trace=include_trace, emit=None, option_overrides=overrides)
        outputs = await build_module(module)(inputs, scoped)
        return Prediction(outputs=outputs, trace=scoped.trace)


class ServingBootstrapper:
    """BootstrapFewShot over a KNNFewShot call's neighbours (DSPy's per-call compile)."""

    async def bootstrap(self, spec: KNNFewShotSpec, trainset: Sequence[Example], ctx: RunContext) -> ModuleSpec:
        # The teacher runs on the request's LMs unless the program names a teacher LM.
        runner = ProgramRunner(_WithinRequest(ctx), task_lm=LMChoice(), teacher_lm=spec.teacher_lm)  # type: ignore[arg-type]
        octx = OptimizeContext(runner, spec.metric, list(enumerate(trainset)))
        config = BootstrapConfig(spec.max_bootstrapped_demos, spec.max_labeled_demos, spec.max_rounds)
        return await BootstrapFewShot(octx, config).compile(spec.module, trainset)


async def embed_trainset(ctx: OptimizeContext, model: str, trainset: Sequence[Example]) -> list[tuple[float, ...]]:
    lm = ctx.runner.registry.get(model)
    texts = [training_text(example) for example in trainset]
    vectors: list[tuple[float, ...]] = []
    for start in range(0, len(texts), EMBED_BATCH_SIZE):
        response = await lm.embed(texts[start:start + EMBED_BATCH_SIZE])
        vectors.extend(response.vectors)
    return vectors


async def run_knn_few_shot(ctx: OptimizeContext, student: ModuleSpec, config: KNNFewShotConfig) -> Outcome:
    trainset = examples_only(ctx.trainset)
    ctx.progress.update(phase="embed", lm_calls_planned=-(-len(trainset) // EMBED_BATCH_SIZE))
    vectors = await embed_trainset(ctx, config.embedding_model, trainset)
    module = KNNFewShotSpec(
        module=student, k=config.k, embedding_model=config.embedding_model,
        examples=tuple(KNNExample(example, vector) for example, vector in zip(trainset, vectors, strict=True)),
        max_bootstrapped_demos=config.max_bootstrapped_demos, max_labeled_demos=config.max_labeled_demos,
        max_rounds=config.max_rounds, teacher_lm=ctx.runner.teacher_override or LMChoice(),
        metric=metric_from_dict(config.bootstrap_metric) if config.bootstrap_metric else None,
    )
    if not ctx.valset:
        return Outcome(module)
    ctx.progress.update(phase="evaluate", current_candidate="knn")
    evaluation = await ctx.evaluate(module, ctx.valset)
    await ctx.record_candidate(Candidate(0, "knn", module, evaluation.score))
    ctx.progress.update(best_score=evaluation.score)
    return Outcome(module, best_score=evaluation.score)

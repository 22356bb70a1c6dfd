"""Rebuilding a module spec predictor by predictor, each visited under the name DSPy gives it.

The names are the ones :func:`~.build.build_module`'s nodes report (``named_predictors()``):
"self" for a bare Predict, "predict" under a ChainOfThought, "<step>...." under a graph step,
"module...." under wrappers, a loop's body steps under the module holding the loop, "programs[i]...." under an ensemble, the student's own names under
KNNFewShot, "react" and "extract.predict" for
ReAct. Subclasses override :meth:`plain` and :meth:`react`; the walk itself is here only.
"""

from __future__ import annotations

from dataclasses import replace

from ..core.signature import Signature, with_reasoning
from .derive import mcc_signature
from .node import join
from .spec import (
    BestOfNSpec,
    ChainOfThoughtSpec,
    EnsembleSpec,
    GraphSpec,
    KNNFewShotSpec,
    LoopSpec,
    MajoritySpec,
    ModuleSpec,
    MultiChainComparisonSpec,
    ParallelSpec,
    PredictorSpec,
    PredictSpec,
    ReActSpec,
    RefineSpec,
    RetrieveSpec,
    ValueSpec,
)


class PredictorRewriter:
    """Returns a copy of a spec with each predictor replaced as the subclass decides."""

    def plain(self, predictor: PredictorSpec, name: str, signature: Signature) -> PredictorSpec:
        """A predictor whose spec holds its own demos and instructions (Predict, ChainOfThought's and
        MultiChainComparison's ``predict``); ``signature`` is the one it runs (derived fields included)."""

        return predictor

    def react(self, spec: ReActSpec, name: str) -> ReActSpec:
        """A ReAct module, whose ``react`` and ``extract.predict`` predictors share the user's
        signature and LM and keep their demos and instructions in ``spec.react`` / ``spec.extract``."""

        return spec

    def apply(self, spec: ModuleSpec, name: str = "") -> ModuleSpec:
        if isinstance(spec, PredictSpec):
            return replace(spec, predictor=self.plain(spec.predictor, name or "self", spec.predictor.signature))
        if isinstance(spec, ChainOfThoughtSpec):
            return replace(spec, predictor=self.plain(spec.predictor, join(name, "predict"),
                                                      with_reasoning(spec.predictor.signature)))
        if isinstance(spec, MultiChainComparisonSpec):
            predictor = self.plain(spec.predictor, join(name, "predict"),
                                   mcc_signature(spec.predictor.signature, spec.m))
            generator = self.apply(spec.generator, join(name, "generator")) if spec.generator else None
            return replace(spec, predictor=predictor, generator=generator)
        if isinstance(spec, ReActSpec):
            return self.react(spec, name)
        if isinstance(spec, (BestOfNSpec, RefineSpec, ParallelSpec, MajoritySpec)):
            return replace(spec, module=self.apply(spec.module, join(name, "module")))
        if isinstance(spec, GraphSpec):
            return self._graph(spec, name)
        if isinstance(spec, LoopSpec):  # the body's steps are attributes of the module holding the loop
            return replace(spec, body=self._graph(spec.body, name))
        if isinstance(spec, (RetrieveSpec, ValueSpec)):
            return spec
        if isinstance(spec, KNNFewShotSpec):  # the compiled program is the student: same names
            return replace(spec, module=self.apply(spec.module, name))
        if isinstance(spec, EnsembleSpec):
            programs = tuple(self.apply(program, join(name, f"programs[{index}]"))
                             for index, program in enumerate(spec.programs))
            return replace(spec, programs=programs)
        raise TypeError(f"unknown module spec {spec!r}")  # pragma: no cover

    def _graph(self, spec: GraphSpec, name: str) -> GraphSpec:
        steps = tuple(
            replace(step, module=replace(step.module, body=self._graph(step.module.body, name)))
            if isinstance(step.module, LoopSpec) else replace(step, module=self.apply(step.module, join(name, step.name)))
            for step in spec.steps
        )
        return replace(spec, steps=steps)

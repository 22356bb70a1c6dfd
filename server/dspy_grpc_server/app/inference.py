"""Running, rendering and parsing for a stored program or an inline module.

Stored programs run through their :class:`~.workers.ProgramWorker` (built once, with metrics and
input quarantine); inline modules are built per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import telemetry
from ..core.errors import DspyGrpcError
from ..lm.attribution import attributed
from ..lm.deadline import Deadline
from ..modules.build import build_module
from ..modules.engine import Engine
from ..modules.events import Event, FieldDelta
from ..modules.node import Node
from ..modules.prediction import Prediction
from ..modules.predictor import RenderedPrompt
from ..modules.spec import LMChoice, ModuleSpec
from ..modules.tools import ToolRunner
from ..optimize.live_traffic import LiveTraffic
from .workers import ProgramWorker, ProgramWorkers

#: BatchPredict: items run at once by default, and at most.
DEFAULT_BATCH_CONCURRENCY = 8
MAX_BATCH_CONCURRENCY = 64


@dataclass(frozen=True)
class ProgramRef:
    """A stored program, optionally pinned to a revision."""

    program_id: str
    revision_id: str | None = None


@dataclass(frozen=True)
class ProgramPrediction:
    prediction: Prediction
    program_id: str = ""
    revision_id: str = ""


@dataclass(frozen=True)
class BatchItem:
    """One finished BatchPredict item: a prediction or the domain error it failed with."""

    index: int
    result: ProgramPrediction | None = None
    error: DspyGrpcError | None = None


Target = ProgramRef | ModuleSpec


@dataclass(frozen=True)
class _Resolved:
    node: Node
    kind: str
    worker: ProgramWorker | None = None

    @property
    def program_id(self) -> str:
        return self.worker.program_id if self.worker else ""

    @property
    def revision_id(self) -> str:
        return self.worker.revision_id if self.worker else ""


class Inference:
    def __init__(self, workers: ProgramWorkers, engine: Engine, live: LiveTraffic | None = None) -> None:
        self._workers = workers
        self._engine = engine
        #: Counts the runs in flight, so that jobs give way to them (optimize.live_traffic).
        self._live = live or LiveTraffic()

    async def _resolve(self, target: Target) -> _Resolved:
        """The tree to run and, for stored programs, the worker that runs it."""

        if isinstance(target, ProgramRef):
            worker = await self._workers.get(target.program_id, target.revision_id)
            return _Resolved(worker.node, worker.node.kind, worker)
        return _Resolved(build_module(target, "module"), target.kind.value)

    async def predict(
        self,
        target: Target,
        inputs: Mapping[str, Any],
        *,
        request_lm: LMChoice | None = None,
        deadline: Deadline | None = None,
        include_trace: bool = False,
        emit: Callable[[Event], None] | None = None,
        tools: ToolRunner | None = None,
    ) -> ProgramPrediction:
        """Run the target once; ``emit`` receives streaming events, ``tools`` runs caller tools."""

        resolved = await self._resolve(target)
        return await self._run(resolved, inputs, request_lm=request_lm, deadline=deadline,
                               include_trace=include_trace, emit=emit, tools=tools)

    async def _run(self, resolved: _Resolved, inputs: Mapping[str, Any], *, request_lm: LMChoice | None,
                   deadline: Deadline | None, include_trace: bool, emit: Callable[[Event], None] | None = None,
                   tools: ToolRunner | None = None) -> ProgramPrediction:
        async def call(node: Node) -> Prediction:
            return await self._engine.run(node, inputs, request_lm=request_lm, deadline=deadline,
                                          include_trace=include_trace, emit=emit, tools=tools)

        program_id = resolved.program_id
        with self._live.call(), telemetry.program_call(program_id or "inline", resolved.kind), \
                attributed(program_id=program_id):
            if resolved.worker is None:
                prediction = await call(resolved.node)
            else:
                prediction = await self._workers.run(resolved.worker, inputs, deadline, call)
        return ProgramPrediction(prediction, program_id, resolved.revision_id)

    async def stream_predict(
        self,
        target: Target,
        inputs: Mapping[str, Any],
        *,
        request_lm: LMChoice | None = None,
        deadline: Deadline | None = None,
        include_trace: bool = False,
        tools: ToolRunner | None = None,
        extra_events: asyncio.Queue[Any] | None = None,
    ) -> AsyncIterator[Event | ProgramPrediction | Any]:
        """The run's events as they happen, then its :class:`ProgramPrediction`. Items put on
        ``extra_events`` (Run's tool calls) are interleaved. Closing the iterator cancels the run.

        Deltas of one field that queued up while the caller was taking the previous item come as
        one (their texts joined): a caller reading slower than the LM streams gets fewer, larger
        deltas instead of falling further behind, with the same text in the same order."""

        resolved = await self._resolve(target)
        queue: asyncio.Queue[Any] = extra_events if extra_events is not None else asyncio.Queue()
        finished = object()

        async def produce() -> ProgramPrediction:
            try:
                return await self._run(resolved, inputs, request_lm=request_lm, deadline=deadline,
                                       include_trace=include_trace, emit=queue.put_nowait, tools=tools)
            finally:
                queue.put_nowait(finished)

        task = asyncio.ensure_future(produce())
        try:
            ahead: Any = None  # an item taken from the queue that did not join the delta before it
            while True:
                if ahead is not None:
                    item, ahead = ahead, None
                else:
                    item = await queue.get()
                if item is finished:
                    break
                while isinstance(item, FieldDelta) and not item.last and not queue.empty():
                    following = queue.get_nowait()
                    if not (isinstance(following, FieldDelta) and following.predictor == item.predictor
                            and following.field == item.field):
                        ahead = following
                        break
                    item = FieldDelta(item.predictor, item.field, item.text + following.text, following.last)
                yield item
            yield task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def batch_predict(
        self,
        target: Target,
        inputs: Sequence[Mapping[str, Any]],
        *,
        request_lm: LMChoice | None = None,
        deadline: Deadline | None = None,
        include_trace: bool = False,
        max_concurrency: int = 0,
    ) -> AsyncIterator[BatchItem]:
        """Each item's outcome as it finishes; one item's failure is that item's error."""

        resolved = await self._resolve(target)
        gate = asyncio.Semaphore(min(max_concurrency or DEFAULT_BATCH_CONCURRENCY, MAX_BATCH_CONCURRENCY))

        async def one(index: int, values: Mapping[str, Any]) -> BatchItem:
            async with gate:
                try:
                    result = await self._run(resolved, values, request_lm=request_lm, deadline=deadline,
                                             include_trace=include_trace)
                except DspyGrpcError as error:
                    return BatchItem(index, error=error)
                return BatchItem(index, result=result)

        tasks = [asyncio.ensure_future(one(index, values)) for index, values in enumerate(inputs)]
        try:
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def render_prompt(
        self, target: Target, inputs: Mapping[str, Any], *, predictor: str = "", adapter: str | None = None
    ) -> tuple[str, RenderedPrompt]:
        resolved = await self._resolve(target)
        return self._engine.render(resolved.node, inputs, predictor=predictor, adapter=adapter)

    async def parse_completion(
        self, target: Target, completion: str, *, predictor: str = "", adapter: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        resolved = await self._resolve(target)
        return self._engine.parse(resolved.node, completion, predictor=predictor, adapter=adapter)

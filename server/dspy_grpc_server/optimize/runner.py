"""Runs a job's programs: one engine (with journaled LMs), the LM choices, and the concurrency cap."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ..core.errors import ParseError
from ..core.example import Example
from ..core.signature import Signature
from ..lm.types import LMRequest
from ..modules.engine import Engine
from ..modules.lm_resolver import LMResolver
from ..modules.predictor import NamedPredictor, parse, render
from ..modules.spec import ChainOfThoughtSpec, LMChoice, ModuleSpec, PredictorSpec, PredictSpec
from ..modules.metrics import Assessment, LMJudgeMetric, Metric, Scored, assess
from .live_traffic import LiveTraffic
from .progress import Progress


@dataclass(frozen=True)
class Run:
    """One program run: final outputs, each predictor's last outputs, and the trace steps."""

    outputs: Mapping[str, Any]
    trace: tuple[Any, ...]

    def scored(self) -> Scored:
        last: dict[str, Mapping[str, Any]] = {}
        for step in self.trace:
            last[step.predictor] = step.outputs
        return Scored(self.outputs, last)


class PrioritySlots:
    """A semaphore whose waiters get a free slot lowest ``priority`` first (first come, first served
    among equals): work an optimizer needs sooner goes ahead of work it has started early.

    With ``live`` traffic, fewer slots are handed out while live calls are in flight (see
    :mod:`.live_traffic`); slots held then are kept until released."""

    def __init__(self, size: int, live: LiveTraffic | None = None) -> None:
        self._size = size
        self._in_use = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._live = live
        if live is not None:
            live.listen(self)

    def _limit(self) -> int:
        return self._live.limit(self._size) if self._live is not None else self._size

    async def acquire(self, priority: int) -> None:
        if not self._waiting and self._in_use < self._limit():
            self._in_use += 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrivals), granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # granted just before the cancellation: hand the slot on
            raise

    def release(self) -> None:
        self._in_use -= 1
        self.fill()

    def fill(self) -> None:
        """Hand free slots (up to the limit now) to the best waiters."""

        while self._waiting and self._in_use < self._limit():
            _, _, granted = heapq.heappop(self._waiting)
            if not granted.done():  # cancelled waiters stay in the heap until they come up
                self._in_use += 1
                granted.set_result(None)


class ProgramRunner:
    """What optimizers and evaluations use to run programs and metrics within one job.

    ``slot()`` bounds how many program runs (with their metric) go at once -- DSPy's ``num_threads`` --
    and so does every other sequence of LM calls an optimizer makes (a trainset summary, one
    instruction proposal: the work one DSPy thread would do). A waiting slot with a lower
    ``priority`` number is served first. With ``live`` traffic, fewer slots go out while live calls
    are in flight (:mod:`.live_traffic`).
    """

    def __init__(self, engine: Engine, *, task_lm: LMChoice, teacher_lm: LMChoice | None = None,
                 prompt_lm: LMChoice | None = None, num_threads: int = 8, progress: Progress | None = None,
                 registry: Any = None, default_model: str = "", program_lm: LMChoice | None = None,
                 live: LiveTraffic | None = None) -> None:
        self.engine = engine
        self.registry = registry
        self.default_model = default_model
        self.task_lm = task_lm
        # Helpers (teacher, proposals, judges) default to the task LM, else to the LM the program's
        # first predictor names -- DSPy's "the configured LM".
        fallback = task_lm if task_lm.is_set or program_lm is None else program_lm
        self.teacher_lm = teacher_lm if teacher_lm is not None and teacher_lm.is_set else task_lm
        #: A teacher LM given explicitly is set on the teacher's predictors (DSPy's ``teacher.set_lm``).
        self.teacher_override = teacher_lm if teacher_lm is not None and teacher_lm.is_set else None
        self.prompt_lm = prompt_lm if prompt_lm is not None and prompt_lm.is_set else fallback
        self.judge_lm = fallback
        self.num_threads = max(1, num_threads)
        self.progress = progress or Progress()
        self._slots = PrioritySlots(self.num_threads, live)

    @asynccontextmanager
    async def slot(self, priority: int = 0) -> AsyncIterator[None]:
        await self._slots.acquire(priority)
        try:
            yield
        finally:
            self._slots.release()

    async def run(self, module: ModuleSpec, example: Example, *, lm: LMChoice | None = None) -> Run:
        prediction = await self.engine.run(
            module, example.inputs(), request_lm=lm if lm is not None else self.task_lm, include_trace=True
        )
        return Run(dict(prediction.outputs), tuple(prediction.trace))

    async def predict_n(self, signature: Signature, inputs: Mapping[str, Any], *, n: int, temperature: float,
                        lm: LMChoice | None = None) -> list[dict[str, Any]]:
        """One LM call asking for ``n`` completions of ``signature`` (DSPy's ``Predict(sig, n=n)``):
        the parsed outputs of each completion that parses (ParseError when none does). The caller
        holds a ``slot()``."""

        resolver = LMResolver(self.registry, request_choice=lm or self.prompt_lm, default_model=self.default_model)
        choice = resolver.choose(LMChoice())
        predictor = NamedPredictor("proposer", PredictorSpec(signature=signature), signature)
        rendered = render(predictor, inputs)
        options = dataclasses.replace(rendered.options.merged_over(choice.options), n=n, temperature=temperature)
        response = await resolver.lm_for(choice).complete(LMRequest(tuple(rendered.messages), options))
        outputs, last_error = [], None
        for text in response.texts:
            try:
                outputs.append(parse(predictor, text))
            except ParseError as error:
                last_error = error
        if not outputs and last_error is not None:
            raise last_error
        return outputs

    async def judge(self, metric: LMJudgeMetric, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        judge = metric.judge
        module = ChainOfThoughtSpec(predictor=judge) if metric.chain_of_thought else PredictSpec(predictor=judge)
        prediction = await self.engine.run(module, inputs, request_lm=self.judge_lm)
        return prediction.outputs

    async def assess(self, metric: Metric, example: Example, run: Run, *, bootstrapping: bool = False) -> Assessment:
        """The metric's score and feedback for one run."""

        return await assess(metric, example.data, run.scored(), judge=self.judge, bootstrapping=bootstrapping)

    async def score(self, metric: Metric, example: Example, run: Run, *, bootstrapping: bool = False) -> float:
        return (await self.assess(metric, example, run, bootstrapping=bootstrapping)).score


def with_rollout(choice: LMChoice, rollout_id: int, temperature: float) -> LMChoice:
    """DSPy's ``lm.copy(rollout_id=..., temperature=...)`` for the LM a choice names."""

    options = dataclasses.replace(choice.options, rollout_id=rollout_id, temperature=temperature)
    return dataclasses.replace(choice, options=options)

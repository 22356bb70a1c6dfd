"""Long-running jobs: started under the supervisor, resumed after a restart, watched, cancelled.

Each kind of job (``evaluation``, ``optimization``) registers a body: an async function given the
stored job and a :class:`JobControl`, returning the result (plain JSON). The host runs every job
as a TEMPORARY child of its supervisor (a body never raises: failures are recorded on the job),
so cancelling a job stops its task -- and the LM calls it is awaiting -- at once. Jobs that were
queued or running when the server stopped are started again by :meth:`JobHost.resume`; what they
had persisted (LM calls, results, candidates) is replayed rather than repeated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from ..core import telemetry
from ..core.bounds import Limits
from ..core.errors import DspyGrpcError
from ..core.supervisor import ChildSpec, Restart, Supervisor
from ..lm.attribution import attributed

from ..optimize.journal import LMJournal
from ..optimize.progress import Progress
from ..store.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, UNFINISHED, JobRecord, JobStore
from .datasets import Datasets
from .programs import Programs

log = logging.getLogger("dspy_grpc_server.jobs")

#: How often a running job's progress is written to the database (at most).
PROGRESS_INTERVAL_S = 0.25

def error_record(error: BaseException) -> dict[str, str]:
    """What a failed job stores: the error's class (the API layer maps it to a status code, as for
    failed calls), reason and message. Anything that is not a domain error is reported as INTERNAL."""

    if isinstance(error, DspyGrpcError):
        return {"error_class": type(error).__name__, "reason": error.reason, "message": error.message}
    return {"error_class": "", "reason": "INTERNAL", "message": f"internal error: {type(error).__name__}"}


class JobControl:
    """What a running job body uses: its progress, its LM journal, and the result stream."""

    def __init__(self, host: JobHost, record: JobRecord) -> None:
        self.host = host
        self.record = record
        saved = dict(record.progress)
        self.progress = Progress(lm_calls_planned=int(saved.get("lm_calls_planned", 0)))
        self.progress.on_change = self._changed
        self._dirty = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def journal(self) -> LMJournal:
        store, kind, job_id = self.host.store, self.record.kind, self.record.job_id
        known = await store.lm_calls(kind, job_id)

        async def persist(calls: Mapping[str, Mapping[str, Any]]) -> None:
            await store.put_lm_calls(kind, job_id, calls)

        journal = LMJournal(known, persist, on_call=self.progress.lm_call)
        # Calls finished before a restart count as done (job.proto): whether or not this run replays them.
        self.progress.resume_lm_calls(journal.replayed_at_start)
        return journal

    def _changed(self) -> None:
        self._dirty.set()

    def publish(self, event: Any) -> None:
        """Hand an event (e.g. a per-example result) to the job's current watchers."""

        for queue, _ in self.host._watchers.get(self.key, ()):
            queue.put_nowait(event)
        self.host._notify(self.key)

    @property
    def key(self) -> tuple[str, str]:
        return self.record.kind, self.record.job_id

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.host.store.save_progress(self.record.kind, self.record.job_id, self.progress.to_dict())
            self.host._notify(self.key)
            self.report("running")
            await asyncio.sleep(PROGRESS_INTERVAL_S)

    def report(self, state: str) -> None:
        """Tell telemetry (metrics, dashboard) how far the job is."""

        telemetry.record_job_progress(
            f"{self.record.kind}s/{self.record.job_id}", kind=self.record.kind, state=state,
            completed=self.progress.lm_calls_done, total=self.progress.lm_calls_planned,
            score=self.progress.best_score, program=self.record.spec.get("program_id", ""),
        )

    def start_flushing(self) -> None:
        self._flusher = asyncio.ensure_future(self._flush_loop())

    async def stop_flushing(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)


Body = Callable[[JobRecord, JobControl], Awaitable[Mapping[str, Any]]]


class JobHost:
    def __init__(self, store: JobStore, supervisor: Supervisor | None = None) -> None:
        self.store = store
        self.supervisor = supervisor or Supervisor("jobs", max_restarts=100, period_s=1.0)
        self._owns_supervisor = supervisor is None
        self._bodies: dict[str, Body] = {}
        #: Per job: each watcher's event queue and "something changed" flag.
        self._watchers: dict[tuple[str, str], list[tuple[asyncio.Queue[Any], asyncio.Event]]] = {}

    def register(self, kind: str, body: Body) -> None:
        self._bodies[kind] = body

    async def start(self) -> None:
        """Start the supervisor and resume every job left unfinished."""

        if self._owns_supervisor:
            self.supervisor.start()
        for record in await self.store.unfinished():
            if record.kind in self._bodies:
                log.info("resuming %ss/%s (was %s)", record.kind, record.job_id, record.state)
                self.launch(record)

    async def stop(self) -> None:
        """Stop every running job (they stay RUNNING in the database and resume at the next start)."""

        if self._owns_supervisor:
            await self.supervisor.stop()
        else:
            for name in [n for n in self.supervisor.children if n.startswith("job/")]:
                await self.supervisor.terminate_child(name)

    def launch(self, record: JobRecord) -> None:
        name = f"job/{record.kind}/{record.job_id}"
        if name in self.supervisor.children:
            return
        self.supervisor.start_child(
            ChildSpec(name, lambda: self._run(record), restart=Restart.TEMPORARY, shutdown_timeout_s=5.0)
        )

    async def _run(self, record: JobRecord) -> None:
        kind, job_id = record.kind, record.job_id
        if not await self.store.transition(kind, job_id, to=RUNNING, when=UNFINISHED):
            return  # cancelled meanwhile
        control = JobControl(self, record)
        control.start_flushing()
        try:
            program_id = record.spec.get("program_id", "")
            # The job's LM calls are its program's: in the usage ledger (and budgets) and in live stats.
            with telemetry.job_run(kind, job_id, program_id), attributed(program_id=program_id):
                result = await self._bodies[kind](record, control)
        except asyncio.CancelledError:
            await control.stop_flushing()
            control.report("cancelled")
            raise
        except Exception as error:  # noqa: BLE001 - a failed job is recorded, never raised
            if not isinstance(error, DspyGrpcError):
                log.exception("%ss/%s crashed", kind, job_id)
            await control.stop_flushing()
            await self.store.transition(kind, job_id, to=FAILED, when=(RUNNING,), error=error_record(error),
                                        progress=control.progress.to_dict())
            control.report("failed")
        else:
            await control.stop_flushing()
            progress = control.progress
            progress.update(phase="done")
            await self.store.transition(kind, job_id, to=SUCCEEDED, when=(RUNNING,), result=result,
                                        progress=progress.to_dict())
            control.report("succeeded")
        self._notify((kind, job_id))

    async def cancel(self, kind: str, job_id: str) -> JobRecord:
        record = await self.store.get(kind, job_id)
        if not record.finished:
            await self.store.transition(kind, job_id, to=CANCELLED, when=(QUEUED, RUNNING))
            await self.supervisor.terminate_child(f"job/{kind}/{job_id}")
            self._notify((kind, job_id))
        return await self.store.get(kind, job_id)

    # ------------------------------------------------------------------ watching

    def _notify(self, key: tuple[str, str]) -> None:
        for _, changed in self._watchers.get(key, ()):
            changed.set()

    async def watch(self, kind: str, job_id: str) -> AsyncIterator[tuple[JobRecord, list[Any]]]:
        """Yield (job, events since the last yield) now and after every change, until it finishes."""

        key = (kind, job_id)
        record = await self.store.get(kind, job_id)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        changed = asyncio.Event()
        watcher = (queue, changed)
        self._watchers.setdefault(key, []).append(watcher)
        try:
            yield record, []
            while not record.finished:
                try:
                    await asyncio.wait_for(changed.wait(), timeout=1.0)
                except TimeoutError:
                    pass
                changed.clear()
                events = []
                while not queue.empty():
                    events.append(queue.get_nowait())
                record = await self.store.get(kind, job_id)
                yield record, events
        finally:
            watchers = self._watchers.get(key, [])
            if watcher in watchers:
                watchers.remove(watcher)
            if not watchers:
                self._watchers.pop(key, None)


class JobKind:
    """What every kind of job offers (evaluations, optimizations): a body run by the host, and
    get/list/cancel/watch over the jobs of that kind. Subclasses set ``KIND`` and define ``_body``."""

    KIND = ""

    def __init__(self, host: JobHost, programs: Programs, datasets: Datasets, registry: Any, default_model: str,
                 limits: Limits = Limits(), *, retrievers: Any = None) -> None:
        self._host = host
        #: The server-wide bounds checked when a job is created (and its admission cap).
        self._limits = limits
        #: What the programs' ``retrieve`` modules search (see app.retrievers).
        self._retrievers = retrievers
        self._store: JobStore = host.store
        self._programs = programs
        self._datasets = datasets
        self._registry = registry
        self._default_model = default_model
        host.register(self.KIND, self._body)

    async def _body(self, record: JobRecord, control: JobControl) -> Mapping[str, Any]:
        raise NotImplementedError  # abstract: each job kind defines what its jobs do

    async def get(self, job_id: str) -> JobRecord:
        return await self._store.get(self.KIND, job_id)

    async def list(self, *, page_size: int, page_token: str) -> tuple[list[JobRecord], str]:
        return await self._store.list(self.KIND, page_size=page_size, page_token=page_token)

    async def cancel(self, job_id: str) -> JobRecord:
        return await self._host.cancel(self.KIND, job_id)

    def watch(self, job_id: str) -> AsyncIterator[tuple[JobRecord, list[Any]]]:
        return self._host.watch(self.KIND, job_id)

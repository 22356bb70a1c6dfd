"""Long-running jobs: leased to one replica at a time, taken over when it dies, watched, cancelled.

Each kind of job (``evaluation``, ``optimization``) registers a body: an async function given the
stored job and a :class:`JobControl`, returning the result (plain JSON). A replica runs a job only
while it holds the job's lease (see :mod:`..store.jobs`): it claims new jobs it created at once, and
a periodic scan claims jobs nobody holds a live lease on -- left by a replica that died (after the
lease expired) or stopped gracefully (at once). While running, a lease keeper renews the lease every
``heartbeat_s`` and whenever the job is announced changed; when the lease no longer holds
(cancelled through any replica, or taken over) the body is cancelled -- and the LM calls it awaits.
Every write the body makes is fenced, so a stale holder can never overwrite the new one. What a job
had persisted (LM calls, results, candidates) is replayed rather than repeated when it resumes.

Each job runs as a TEMPORARY child of the host's supervisor (a body never raises: failures are
recorded on the job). With the SQLite default there is one job-running process: at start it claims
every unfinished job, live lease or not (their owner can only be its own previous life).

A host built with ``runs_jobs=False`` -- a serving process while a job-runner process (see
:mod:`.job_runner`) runs the jobs -- never claims: the jobs it creates, cancels or retries are
picked up by the runner's scan, and it watches them through the store like any other replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core import telemetry
from ..core.bounds import Limits
from ..core.errors import DspyGrpcError
from ..core.supervisor import ChildSpec, Restart, Supervisor
from ..lm.attribution import attributed

from ..optimize.journal import LMJournal
from ..optimize.live_traffic import LiveTraffic
from ..optimize.progress import Progress
from ..store.changes import EVERYTHING, ChangeFeed
from ..store.jobs import FAILED, JOB_TOPIC, SUCCEEDED, Claimable, JobRecord, JobStore, Lease, LeaseLost
from .datasets import Datasets
from .programs import Programs

log = logging.getLogger("dspy_grpc_server.jobs")

#: How often a running job's progress is written to the database (at most).
PROGRESS_INTERVAL_S = 0.25


@dataclass(frozen=True)
class LeaseSettings:
    """The ``[jobs]`` config keys (see :class:`..app.config.Config`)."""

    lease_s: float = 10.0
    heartbeat_s: float = 1.0
    scan_interval_s: float = 1.0
    watch_poll_s: float = 1.0
    max_owner_deaths: int = 2
    #: This replica's identity as a job owner (unique per process life).
    owner: str = field(default_factory=lambda: f"replica-{uuid.uuid4().hex[:16]}")


def error_record(error: BaseException) -> dict[str, str]:
    """What a failed job stores: the error's class (the API layer maps it to a status code, as for
    failed calls), reason and message. Anything that is not a domain error is reported as INTERNAL."""

    if isinstance(error, DspyGrpcError):
        return {"error_class": type(error).__name__, "reason": error.reason, "message": error.message}
    return {"error_class": "", "reason": "INTERNAL", "message": f"internal error: {type(error).__name__}"}


class JobControl:
    """What a running job body uses: its lease, progress, LM journal, and announcements."""

    def __init__(self, host: JobHost, record: JobRecord, lease: Lease) -> None:
        self.host = host
        self.record = record
        self.lease = lease
        saved = dict(record.progress)
        self.progress = Progress(lm_calls_planned=int(saved.get("lm_calls_planned", 0)))
        self.progress.on_change = self._changed
        self._dirty = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def journal(self) -> LMJournal:
        store, lease = self.host.store, self.lease
        known = await store.lm_calls(lease.kind, lease.job_id)

        async def persist(calls: Mapping[str, Mapping[str, Any]]) -> None:
            await store.put_lm_calls(lease, calls)

        journal = LMJournal(known, persist, on_call=self.progress.lm_call)
        # Calls finished before a restart count as done (job.proto): whether or not this run replays them.
        self.progress.resume_lm_calls(journal.replayed_at_start)
        return journal

    def _changed(self) -> None:
        self._dirty.set()

    def announce(self) -> None:
        """Wake this replica's watchers of the job (other replicas hear it from the store)."""

        self.host.changed(self.record.kind, self.record.job_id)

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.host.store.save_progress(self.lease, self.progress.to_dict())
            self.announce()
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

    def stop_flushing_now(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()

    async def stop_flushing(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            results = await asyncio.gather(self._flusher, return_exceptions=True)
            if isinstance(results[0], LeaseLost):
                raise results[0]


Body = Callable[[JobRecord, JobControl], Awaitable[Mapping[str, Any]]]


class JobHost:
    def __init__(self, store: JobStore, supervisor: Supervisor | None = None, *,
                 settings: LeaseSettings | None = None, single_process: bool = True,
                 changes: ChangeFeed | None = None, runs_jobs: bool = True) -> None:
        self.store = store
        #: Whether this process claims and runs jobs (else a job-runner process does).
        self.runs_jobs = runs_jobs
        self.settings = settings or LeaseSettings()
        self.single_process = single_process
        self.supervisor = supervisor or Supervisor("jobs", max_restarts=100, period_s=1.0)
        self._owns_supervisor = supervisor is None
        self._bodies: dict[str, Body] = {}
        #: Per job: the "something changed" flags of its watchers and of its lease keeper.
        self._listeners: dict[tuple[str, str], list[asyncio.Event]] = {}
        #: Set when another process announces a job this one does not run: scan at once.
        self._scan_now = asyncio.Event()
        self._changes = changes
        #: Whether this process tells the others of its job changes itself (the store announces them
        #: in the writing transaction on PostgreSQL; on SQLite the host feed carries them).
        self._tells_others = changes is not None and not store.announces_changes
        if changes is not None:  # jobs announced by any replica (the store sends them on PostgreSQL)
            changes.subscribe(self._heard)

    def register(self, kind: str, body: Body) -> None:
        self._bodies[kind] = body

    async def start(self) -> None:
        """Start the supervisor, claim the jobs left unfinished, and keep scanning for more."""

        if self._owns_supervisor:
            self.supervisor.start()
        if not self.runs_jobs:
            return
        await self._claim_all(include_live=self.single_process)
        self.supervisor.start_child(ChildSpec("jobs/scan", self._scan, restart=Restart.PERMANENT))

    async def stop(self) -> None:
        """Stop every running job and give its lease back (another replica, or the next start,
        resumes it)."""

        if self._owns_supervisor:
            await self.supervisor.stop()
        else:
            for name in [n for n in self.supervisor.children if n.startswith("job")]:
                await self.supervisor.terminate_child(name)

    async def _scan(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_now.wait(), timeout=self.settings.scan_interval_s)
            self._scan_now.clear()
            try:
                await self._claim_all(include_live=False)
            except DspyGrpcError as error:  # the store is unreachable or busy: try again next round
                log.warning("job scan failed: %s", error.message)

    async def _claim_all(self, *, include_live: bool) -> None:
        for job in await self.store.claimable(include_live=include_live):
            if job.kind in self._bodies and not self._running(job.kind, job.job_id):
                await self.claim(job, include_live=include_live)

    def _running(self, kind: str, job_id: str) -> bool:
        return f"job/{kind}/{job_id}" in self.supervisor.children

    async def claim(self, job: Claimable, *, include_live: bool = False) -> None:
        """Claim the job and run it here (nothing when another replica got it first, or when this
        process runs no jobs)."""

        if not self.runs_jobs:
            self.changed(job.kind, job.job_id)  # the job runner hears of it (at its next scan otherwise)
            return
        claimed = await self.store.claim(job, owner=self.settings.owner, lease_s=self.settings.lease_s,
                                         max_owner_deaths=self.settings.max_owner_deaths,
                                         include_live=include_live)
        if isinstance(claimed, JobRecord):
            log.error("%ss/%s quarantined: %s", job.kind, job.job_id, (claimed.error or {}).get("message"))
            self.changed(job.kind, job.job_id)
        elif claimed is not None:
            log.info("running %ss/%s (fence %d)", job.kind, job.job_id, claimed.fence)
            self.supervisor.start_child(ChildSpec(
                f"job/{job.kind}/{job.job_id}", lambda: self._run(claimed), restart=Restart.TEMPORARY,
                shutdown_timeout_s=5.0,
            ))

    async def launch(self, record: JobRecord) -> None:
        """Run a job just created here (claimed at once; the scan would find it too)."""

        await self.claim(Claimable(record.kind, record.job_id, 0))

    async def _run(self, lease: Lease) -> None:
        """Run the body while the lease holds; on a graceful stop give the lease back."""

        lost = asyncio.Event()
        keeper = asyncio.ensure_future(self._keep(lease, lost))
        work = asyncio.ensure_future(self._work(lease))
        lost_waiter = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait({work, lost_waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                log.warning("%ss/%s: lease lost (cancelled or taken over); stopping", lease.kind, lease.job_id)
                work.cancel()
            [outcome] = await asyncio.gather(work, return_exceptions=True)
            if isinstance(outcome, Exception):
                # The store failed while the job ended (e.g. the database was unreachable): hand the
                # job back -- without counting it as a death of this replica -- so a scan retries it.
                log.warning("%ss/%s stopped by %s; giving it back", lease.kind, lease.job_id, type(outcome).__name__)
                try:
                    await self.store.release(lease)
                except DspyGrpcError as error:
                    log.warning("could not release %ss/%s: %s", lease.kind, lease.job_id, error.message)
        except asyncio.CancelledError:  # this replica stops: give the job back to the others
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            try:
                await self.store.release(lease)
            except DspyGrpcError as error:
                log.warning("could not release %ss/%s: %s", lease.kind, lease.job_id, error.message)
            raise
        finally:
            keeper.cancel()
            lost_waiter.cancel()
            await asyncio.gather(keeper, lost_waiter, return_exceptions=True)
            self.changed(lease.kind, lease.job_id)

    async def _keep(self, lease: Lease, lost: asyncio.Event) -> None:
        """Renew the lease every heartbeat and whenever the job is announced changed; set ``lost``
        once it no longer holds."""

        with self._listening(lease.kind, lease.job_id) as changed:
            while True:
                try:
                    await asyncio.wait_for(changed.wait(), timeout=self.settings.heartbeat_s)
                except TimeoutError:
                    pass
                changed.clear()
                try:
                    held = await self.store.renew(lease, self.settings.lease_s)
                except DspyGrpcError as error:
                    log.warning("could not renew the lease of %ss/%s: %s", lease.kind, lease.job_id, error.message)
                    continue
                if not held:
                    lost.set()
                    return

    async def _work(self, lease: Lease) -> None:
        kind, job_id = lease.kind, lease.job_id
        record = await self.store.get(kind, job_id)
        control = JobControl(self, record, lease)
        control.start_flushing()
        try:
            try:
                program_id = record.spec.get("program_id", "")
                # The job's LM calls are its program's: in the usage ledger (and budgets) and in live stats.
                with telemetry.job_run(kind, job_id, program_id), attributed(program_id=program_id):
                    result = await self._bodies[kind](record, control)
            except asyncio.CancelledError:
                await control.stop_flushing()
                control.report("cancelled")
                raise
            except LeaseLost:
                raise
            except Exception as error:  # noqa: BLE001 - a failed job is recorded, never raised
                if not isinstance(error, DspyGrpcError):
                    log.exception("%ss/%s crashed", kind, job_id)
                await control.stop_flushing()
                await self.store.finish(lease, to=FAILED, error=error_record(error), progress=control.progress.to_dict())
                control.report("failed")
            else:
                await control.stop_flushing()
                progress = control.progress
                progress.update(phase="done")
                await self.store.finish(lease, to=SUCCEEDED, result=result, progress=progress.to_dict())
                control.report("succeeded")
        except LeaseLost:
            control.stop_flushing_now()
            log.warning("%ss/%s: a write was refused (no longer the holder); stopped", kind, job_id)

    async def cancel(self, kind: str, job_id: str) -> JobRecord:
        """Cancel through any replica: the state changes at once; the owner, wherever it runs, sees
        the announcement (or its next heartbeat) and stops its work."""

        if await self.store.cancel(kind, job_id):
            self.changed(kind, job_id)
            if self._running(kind, job_id):
                await self.supervisor.terminate_child(f"job/{kind}/{job_id}")
        return await self.store.get(kind, job_id)

    # ------------------------------------------------------------------ poison jobs

    async def quarantined(self, *, page_size: int, page_token: str) -> tuple[list[JobRecord], str]:
        return await self.store.quarantined(page_size=page_size, page_token=page_token)

    async def retry(self, kind: str, job_id: str) -> JobRecord:
        """Queue a quarantined job again; this replica claims it at once (else the next scan will)."""

        record = await self.store.retry(kind, job_id)
        if kind in self._bodies and self.runs_jobs:
            await self.claim(Claimable(kind, job_id, record.fence))
        return await self.store.get(kind, job_id)

    # ------------------------------------------------------------------ watching

    def _heard(self, topic: str, key: str) -> None:
        if topic == JOB_TOPIC:
            kind, _, job_id = key.partition("/")
            self._wake(kind, job_id)
            if self.runs_jobs and not self._running(kind, job_id):
                self._scan_now.set()  # perhaps a new job, or one handed back
        elif topic == EVERYTHING:  # announcements may have been missed: everyone looks again
            for flags in self._listeners.values():
                for flag in flags:
                    flag.set()

    def changed(self, kind: str, job_id: str) -> None:
        """The job changed here: wake who follows it, here and (when the store does not announce
        it) in the other processes."""

        self._wake(kind, job_id)
        if self._tells_others:
            self._changes.tell_others(JOB_TOPIC, f"{kind}/{job_id}")

    def _wake(self, kind: str, job_id: str) -> None:
        for flag in self._listeners.get((kind, job_id), ()):
            flag.set()

    class _Listening:
        def __init__(self, host: JobHost, key: tuple[str, str]) -> None:
            self.host, self.key, self.flag = host, key, asyncio.Event()

        def __enter__(self) -> asyncio.Event:
            self.host._listeners.setdefault(self.key, []).append(self.flag)
            return self.flag

        def __exit__(self, *_exc: object) -> None:
            flags = self.host._listeners.get(self.key, [])
            if self.flag in flags:
                flags.remove(self.flag)
            if not flags:
                self.host._listeners.pop(self.key, None)

    def _listening(self, kind: str, job_id: str) -> JobHost._Listening:
        return JobHost._Listening(self, (kind, job_id))

    async def watch(self, kind: str, job_id: str, scope: str = "") -> AsyncIterator[tuple[JobRecord, list[Any]]]:
        """Yield (job, results stored since the last yield) now and after every change, until it
        finishes. Results are read from the store in commit order (``scope`` names which), so a
        watcher on any replica gets each exactly once; changes are announced (LISTEN/NOTIFY on
        PostgreSQL, in-process and over the host feed on SQLite) and polled every ``watch_poll_s`` in case one is missed."""

        with self._listening(kind, job_id) as changed:
            cursor = await self.store.last_result_seq(kind, job_id)
            record = await self.store.get(kind, job_id)
            yield record, []
            while not record.finished:
                try:
                    await asyncio.wait_for(changed.wait(), timeout=self.settings.watch_poll_s)
                except TimeoutError:
                    pass
                changed.clear()
                record = await self.store.get(kind, job_id)
                events: list[Any] = []
                if scope:
                    rows = await self.store.results_since(kind, job_id, scope, cursor)
                    if rows:
                        cursor = rows[-1][0]
                    events = [(index, data) for _, index, data in rows]
                yield record, events


class JobKind:
    """What every kind of job offers (evaluations, optimizations): a body run by the host, and
    get/list/cancel/watch over the jobs of that kind. Subclasses set ``KIND`` and define ``_body``."""

    KIND = ""

    def __init__(self, host: JobHost, programs: Programs, datasets: Datasets, registry: Any, default_model: str,
                 limits: Limits = Limits(), *, retrievers: Any = None, live: LiveTraffic | None = None) -> None:
        self._host = host
        #: The server-wide bounds checked when a job is created (and its admission cap).
        self._limits = limits
        #: What the programs' ``retrieve`` modules search (see app.retrievers).
        self._retrievers = retrievers
        #: Live calls in flight: a job runs fewer programs at once meanwhile (optimize.live_traffic).
        self._live = live
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
        return self._host.watch(self.KIND, job_id, self.WATCHED_SCOPE)

    #: Which stored results Watch streams (empty: none).
    WATCHED_SCOPE = ""

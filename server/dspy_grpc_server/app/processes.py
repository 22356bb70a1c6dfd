"""``serve --workers N``: N server processes sharing one port on this host, and the job runner.

gRPC's multi-process pattern: the parent forks the workers before any gRPC object exists, and each
worker binds the same address with ``SO_REUSEPORT``, so the kernel spreads incoming connections over
them (one connection stays on one worker: balance many connections, or use an L7 proxy). The parent
runs the schema migrations once before forking, picks the port when the config asks for any free
one (0), restarts a worker that dies, and on SIGTERM/SIGINT passes the signal on and waits for the
workers to drain. The workers share state only through the database (PostgreSQL: required, see
:meth:`~.config.Config.validate`). The dashboard and the Prometheus endpoint run in worker 0 only.

With ``jobs.runner = "process"`` (see :mod:`.job_runner`) the parent also forks the job runner,
which runs the jobs while the workers only create, watch and cancel them -- also with one worker
and on SQLite. It is restarted like a worker, and drains (hands its jobs back) on SIGTERM.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace

from ..optimize.live_traffic import LiveBoard
from ..store.database import Database
from .application import ProcessRole
from .config import Config
from .event_loop import run_serving

log = logging.getLogger("dspy_grpc_server.processes")

#: Restart intensity: more worker deaths than this within the period stops the whole server.
MAX_RESTARTS, RESTART_PERIOD_S = 5, 30.0


def _reserve_port(host: str) -> socket.socket:
    """A socket bound (not listening) to a free port with SO_REUSEPORT, kept open while the workers
    bind the same port, so that nothing else takes it meanwhile."""

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), 0))
    return sock


async def migrate(url: str) -> None:
    """Bring the schema to head (``dspy-grpc migrate``, and the parent before it forks workers)."""

    database = await Database.open(url)
    await database.close()


#: prctl(2) option: the signal a child gets when its parent dies.
PR_SET_PDEATHSIG = 1

#: The index the job runner goes by among the children (workers are 0..N-1).
JOB_RUNNER = -1


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this child when the parent dies (Linux), so that a parent killed with
    SIGKILL takes its workers and job runner along: their jobs' leases then expire and are taken over."""

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: children outlive a killed parent
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _run_child(config: Config, index: int, serve: Callable[[Config, ProcessRole], Awaitable[None]],
               board: LiveBoard | None, feed_directory: str | None, parent: int) -> None:
    _die_with_parent(parent)
    if index != 0:
        config = replace(config, dashboard_enabled=False, prometheus_enabled=False)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        if index == JOB_RUNNER:
            from .job_runner import run_job_runner

            os.nice(config.job_runner_nice)
            run_serving(run_job_runner(config, board, feed_directory))
        else:
            run_serving(serve(config, ProcessRole(run_jobs=board is None, live_board=board, live_cell=index,
                                                  host_feed_directory=feed_directory)))
    except BaseException:  # noqa: BLE001 - reported, and the parent restarts the child
        log.exception("%s failed", _name(index))
        code = 1
    os._exit(code)


def _name(index: int) -> str:
    return "the job runner" if index == JOB_RUNNER else f"worker {index}"


def serve_processes(config: Config, serve: Callable[[Config, ProcessRole], Awaitable[None]]) -> int:
    """Run ``config.workers`` processes of ``serve`` (and the job runner when jobs run in their own
    process) until SIGTERM/SIGINT; the exit status."""

    asyncio.run(migrate(config.database_url))
    job_runner = config.jobs_in_own_process
    # The workers tell the job runner when they have live calls (see optimize.live_traffic).
    board = LiveBoard(config.workers) if job_runner else None
    # ... and of changes (a new job, a cancel, progress) when no PostgreSQL or Redis carries them.
    feed_directory = tempfile.mkdtemp(prefix="dspy-grpc-feed-") if job_runner else None
    reserved = _reserve_port(config.host) if config.port == 0 and config.workers > 1 else None
    if reserved is not None:
        config = replace(config, port=reserved.getsockname()[1])
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    workers: dict[int, int] = {}  # pid -> worker index (JOB_RUNNER for the job runner)

    parent = os.getpid()

    def fork(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            _run_child(config, index, serve, board, feed_directory, parent)
        workers[pid] = index

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(config.workers):
        fork(index)
    if job_runner:
        fork(JOB_RUNNER)
    log.info("%d worker(s) on %s:%d%s", config.workers, config.host, config.port,
             " and a job-runner process" if job_runner else "")
    status = 0
    deaths: deque[float] = deque()
    while workers:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        if pid not in workers:
            continue
        index = workers.pop(pid)
        if reserved is not None:
            reserved.close()  # every worker has bound the port by now, or will bind it alone
            reserved = None
        code = os.waitstatus_to_exitcode(wait_status)
        if board is not None and index != JOB_RUNNER:
            board.publish(index, 0.0)  # a worker killed during a live call no longer holds jobs back
        if stopping:
            continue
        log.error("%s (pid %d) exited with %d; restarting it", _name(index), pid, code)
        now = time.monotonic()
        deaths.append(now)
        while deaths and deaths[0] < now - RESTART_PERIOD_S:
            deaths.popleft()
        if len(deaths) > MAX_RESTARTS:
            log.error("children died %d times within %.0fs; stopping the server", len(deaths), RESTART_PERIOD_S)
            stop(signal.SIGTERM, None)
            status = 1
            continue
        fork(index)
    if feed_directory is not None:
        shutil.rmtree(feed_directory, ignore_errors=True)
    return status

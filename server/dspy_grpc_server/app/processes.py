"""``serve --workers N``: N server processes sharing one port on this host.

gRPC's multi-process pattern: the parent forks the workers before any gRPC object exists, and each
worker binds the same address with ``SO_REUSEPORT``, so the kernel spreads incoming connections over
them (one connection stays on one worker: balance many connections, or use an L7 proxy). The parent
runs the schema migrations once before forking, picks the port when the config asks for any free
one (0), restarts a worker that dies, and on SIGTERM/SIGINT passes the signal on and waits for the
workers to drain. The workers share state only through the database (PostgreSQL: required, see
:meth:`~.config.Config.validate`). The dashboard and the Prometheus endpoint run in worker 0 only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace

from ..store.database import Database
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


def _run_worker(config: Config, index: int, serve: Callable[[Config], Awaitable[None]]) -> None:
    if index > 0:
        config = replace(config, dashboard_enabled=False, prometheus_enabled=False)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        run_serving(serve(config))
    except BaseException:  # noqa: BLE001 - reported, and the parent restarts the worker
        log.exception("worker %d failed", index)
        code = 1
    os._exit(code)


def serve_processes(config: Config, serve: Callable[[Config], Awaitable[None]]) -> int:
    """Run ``config.workers`` processes of ``serve`` until SIGTERM/SIGINT; the exit status."""

    asyncio.run(migrate(config.database_url))
    reserved = _reserve_port(config.host) if config.port == 0 else None
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

    workers: dict[int, int] = {}  # pid -> worker index

    def fork(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            _run_worker(config, index, serve)
        workers[pid] = index

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(config.workers):
        fork(index)
    log.info("%d workers on %s:%d", config.workers, config.host, config.port)
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
        if stopping:
            continue
        log.error("worker %d (pid %d) exited with %d; restarting it", index, pid, code)
        now = time.monotonic()
        deaths.append(now)
        while deaths and deaths[0] < now - RESTART_PERIOD_S:
            deaths.popleft()
        if len(deaths) > MAX_RESTARTS:
            log.error("workers died %d times within %.0fs; stopping the server", len(deaths), RESTART_PERIOD_S)
            stop(signal.SIGTERM, None)
            status = 1
            continue
        fork(index)
    return status

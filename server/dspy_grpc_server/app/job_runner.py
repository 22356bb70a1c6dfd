"""The job-runner process (``jobs.runner = "process"``): claims and runs leased jobs, serves no calls.

Jobs and live calls in one process share one event loop and one GIL: a large optimization's program
runs (rendering, parsing, metrics, journal writes) queue in front of every live call's callbacks.
Run apart, the kernel schedules the two processes on their own -- on separate cores when there
are, and with the runner ``jobs.runner_nice`` steps nicer, so live calls get the CPU first when
there are not. The serving processes still create, list, watch and cancel jobs: everything about a
job is in the store (leases with fencing, progress, results, the cancel), exactly as between replicas.

The runner is an ordinary job host (see :mod:`.jobs`) over its own connections to the same database:

* SQLite: both processes open the file in WAL mode with a busy timeout, so writers wait for each
  other; a lease changes hands only by a conditional UPDATE (compare and swap on owner and fence).
  There is one runner per database file, so at start it claims every unfinished job, live lease
  or not (their owner can only be its own previous life): a runner killed and restarted resumes at
  once. The serving process and the runner tell each other of job changes (a new job, a cancel,
  progress) through the host change feed (:class:`~..store.changes.HostChangeFeed`); the runner's
  scan (``jobs.scan_interval_s``), its heartbeat (``jobs.heartbeat_s``) and the watchers' poll
  (``jobs.watch_poll_s``) are the fallback.
* PostgreSQL: each replica has its runner; runners take over each other's jobs as replicas do.

LM limits: budgets and the usage ledger are in the store, shared. rpm/tpm/``max_in_flight`` of a
deployment are per process unless Redis (``cache.redis_url``) shares them, so ``jobs.runner =
"auto"`` keeps jobs in the serving process when a deployment has such limits and no Redis is set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from ..optimize.live_traffic import LiveBoard
from .application import Application, ProcessRole
from .config import Config

log = logging.getLogger("dspy_grpc_server.job_runner")


async def run_job_runner(config: Config, live_board: LiveBoard | None = None,
                         host_feed_directory: str | None = None) -> None:
    """Run jobs until SIGTERM or SIGINT, then hand the running ones back (the next runner resumes them).
    While the host's serving processes have live calls (``live_board``), jobs give way as in one process."""

    app = await Application.start(config, ProcessRole(live_board=live_board, host_feed_directory=host_feed_directory))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await app.start_jobs()
        log.info("job runner (pid %d) running jobs", os.getpid())
        await stop.wait()
        log.info("job runner stopping: handing running jobs back")
    finally:
        await app.aclose()

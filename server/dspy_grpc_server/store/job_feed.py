"""Job changes announced by every replica: PostgreSQL ``LISTEN dspy_grpc_jobs``.

Every write to a job (see :mod:`.jobs`) sends ``NOTIFY dspy_grpc_jobs, '<kind>/<job_id>'`` in its
transaction, so listeners hear of it once it commits -- typically within milliseconds on any
replica. :meth:`JobFeed.run` keeps one dedicated connection listening and calls ``on_change(kind,
job_id)`` for each announcement; when the connection is lost it reconnects (announcements made
meanwhile are missed, which is why every listener also polls: see the ``[jobs]`` config keys). On
SQLite (one process) there is nothing to listen to and :meth:`run` just waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from .database import Database
from .jobs import NOTIFY_CHANNEL

log = logging.getLogger("dspy_grpc_server.store.job_feed")

#: How often the listening connection is checked, and how long to wait before reconnecting.
CHECK_INTERVAL_S = 5.0


class JobFeed:
    def __init__(self, db: Database, on_change: Callable[[str, str], None]) -> None:
        self._db = db
        self._on_change = on_change

    @property
    def enabled(self) -> bool:
        return self._db.dialect == "postgresql"

    def _received(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        kind, _, job_id = payload.partition("/")
        if job_id:
            self._on_change(kind, job_id)

    async def run(self) -> None:
        if not self.enabled:
            await asyncio.Event().wait()
        url = self._db.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("cannot listen for job changes (%s); retrying", type(error).__name__)
                await asyncio.sleep(CHECK_INTERVAL_S)
                continue
            try:
                await connection.add_listener(NOTIFY_CHANNEL, self._received)
                while True:
                    await asyncio.sleep(CHECK_INTERVAL_S)
                    await connection.fetchval("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("job change listener lost its connection (%s); reconnecting", type(error).__name__)
            finally:
                connection.terminate()

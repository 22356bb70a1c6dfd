"""Change notifications between server replicas that share one store.

A replica that changes shared state (a program, a program's quarantined inputs, a budget) publishes
``(topic, key)``, e.g. ``("program", "qa")``. Every replica (the publisher at once, in process) hears
it and drops what it cached about that key, so its next call reads the store again.

Transports:

* :class:`PostgresChangeFeed` -- PostgreSQL ``NOTIFY`` on channel :data:`CHANNEL`, heard through one
  dedicated ``LISTEN`` connection per replica;
* :class:`RedisChangeFeed` -- Redis pub/sub on the same channel name;
* :class:`HostChangeFeed` -- Unix datagrams between the processes one ``serve`` forks on one host
  (its serving process and job runner over one SQLite file), through a directory the parent made;
* :class:`ChangeFeed` -- in-process only (one replica, or notifications turned off).

Notifications are a shortcut, never the only path: every cache they invalidate also expires on its
own (the polling fallback). While a listener is disconnected, and once more when it reconnects, the
feed delivers the topic :data:`EVERYTHING` so that listeners drop all they cached: nothing missed in
the gap can stay stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .database import Database

log = logging.getLogger("dspy_grpc_server.store.changes")

#: The PostgreSQL NOTIFY channel and the Redis pub/sub channel.
CHANNEL = "dspy_grpc_changes"
#: Topic delivered when notifications may have been missed: drop every cached entry.
EVERYTHING = "*"
#: Seconds between reconnection attempts of a lost listener.
RECONNECT_DELAY_S = 1.0
#: Seconds between checks that the listening connection is still alive.
HEARTBEAT_S = 2.0

Listener = Callable[[str, str], None]


class ChangeFeed:
    """In-process delivery; the base of the cross-replica transports."""

    transport = "local"

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.origin = secrets.token_hex(8)
        #: Whether remote notifications are being heard right now (always True for in-process).
        self.connected = True
        self._sending: set[asyncio.Future[None]] = set()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(topic, key)`` for every change (``topic == EVERYTHING``: drop all)."""

        self._listeners.append(listener)

    def deliver(self, topic: str, key: str) -> None:
        for listener in self._listeners:
            try:
                listener(topic, key)
            except Exception:  # noqa: BLE001 - one broken listener must not silence the others
                log.exception("change listener failed on %s/%s", topic, key)

    async def publish(self, topic: str, key: str) -> None:
        """Tell this replica at once, and the others through the transport (best effort: a
        transport failure is logged; the others then see the change by polling)."""

        self.deliver(topic, key)
        await self._send_logged(self._payload(topic, key), topic)

    def _payload(self, topic: str, key: str) -> str:
        return json.dumps({"o": self.origin, "t": topic, "k": key}, separators=(",", ":"))

    def tell_others(self, topic: str, key: str) -> None:
        """Send ``(topic, key)`` to the other replicas only -- not delivered here -- without waiting
        (best effort, like :meth:`publish`)."""

        if type(self)._send is ChangeFeed._send:
            return  # in-process only: there are no others
        task = asyncio.ensure_future(self._send_logged(self._payload(topic, key), topic))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_logged(self, payload: str, topic: str) -> None:
        try:
            await self._send(payload)
        except Exception as error:  # noqa: BLE001
            log.warning("could not publish a %s change over %s: %s", topic, self.transport, error)

    async def _send(self, payload: str) -> None:
        return None

    def _received(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            origin, topic, key = message["o"], message["t"], message["k"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed change notification")
            return
        if origin != self.origin:
            self.deliver(str(topic), str(key))

    def _lost(self) -> None:
        if self.connected:
            log.warning("change notifications over %s lost; caches expire by polling until reconnected",
                        self.transport)
        self.connected = False
        self.deliver(EVERYTHING, "")

    def _restored(self) -> None:
        if not self.connected:
            log.info("change notifications over %s restored", self.transport)
        self.connected = True
        self.deliver(EVERYTHING, "")  # anything sent while we were away

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class _ListeningFeed(ChangeFeed):
    """A feed with a background listener task that reconnects until closed."""

    def __init__(self) -> None:
        super().__init__()
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"changes-{self.transport}")

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - reconnect after any failure
                log.debug("change listener over %s failed: %s", self.transport, error)
            self._lost()
            await asyncio.sleep(RECONNECT_DELAY_S)

    async def _listen(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


class PostgresChangeFeed(_ListeningFeed):
    """NOTIFY through the store's connection pool; LISTEN on one dedicated asyncpg connection."""

    transport = "postgresql"

    def __init__(self, database: Database) -> None:
        super().__init__()
        self._database = database
        url = make_url(database.engine.url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)

    async def _send(self, payload: str) -> None:
        async with self._database.sessions() as session, session.begin():
            await session.execute(sa.text("SELECT pg_notify(:channel, :payload)"),
                                  {"channel": CHANNEL, "payload": payload})

    async def _listen(self) -> None:
        import asyncpg  # the PostgreSQL driver the store already uses

        connection = await asyncpg.connect(self._dsn, timeout=5)
        try:
            await connection.add_listener(CHANNEL, self._on_notify)
            self._restored()
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                await connection.fetchval("SELECT 1", timeout=5)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._received(payload)


class RedisChangeFeed(_ListeningFeed):
    """Redis PUBLISH / SUBSCRIBE."""

    transport = "redis"

    def __init__(self, redis_url: str) -> None:
        super().__init__()
        self._url = redis_url
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as redis

            self._client = redis.from_url(self._url, socket_timeout=2, socket_connect_timeout=2)
        return self._client

    async def _send(self, payload: str) -> None:
        await self._redis().publish(CHANNEL, payload)

    async def _listen(self) -> None:
        import redis.asyncio as redis

        client = redis.from_url(self._url, socket_connect_timeout=2, health_check_interval=HEARTBEAT_S)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            self._restored()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=HEARTBEAT_S)
                if message is None:
                    await pubsub.ping()
                    continue
                data = message.get("data")
                if isinstance(data, bytes):
                    self._received(data.decode("utf-8", "replace"))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def aclose(self) -> None:
        await super().aclose()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()


class HostChangeFeed(ChangeFeed):
    """Unix datagrams between the processes forked by one ``serve`` parent: each binds a socket in
    ``directory`` (made by the parent) and sends every change to the others' sockets. A datagram
    that cannot be sent (a peer busy or gone) is dropped: the polling fallback still holds."""

    transport = "host"

    def __init__(self, directory: str) -> None:
        super().__init__()
        self._directory = directory
        self._path = os.path.join(directory, f"{os.getpid()}-{self.origin}.sock")
        self._socket: socket.socket | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(self._path)
        self._socket = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        while self._socket is not None:
            try:
                data = self._socket.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            self._received(data.decode("utf-8", "replace"))

    async def _send(self, payload: str) -> None:
        self._send_now(payload)

    def tell_others(self, topic: str, key: str) -> None:
        self._send_now(self._payload(topic, key))

    def _send_now(self, payload: str) -> None:
        if self._socket is None:
            return
        data = payload.encode()
        for name in os.listdir(self._directory):
            path = os.path.join(self._directory, name)
            if path == self._path or not name.endswith(".sock"):
                continue
            try:
                self._socket.sendto(data, path)
            except (ConnectionRefusedError, FileNotFoundError):  # its process is gone
                with contextlib.suppress(OSError):
                    os.unlink(path)
            except OSError as error:  # full queue and the like: that peer polls
                log.debug("host change feed: %s not told: %s", name, error)

    async def aclose(self) -> None:
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None
            with contextlib.suppress(OSError):
                os.unlink(self._path)


NOTIFICATION_MODES = ("auto", "postgresql", "redis", "off")


def open_change_feed(mode: str, database: Database, redis_url: str, host_directory: str | None = None) -> ChangeFeed:
    """The feed for ``mode``: ``auto`` picks PostgreSQL when the store is PostgreSQL, else Redis when
    a Redis URL is configured, else the host feed between the processes of one ``serve`` (when its
    parent made ``host_directory``), else in-process only; ``off`` is in-process only."""

    if mode == "auto":
        mode = "postgresql" if database.dialect == "postgresql" else ("redis" if redis_url else "off")
        if mode == "off" and host_directory:
            return HostChangeFeed(host_directory)
    if mode == "postgresql":
        if database.dialect != "postgresql":
            raise ValueError("programs.notifications = \"postgresql\" needs a PostgreSQL database_url")
        return PostgresChangeFeed(database)
    if mode == "redis":
        if not redis_url:
            raise ValueError("programs.notifications = \"redis\" needs cache.redis_url")
        return RedisChangeFeed(redis_url)
    return ChangeFeed()

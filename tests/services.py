"""Real PostgreSQL, Redis and nginx servers for tests, each a private instance on a free loopback port.

Tests get them through the ``postgres_url`` and ``redis_url`` fixtures (tests/conftest.py). Without
the binaries a test is skipped, except with ``CI=true``, where it fails: ``.ci/run`` installs
Debian's postgresql and redis-server, so a missing one is a broken CI set-up, not a reason to skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(path: str | None, what: str) -> str:
    """``path`` if the service's binary exists; else skip the test, or fail it under CI."""

    if path is not None:
        return path
    message = f"{what} is not installed (.ci/run installs it from Debian)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def postgres_bin_dir() -> str | None:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/N/bin."""

    initdb = shutil.which("initdb")
    if initdb:
        return str(Path(os.path.realpath(initdb)).parent)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return str(Path(found[-1]).parent) if found else None


class PostgresCluster:
    """A throw-away PostgreSQL cluster (initdb into a temp folder, trust auth, no fsync).

    PostgreSQL refuses to run as root; as root the cluster runs as the ``postgres`` user that
    Debian's package creates."""

    def __init__(self, bin_dir: str) -> None:
        self.bin_dir = Path(bin_dir)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dspy-grpc-pg-"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> PostgresCluster:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server (again) on the same data and port."""

        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", str(int(START_TIMEOUT_S)), "start")

    def pause(self) -> None:
        """Stop the server, cutting its connections (fast mode: with fsync and synchronous commit off,
        only a clean stop keeps the newest commits), keeping its data for :meth:`resume`."""

        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""

        name = f"test_{uuid.uuid4().hex[:12]}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A throw-away redis-server with no persistence."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING in time")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


class NginxServer:
    """Debian's nginx with one ``http``-level config snippet (e.g. deploy/'s load-balancer template,
    rendered), in a private prefix folder; ``port`` is free for the snippet to listen on."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dspy-grpc-nginx-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, http_snippet: str) -> NginxServer:
        for folder in ("logs", "temp"):
            (self.root / folder).mkdir()
        (self.root / "site.conf").write_text(http_snippet)
        temp = self.root / "temp"
        (self.root / "nginx.conf").write_text(
            f"worker_processes 1;\nerror_log {self.root / 'logs' / 'error.log'} warn;\n"
            f"pid {self.root / 'nginx.pid'};\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n"
            f"  include {self.root / 'site.conf'};\n}}\n"
        )
        command = [self.binary, "-p", str(self.root), "-c", str(self.root / "nginx.conf"), "-g", "daemon off;"]
        os.chmod(self.root, 0o755)  # as root, nginx's workers run as nobody
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self._process.stderr.read().decode()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen in time")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

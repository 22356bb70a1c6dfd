"""Run a command with the services some tests need: ``python -m tests.with_services pytest -q``.

Starts a private PostgreSQL (``initdb`` + ``pg_ctl`` in a temporary folder, on a free loopback port;
as root it runs as the ``postgres`` user) and sets ``DSPY_GRPC_TEST_POSTGRES_URL`` for the command,
unless that is set already; stops it afterwards. The Redis and browser tests start their own servers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

SEARCH = ("/usr/local/bin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def _tool(name: str) -> str:
    found = shutil.which(name) or next((f"{d}/{name}" for d in SEARCH if Path(d, name).exists()), None)
    if found is None:
        raise SystemExit(f"{name} not found: install PostgreSQL (Debian: apt-get install postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL; yields its SQLAlchemy URL."""

    folder = Path(tempfile.mkdtemp(prefix="dspy-grpc-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    subprocess.run([*as_user, _tool("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*as_user, _tool("pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, _tool("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)


def main(command: list[str]) -> int:
    if not command:
        raise SystemExit(__doc__)
    env = dict(os.environ)
    if env.get("DSPY_GRPC_TEST_POSTGRES_URL"):
        return subprocess.call(command, env=env)
    with postgres() as url:
        print(f"PostgreSQL for this run: {url}", flush=True)
        return subprocess.call(command, env={**env, "DSPY_GRPC_TEST_POSTGRES_URL": url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

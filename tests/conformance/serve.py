"""A dspy-grpc server for the conformance runners: ``python -m tests.conformance.serve``.

Starts the mock LM (loaded with every scenario's ``mock_lm`` rules) and ``dspy-grpc serve --port 0``
with a TOML config whose models point at it, prints ``CONFORMANCE READY 127.0.0.1:PORT`` and stays
up until its standard input closes or it gets SIGINT/SIGTERM. To run one client's suite by hand::

    python -m tests.conformance.serve &          # or in another terminal
    DSPY_GRPC_CONFORMANCE_ADDR=127.0.0.1:PORT npm test     # in clients/typescript
    DSPY_GRPC_CONFORMANCE_ADDR=127.0.0.1:PORT go test ./... # in clients/go

Models: ``mock`` and ``mock-errors`` (the same mock LM, no retries; failure scenarios use the second
one so that their errors never open the circuit breaker of the first), and the built-in ``dummy``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.mocklm.server import MockLMServer, MockReply

from .scenarios import load

MOCK_KEY_ENV = "DSPY_GRPC_CONFORMANCE_MOCK_KEY"
READY = "CONFORMANCE READY"


def mock_reply(rule: dict) -> MockReply:
    if "status" in rule:
        return MockReply.error(rule["status"], rule.get("message", "mock provider error"))
    return MockReply(text=rule["reply"])


def config_toml(base_url: str) -> str:
    models = []
    for alias, breaker_failures in (("mock", 5), ("mock-errors", 1000)):
        models.append(
            "[[models]]\n"
            f'alias = "{alias}"\nprovider = "openai"\nmodel = "mock-model"\nbase_url = "{base_url}"\n'
            f'api_key_env = "{MOCK_KEY_ENV}"\ntimeout_s = 10\nmax_retries = 0\n'
            f"breaker_failures = {breaker_failures}\n"
        )
    return "\n".join(models)


def wait_for_stdin_close(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    def read() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read, name="stdin-watch", daemon=True).start()


async def forward(stream: asyncio.StreamReader) -> None:
    """Pass the server's further output on to stderr (a full pipe would block it)."""

    while line := await stream.readline():
        sys.stderr.write(line.decode())


async def serve(args: argparse.Namespace) -> None:
    mock = MockLMServer(record=False)
    for scenario in load():
        for rule in scenario.mock_rules:
            mock.add_rule(rule["contains"], mock_reply(rule))
    await mock.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not args.ignore_stdin:
        wait_for_stdin_close(loop, stop)

    with tempfile.TemporaryDirectory(prefix="dspy-grpc-conformance-") as tmp:
        config = Path(tmp) / "dspy-grpc.toml"
        config.write_text(config_toml(mock.base_url))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dspy_grpc_server", "serve", "--port", "0", "--config", str(config),
            "--database-url", f"sqlite+aiosqlite:///{Path(tmp) / 'db.sqlite'}", "--log-level", args.log_level,
            stdout=asyncio.subprocess.PIPE, env={**os.environ, MOCK_KEY_ENV: "sk-conformance"},
        )
        try:
            assert process.stdout is not None
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise SystemExit("dspy-grpc serve exited before listening")
                if line.startswith("dspy-grpc listening on"):
                    port = int(line.rsplit(":", 1)[1])
                    break
            print(f"{READY} 127.0.0.1:{port}", flush=True)
            drain = asyncio.ensure_future(forward(process.stdout))
            waiter = asyncio.ensure_future(stop.wait())
            exited = asyncio.ensure_future(process.wait())
            await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            drain.cancel()
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            await mock.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--ignore-stdin", action="store_true", help="run until killed, even if stdin is closed")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()

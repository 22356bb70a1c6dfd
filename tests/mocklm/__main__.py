"""Run the mock LM server as a process: ``python -m tests.mocklm --port 8001 --latency-ms 50``.

It answers every chat completion automatically (DSPy prompts get deterministic field values) and
prints ``MOCKLM READY <base_url>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from . import arithmetic, reflection
from .server import MockLMServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.mocklm", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every completion")
    parser.add_argument("--api-key", default=None, help="require this Bearer token")
    parser.add_argument("--task", choices=["arithmetic", "reflection", "sampling"], default=None,
                        help="answer with a scripted task (arithmetic: see tests/mocklm/arithmetic.py; reflection: "
                             "the same plus GEPA's reflection LM; sampling: that plus SIMBA's varied samples, see "
                             "tests/mocklm/reflection.py)")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    # Recording every request would grow without bound under a benchmark's load.
    server = MockLMServer(
        host=args.host, port=args.port, latency_s=args.latency_ms / 1000, api_key=args.api_key, record=False
    )
    if args.task == "arithmetic":
        arithmetic.install(server)
    elif args.task in ("reflection", "sampling"):
        reflection.install(server, sampling_luck=args.task == "sampling")
    await server.start()
    print(f"MOCKLM READY {server.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()

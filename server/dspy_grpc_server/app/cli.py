"""Command line: ``dspy-grpc serve``. Every option also has a DSPY_GRPC_* variable or TOML key."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Awaitable, Callable, Sequence

from ..core.errors import DspyGrpcError
from .application import ProcessRole
from .config import CONFIG_FILE_ENV, DEFAULT_DATABASE_URL, Config, load_config
from .event_loop import run_serving
from .keys_cli import add_keys_parser, run_keys
from .processes import migrate, serve_processes

DESCRIPTION = """\
dspy-grpc serves DSPy programs (signatures, modules, adapters, LM providers) over gRPC.
Configuration comes from built-in defaults, then an optional TOML file, then DSPY_GRPC_*
environment variables, then these flags. Provider API keys are read only from the environment
variables named in the config file's [[models]] tables."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dspy-grpc", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="run the gRPC server until SIGTERM/SIGINT",
        description="Run the gRPC server (health and reflection always on) until SIGTERM or SIGINT, "
        "then stop accepting calls and drain in-flight ones within the grace period.",
    )
    serve.add_argument("--config", metavar="PATH",
                       help=f"TOML config file (default: ${CONFIG_FILE_ENV}, else none)")
    serve.add_argument("--host", help="address to bind (DSPY_GRPC_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind, 0 for any free port (DSPY_GRPC_PORT; default 50051)")
    serve.add_argument("--database-url", metavar="URL",
                       help=f"sqlite+aiosqlite:///FILE or postgresql+asyncpg://... (DSPY_GRPC_DATABASE_URL; "
                       f"default {DEFAULT_DATABASE_URL})")
    serve.add_argument("--default-model", metavar="ALIAS",
                       help="model alias used when a request names no LM (DSPY_GRPC_DEFAULT_MODEL)")
    serve.add_argument("--grace-period", type=float, metavar="SECONDS", dest="grace_period_s",
                       help="how long in-flight calls may finish at shutdown (DSPY_GRPC_GRACE_PERIOD_S; default 10)")
    serve.add_argument("--max-message-bytes", type=int, metavar="N",
                       help="largest accepted request/response (DSPY_GRPC_MAX_MESSAGE_BYTES; default 16 MiB)")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                       help="log verbosity (DSPY_GRPC_LOG_LEVEL; default INFO)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="server processes sharing the port (DSPY_GRPC_WORKERS; default 1; more than 1 needs "
                       "PostgreSQL)")
    migrate = commands.add_parser(
        "migrate", help="bring the database schema to this version, then exit",
        description="Apply the pending schema migrations (servers also do this at start; run it once before "
        "a rollout, e.g. as a Kubernetes Job). Concurrent runs on PostgreSQL wait for each other.",
    )
    _add_database_options(migrate)
    add_keys_parser(commands, _add_database_options)
    return parser


def _add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help=f"TOML config file (default: ${CONFIG_FILE_ENV}, else none)")
    parser.add_argument("--database-url", metavar="URL",
                        help=f"the server's database (DSPY_GRPC_DATABASE_URL; default {DEFAULT_DATABASE_URL})")


def config_from_args(args: argparse.Namespace) -> Config:
    if args.command in ("keys", "migrate"):
        return load_config(args.config).with_overrides(database_url=args.database_url)
    return load_config(args.config).with_overrides(
        host=args.host, port=args.port, database_url=args.database_url, default_model=args.default_model,
        grace_period_s=args.grace_period_s, max_message_bytes=args.max_message_bytes, log_level=args.log_level,
        workers=args.workers,
    )


def run(argv: Sequence[str] | None, serve: Callable[[Config, ProcessRole], Awaitable[None]]) -> int:
    """Parse ``argv`` and run the command; ``serve`` is supplied by the composition root."""

    import asyncio

    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except DspyGrpcError as error:
        print(f"dspy-grpc: invalid configuration: {error.message}")
        return 2
    level = config.log_level if args.command == "serve" else "WARNING"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "keys":
        try:
            return asyncio.run(run_keys(args, config))
        except DspyGrpcError as error:
            print(f"dspy-grpc keys: {error.message}")
            return 1
    if args.command == "migrate":
        asyncio.run(migrate(config.database_url))
        print("dspy-grpc: database schema is up to date")
        return 0
    if config.workers > 1 or config.jobs_in_own_process:
        return serve_processes(config, serve)
    run_serving(serve(config, ProcessRole()))
    return 0

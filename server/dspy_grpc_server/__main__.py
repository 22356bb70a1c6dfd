"""Composition root: ``python -m dspy_grpc_server`` / the ``dspy-grpc`` script."""

from __future__ import annotations

import sys

from .api.server import serve
from .app.cli import run


def main() -> int:
    return run(sys.argv[1:], serve)


if __name__ == "__main__":
    raise SystemExit(main())

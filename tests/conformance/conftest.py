"""The conformance server: one ``python -m tests.conformance.serve`` process for the whole session,
shared by the Python runner, grpcurl and the TypeScript and Go test suites."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .serve import READY

ROOT = Path(__file__).resolve().parents[2]


def run_id(prefix: str) -> str:
    """A fresh id for ``{run}`` in the scenarios (lower-case letters and digits)."""

    return prefix + secrets.token_hex(4)


def require_tool(name: str, hint: str, *candidates: Path) -> str:
    """The path of a tool; skips the test when it is missing, fails instead under CI."""

    found = shutil.which(name) or next((str(c) for c in candidates if c.exists()), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: {hint}")
        pytest.skip(f"{name} not installed ({hint})")
    return found


@pytest.fixture(scope="session")
def conformance_address(tmp_path_factory) -> Iterator[str]:
    """The address ("127.0.0.1:PORT") of a dspy-grpc server backed by the conformance mock LM."""

    log = tmp_path_factory.mktemp("conformance") / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.conformance.serve"], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith(READY):
                process.wait(10)
                pytest.fail(f"the conformance server did not start:\n{line}{log.read_text()}")
            yield line.split()[-1]
        finally:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

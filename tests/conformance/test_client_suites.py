"""The TypeScript and Go clients' own test suites, each run against the conformance server: their
conformance tests read the server address from DSPY_GRPC_CONFORMANCE_ADDR (and skip without it)."""

from __future__ import annotations

import os
import re
import subprocess

from .conftest import ROOT, require_tool
from .scenarios import ADDRESS_ENV, load

TYPESCRIPT = ROOT / "clients/typescript"
GO = ROOT / "clients/go"


def run(command: list[str], cwd, address: str) -> str:
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, ADDRESS_ENV: address}, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_typescript_client_suite(conformance_address: str) -> None:
    npm = require_tool("npm", "install Node.js 20+")
    if not (TYPESCRIPT / "node_modules").is_dir():
        require_tool("clients/typescript/node_modules", "run `make install`")
    output = run([npm, "test", "--silent"], TYPESCRIPT, conformance_address)
    counts = {key: int(value) for key, value in re.findall(r"^# (pass|fail|skipped) (\d+)$", output, re.M)}
    assert counts.get("fail") == 0 and counts.get("skipped") == 0, output
    assert "# SKIP" not in output, output
    for scenario in load():  # each scenario is its own test
        assert re.search(rf"^\s*ok \d+ - {scenario.name}$", output, re.M), f"scenario {scenario.name} did not pass:\n{output}"


def test_go_client_suite(conformance_address: str) -> None:
    go = require_tool("go", "install Go")
    output = run([go, "test", "-count=1", "-v", "./..."], GO, conformance_address)
    assert "--- SKIP" not in output, output
    for scenario in load():
        assert f"--- PASS: TestConformance/{scenario.name}" in output, f"scenario {scenario.name} did not pass:\n{output}"

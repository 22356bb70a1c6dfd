"""The README's TypeScript and Go sections, run as a newcomer would: a new project made by the shown
commands (``npm init`` — a CommonJS project — or ``go mod init``), the program pasted as shown, run
against a real server. Only the server address and ``path/to/dspy-grpc`` are substituted; the
TypeScript client's dependencies are the ones ``make install-clients`` installed (the shown
``npm ci`` is not repeated, as other tests use that folder meanwhile). The Python section is run by
test_readme_python.py, the grpcurl blocks by test_readme_grpcurl.py and test_readme_usage.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]


def readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(rf"^## {title}\n(.*?)^## ", readme, re.S | re.M).group(1)


def block(section: str, language: str, marker: str = "") -> str:
    pattern = (rf"<!-- {marker}:.*?-->\n" if marker else "") + rf"```{language}\n(.*?)```"
    return re.search(pattern, section, re.S).group(1)


def tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: {hint}")
        pytest.skip(f"{name} not installed ({hint})")
    return found


async def run_shell(script: str, cwd: Path, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, cwd=cwd, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 600)
    assert process.returncode == 0, f"{script}\n--- stdout\n{out.decode()}\n--- stderr\n{err.decode()}"
    return out.decode()


def paste(commands: str, program: str, filename: str, server_port: int) -> str:
    """The shown commands, with the program saved where the comment says to save it."""

    saved = program.replace("127.0.0.1:50051", f"127.0.0.1:{server_port}")
    heredoc = f"cat > {filename} <<'PROGRAM_EOF'\n{saved}PROGRAM_EOF\n"
    commands = commands.replace("path/to/dspy-grpc", str(ROOT))
    marker = re.search(r"^# save the program below as .*$", commands, re.M)
    assert marker is not None, "the commands must say where the program goes"
    return commands[:marker.start()] + heredoc + commands[marker.end():]


async def test_readme_typescript_program_runs_in_a_new_commonjs_project(server, tmp_path):
    tool("npm", "install Node.js 20+")
    section = readme_section("TypeScript")
    commands, program = block(section, "sh", "typescript-setup"), block(section, "ts")
    assert program.startswith("// main.ts\n") and "no deltas" in section
    # The client's dependencies are installed already (make install-clients): build only.
    commands = commands.replace("npm ci && npm run build", "npm run build")
    out = await run_shell(paste(commands, program, "main.ts", server.port), tmp_path,
                          {"npm_config_prefer_offline": "true", "npm_config_audit": "false",
                           "npm_config_fund": "false"})
    assert out.strip().splitlines()[-1] == "Paris"
    package = json.loads((tmp_path / "qa-ts" / "package.json").read_text())
    assert package.get("type", "commonjs") == "commonjs"  # npm init's default: the CommonJS build was used


async def test_readme_go_program_runs_in_a_new_module(server, tmp_path):
    tool("go", "install Go 1.26+")
    section = readme_section("Go")
    commands, program = block(section, "sh", "go-setup"), block(section, "go")
    assert program.startswith("// main.go\n") and "ctx, cancel :=" in program and "no deltas" in section
    out = await run_shell(paste(commands, program, "main.go", server.port), tmp_path,
                          {"GOFLAGS": "", "GOWORK": "off"})
    assert out.strip().splitlines()[-1] == "Paris"

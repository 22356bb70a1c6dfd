"""clients/python/README.md's tour, run verbatim (with the test server's port) in a separate process."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parents[2]


async def test_python_client_readme_tour_runs(server) -> None:
    readme = (ROOT / "clients" / "python" / "README.md").read_text()
    snippet = re.search(r"<!-- python-client-tour:.*?-->\n```python\n(.*?)```", readme, re.S).group(1)
    snippet = snippet.replace("127.0.0.1:50051", f"127.0.0.1:{server.port}")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", snippet, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        "Paris 1.0 city",
        "5",
        "system 2",
        "7",
        "France",
    ]

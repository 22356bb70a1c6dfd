"""A benchmarked server's processes on Linux (/proc): ``dspy-grpc serve`` may fork serving workers and
a job runner, so its CPU time and memory are summed over the process and its children."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def server_processes(pid: int) -> list[int]:
    """The processes doing the server's work: ``pid`` itself, or -- when it forked serving workers
    and a job runner (``jobs.runner = "process"``) -- its children (the parent only supervises)."""

    return children(pid) or [pid]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` and its children (all their threads); 0 for a
    process that is gone."""

    total = 0.0
    for process in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)
    return total


def rss_mib(pid: int) -> float:
    """Resident memory of one process."""

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_rss_mib(pid: int) -> float:
    """Resident memory of the server, summed over its processes (without a supervising parent)."""

    return sum(rss_mib(process) for process in server_processes(pid))

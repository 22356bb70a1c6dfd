"""A pytest plugin (loaded by pyproject's ``addopts``): at the end of a run, list the tests that
were skipped, grouped by reason, and say how to run them all."""

from __future__ import annotations

from collections import Counter

import pytest

_skipped: Counter[str] = Counter()

HOW_TO_RUN_ALL = (
    "To run them all, install what the reasons name -- Debian: `apt-get install postgresql redis-server "
    "nginx chromium`, Node.js 20+ and Go 1.26+ for the client suites, `make tools` for grpcurl -- and run "
    "`make test` again: the tests start private PostgreSQL, Redis and nginx servers on free loopback ports "
    "themselves. `.ci/run` installs the Debian packages (and with CI=true nothing is skipped)."
)


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped[_reason(report)] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _skipped:
        return
    terminalreporter.section(f"{sum(_skipped.values())} tests skipped", sep="-", yellow=True)
    for reason, count in _skipped.most_common():
        terminalreporter.write_line(f"{count:4d}  {reason}")
    terminalreporter.write_line(HOW_TO_RUN_ALL)

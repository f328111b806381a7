import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (ROOT, os.path.join(ROOT, "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)


import pytest  # noqa: E402

_FIGURES = []


@pytest.fixture(scope="session")
def figures():
    """Lines for the summary at the end of the run: the hardening suite's
    counts (inputs tried, faults injected, runs, memory), which README.md
    copies."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("hardening figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)

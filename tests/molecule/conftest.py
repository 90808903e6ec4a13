"""Order of the Molecule session's tests, for running them side by side.

`nox -s molecule` runs this directory with pytest-xdist (`--dist load`,
`--maxschedchunk 1`): each worker is handed the test it runs plus one more, queued
behind it, and that queued test waits however long the first one takes. The scenarios
come longest first (test_scenarios.py), and the collection checks, which take seconds,
are put right behind the longest scenario: they are what its worker holds in queue, so
no scenario waits half an hour behind `cluster` while other workers idle.
"""

from __future__ import annotations

import json
from pathlib import Path

TIMES = Path(__file__).resolve().parents[2] / "build" / "molecule" / "times.json"


def pytest_sessionstart(session):
    # Only the controller (not an xdist worker) starts the run's record afresh.
    if not hasattr(session.config, "workerinput"):
        TIMES.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter):
    if TIMES.exists():
        times = json.loads(TIMES.read_text())
        terminalreporter.section("time per Molecule scenario (passed)")
        for name, seconds in sorted(times.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{name:24} {seconds:6d} s")


def pytest_collection_modifyitems(items):
    scenarios = [item for item in items if item.originalname == "test_scenario"]
    quick = [item for item in items if item.originalname != "test_scenario"]
    if scenarios and quick:
        items[:] = [scenarios[0], *quick, *scenarios[1:]]

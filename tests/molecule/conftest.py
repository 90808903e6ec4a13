"""Order of the Molecule session's tests, for running them side by side.

`nox -s molecule` runs this directory with pytest-xdist (`--dist load`,
`--maxschedchunk 1`). An xdist worker starts a test only once it holds the next one
too, and that queued test waits however long the first one takes. The scenarios come
longest first (test_scenarios.py); the scheduler below never queues a second scenario
behind one a worker holds: a collection check, which takes seconds, goes there instead.
Without it `pi` once waited twenty minutes behind `app` while the other workers had run
out of work, and the session ended with one scenario running alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMES = ROOT / "build" / "molecule" / "times.json"
DURATIONS = ROOT / "molecule" / "durations.json"


def recorded_durations() -> dict[str, float]:
    """Each scenario's seconds as the last runs recorded them; {} when there is no record."""
    try:
        return json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return {}


def pytest_sessionstart(session):
    # Only the controller (not an xdist worker) starts the run's record afresh.
    if not hasattr(session.config, "workerinput"):
        TIMES.unlink(missing_ok=True)


def pytest_sessionfinish(session):
    """This run's times into durations.json, once every scenario has ended.

    Written while scenarios still ran, the tracked file made the checkout "dirty" under
    them: an image built from it afterwards got another revision label, so pi's second
    build shipped an image again whenever another scenario ended between its two builds.
    """
    if hasattr(session.config, "workerinput") or not TIMES.exists():
        return
    recorded = recorded_durations()
    recorded.update(json.loads(TIMES.read_text()))
    DURATIONS.write_text(json.dumps(dict(sorted(recorded.items())), indent=2) + "\n")


def pytest_terminal_summary(terminalreporter):
    if TIMES.exists():
        times = json.loads(TIMES.read_text())
        terminalreporter.section("time per Molecule scenario (passed)")
        for name, seconds in sorted(times.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{name:24} {seconds:6d} s")


def _is_scenario(nodeid: str) -> bool:
    return "::test_scenario[" in nodeid


def pytest_collection_modifyitems(items):
    # Scenarios first, longest first as test_scenarios.py lists them; then the checks.
    items.sort(key=lambda item: not _is_scenario(item.nodeid))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScheduling

    class ScenarioAtATime(LoadScheduling):
        """xdist's load scheduling, except that a worker holding a scenario is sent a
        collection check as the test it needs queued, never the next scenario; only
        when no check is left does a scenario queue behind another."""

        def _send_tests(self, node, num: int) -> None:
            chosen: list[int] = []
            for _ in range(num):
                if not self.pending:
                    break
                index = self.pending[0]
                held = [*self.node2pending[node], *chosen]
                if any(_is_scenario(self.collection[i]) for i in held):
                    index = next(
                        (i for i in self.pending if not _is_scenario(self.collection[i])), index
                    )
                self.pending.remove(index)
                chosen.append(index)
            if chosen:
                self.node2pending[node].extend(chosen)
                node.send_runtest_some(chosen)

    return ScenarioAtATime(config, log)

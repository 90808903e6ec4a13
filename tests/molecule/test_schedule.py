"""The Molecule session's scheduler (conftest.py): no scenario waits behind another while
a worker could start it.

xdist's workers are simulated here: a worker starts a test only once it holds the next
one too (or is shut down), which is what makes the queued test wait.
"""

from __future__ import annotations

import heapq
from types import SimpleNamespace

import conftest
from xdist.scheduler import LoadScheduling

SCENARIOS = {"cluster": 1500, "app": 1200, "pi": 800, "single": 700, "mariadb_native": 650}
CHECKS = 12


class Worker:
    def __init__(self, number: int):
        self.gateway = SimpleNamespace(id=f"gw{number}")
        self.held: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.held.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def collection() -> list[str]:
    scenarios = [f"tests/molecule/test_scenarios.py::test_scenario[{name}]" for name in SCENARIOS]
    checks = [f"tests/molecule/test_collection.py::test_check_{i}" for i in range(CHECKS)]
    # conftest.pytest_collection_modifyitems puts the scenarios first.
    return scenarios + checks


def scenario(nodeid: str) -> str | None:
    """The scenario a test runs, or None for a collection check."""
    return nodeid.split("[")[1].rstrip("]") if conftest._is_scenario(nodeid) else None


def seconds(nodeid: str) -> float:
    name = scenario(nodeid)
    return SCENARIOS[name] if name else 1


# What xdist's scheduler reads of pytest's configuration, for `-n 3 --maxschedchunk 1`.
CONFIG = SimpleNamespace(
    getvalue={"dist": "load", "tx": ["3*popen"]}.get,
    getoption={"maxschedchunk": 1}.get,
)


QUIET = SimpleNamespace(loadsched=lambda *words: None)


def run(scheduler) -> dict[str, float]:
    """When each scenario starts, with three workers."""
    items = collection()
    workers = [Worker(n) for n in range(3)]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, items)
    scheduler.schedule()
    running: dict[Worker, int] = {}
    events: list[tuple[float, int, int]] = []
    started: dict[str, float] = {}

    def start(worker: Worker, now: float) -> None:
        if worker in running or not worker.held:
            return
        if len(worker.held) >= 2 or worker.shutting_down:
            index = worker.held.pop(0)
            running[worker] = index
            if name := scenario(items[index]):
                started[name] = now
            heapq.heappush(events, (now + seconds(items[index]), workers.index(worker), index))

    for worker in workers:
        start(worker, 0)
    while events:
        now, number, index = heapq.heappop(events)
        worker = workers[number]
        del running[worker]
        scheduler.mark_test_complete(worker, index, seconds(items[index]))
        for each in workers:
            start(each, now)
    assert len(started) == len(SCENARIOS), started
    return started


def ours():
    return conftest.pytest_xdist_make_scheduler(CONFIG, QUIET)


def test_the_three_longest_scenarios_start_at_once_and_the_rest_as_workers_free_up():
    started = run(ours())
    assert [started[name] for name in ("cluster", "app", "pi")] == [0, 0, 0], started
    # pi (800 s) ends first: single starts right after it, mariadb_native after app.
    assert 800 <= started["single"] < 810, started
    assert 1200 <= started["mariadb_native"] < 1210, started


def test_xdist_alone_queues_a_scenario_behind_a_running_one():
    # What the scheduler is for: with xdist's own load scheduling, a scenario waits
    # behind another although a worker has nothing to do.
    started = run(LoadScheduling(CONFIG, QUIET))
    assert max(started.values()) >= 1500, started

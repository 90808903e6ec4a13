"""The lease module's logic (plugins/modules/lease.py) on a real file, with a clock the
tests move: acquire, re-entry by the same run, renew, release, expiry, break, waiting."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("lease", ROOT / "plugins" / "modules" / "lease.py")
lease_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lease_module)

A = {"playbook": "upgrade.yml", "controller": "ann@laptop", "started": "2026-12-06T18:00:00Z"}
B = {"playbook": "backup.yml", "controller": "bob@desk", "started": "2026-12-06T18:01:00Z"}


class Clock:
    """Time as the tests say; sleeping moves it on."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lease(tmp_path, clock):
    # The directory does not exist yet, as on a fresh host.
    return lease_module.Lease(str(tmp_path / "state" / "lock"), clock=clock, sleep=clock.sleep)


def record(lease) -> dict:
    text = Path(lease.path).read_text()
    return json.loads(text) if text.strip() else {}


def test_a_free_lease_is_taken_and_recorded_with_its_holder_and_expiry(lease, clock):
    got = lease.acquire("run-a", A, ttl=60)
    assert got["acquired"] and got["changed"] and not got["held"]
    saved = record(lease)
    assert saved["run_id"] == "run-a" and saved["holder"] == A
    assert saved["expires_epoch"] == clock.now + 60
    assert Path(lease.path).parent.stat().st_mode & 0o777 == 0o700


def test_a_live_lease_of_another_run_is_not_taken(lease):
    lease.acquire("run-a", A, ttl=60)
    got = lease.acquire("run-b", B, ttl=60)
    assert got["held"] and not got["acquired"]
    assert got["record"]["holder"] == A
    assert record(lease)["run_id"] == "run-a"
    message = lease_module.describe(got["record"])
    assert (
        "upgrade.yml" in message and "ann@laptop" in message and "2026-12-06T18:00:00Z" in message
    )


def test_the_same_run_re_enters_and_extends_its_lease(lease, clock):
    lease.acquire("run-a", A, ttl=60)
    first = record(lease)
    clock.now += 30
    got = lease.acquire("run-a", B, ttl=60)
    assert got["acquired"] and got["reentered"] and not got["held"]
    again = record(lease)
    # The record still names the run as it first took the lease.
    assert again["holder"] == A and again["acquired"] == first["acquired"]
    assert again["expires_epoch"] == clock.now + 60


def test_waiting_gives_up_after_the_bound_and_names_the_holder(lease, clock):
    lease.acquire("run-a", A, ttl=600)
    started = clock.now
    got = lease.acquire("run-b", B, ttl=60, wait=10, poll=3)
    assert got["held"] and not got["acquired"]
    assert clock.now - started == pytest.approx(10)
    assert got["waited"] == pytest.approx(10)
    assert clock.slept == [3, 3, 3, 1]


def test_a_waiting_run_gets_the_lease_once_it_expires_and_says_whose_it_was(lease, clock):
    lease.acquire("run-a", A, ttl=5)
    got = lease.acquire("run-b", B, ttl=60, wait=30, poll=2)
    assert got["acquired"] and got["taken_over"] and not got["broken"]
    assert got["previous"]["holder"] == A
    assert 5 <= got["waited"] <= 7
    assert record(lease)["run_id"] == "run-b"


def test_an_expired_lease_is_taken_over(lease, clock):
    lease.acquire("run-a", A, ttl=5)
    clock.now += 6
    got = lease.acquire("run-b", B, ttl=60)
    assert got["acquired"] and got["taken_over"] and got["previous"]["run_id"] == "run-a"


def test_the_live_lease_of_a_run_that_has_ended_is_taken_over_at_once(lease):
    lease.acquire("run-a", A, ttl=600)
    got = lease.acquire("run-b", B, ttl=60, ended="run-a")
    assert got["acquired"] and got["taken_over"] and got["ended"] and not got["broken"]
    assert got["previous"]["holder"] == A


def test_a_lease_taken_since_by_another_run_is_not_mistaken_for_the_ended_one(lease):
    lease.acquire("run-c", A, ttl=600)
    got = lease.acquire("run-b", B, ttl=60, ended="run-a")
    assert got["held"] and not got["acquired"]
    assert record(lease)["run_id"] == "run-c"


def test_breaking_takes_a_live_lease_and_names_the_run_it_broke(lease):
    lease.acquire("run-a", A, ttl=600)
    got = lease.acquire("run-b", B, ttl=60, break_held=True)
    assert got["acquired"] and got["broken"] and not got["taken_over"]
    assert got["previous"]["holder"] == A
    assert record(lease)["holder"] == B


def test_renewing_extends_only_this_runs_lease(lease, clock):
    lease.acquire("run-a", A, ttl=60)
    clock.now += 50
    got, error = lease.renew("run-a", ttl=60)
    assert error is None and got["record"]["expires_epoch"] == clock.now + 60
    # Broken by another run: the first run is told, and must stop.
    lease.acquire("run-b", B, ttl=60, break_held=True)
    got, error = lease.renew("run-a", ttl=60)
    assert error and "backup.yml" in error and "bob@desk" in error and got["lost"]
    assert record(lease)["run_id"] == "run-b"


def test_renewing_a_released_lease_fails(lease):
    lease.acquire("run-a", A, ttl=60)
    lease.release("run-a")
    _, error = lease.renew("run-a", ttl=60)
    assert error and "free" in error


def test_release_frees_this_runs_lease_and_leaves_another_runs_alone(lease):
    lease.acquire("run-a", A, ttl=60)
    got, warning = lease.release("run-b")
    assert warning and "upgrade.yml" in warning and not got["changed"]
    assert record(lease)["run_id"] == "run-a"
    got, warning = lease.release("run-a")
    assert warning is None and got["changed"]
    assert record(lease) == {}
    # The file stays (every run flocks the same inode), and the lease is free again.
    assert Path(lease.path).exists()
    assert lease.acquire("run-b", B, ttl=60)["acquired"]


def test_releasing_a_lease_never_taken_changes_nothing(lease):
    got, warning = lease.release("run-a")
    assert not got["changed"] and warning is None
    assert not Path(lease.path).exists()


def test_check_mode_reports_a_held_lease_and_takes_nothing(lease, clock):
    got = lease.acquire("run-b", B, ttl=60, wait=30, check=True)
    assert not got["acquired"] and not got["held"] and not got["changed"]
    assert not Path(lease.path).exists()
    lease.acquire("run-a", A, ttl=60)
    before = Path(lease.path).read_bytes()
    got = lease.acquire("run-b", B, ttl=60, wait=30, check=True)
    assert got["held"] and got["record"]["holder"] == A and not got["acquired"]
    # No waiting in check mode, and the record is as it was.
    assert clock.slept == []
    assert Path(lease.path).read_bytes() == before
    assert lease.renew("run-b", ttl=60, check=True)[1] is None
    lease.release("run-a", check=True)
    assert Path(lease.path).read_bytes() == before


def test_a_torn_record_counts_as_free(lease):
    Path(lease.path).parent.mkdir(parents=True)
    Path(lease.path).write_text('{"run_id": "run-a", "expi')
    assert lease.acquire("run-b", B, ttl=60)["acquired"]


def _contend(path: str, run_id: str, queue) -> None:
    got = lease_module.Lease(path).acquire(run_id, {"playbook": run_id}, ttl=60)
    queue.put((run_id, got["acquired"]))


def test_of_runs_that_start_together_exactly_one_gets_the_lease(tmp_path):
    path = str(tmp_path / "lock")
    queue = multiprocessing.Queue()
    runs = [
        multiprocessing.Process(target=_contend, args=(path, f"run-{i}", queue)) for i in range(8)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(30)
    winners = [run_id for run_id, acquired in (queue.get(timeout=5) for _ in runs) if acquired]
    assert len(winners) == 1
    assert json.loads(Path(path).read_text())["run_id"] == winners[0]

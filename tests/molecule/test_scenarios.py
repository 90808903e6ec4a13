"""Run every Molecule scenario as one pytest test, so results land in pytest's summary.

Before the first scenario, the images every selected scenario pulls are built once
(images.py).

Each scenario runs its `molecule test` sequence (destroy, create, prepare, converge,
idempotence, verify, destroy, less the idempotence step where the verifier's own re-run
is that check) with the shared base config molecule/config.yml. Set
MOLECULE_SCENARIOS=a,b to run only some. The full log of each run is written to
build/molecule/<scenario>.log; a failure shows its tail. Whatever happens, the
scenario's host is destroyed afterwards.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import images
import pytest
from conftest import TIMES, recorded_durations

ROOT = Path(__file__).resolve().parents[2]
BASE_CONFIG = ROOT / "molecule" / "config.yml"
LOGS = ROOT / "build" / "molecule"
TIMEOUT_S = int(os.environ.get("MOLECULE_TIMEOUT", "3600"))
# `nox -s molecule` runs scenarios side by side (pytest-xdist, MOLECULE_JOBS at a time):
# the longest start first, so that the short ones fill in around them. How long each took
# is recorded by every run in durations.json (conftest.py writes it once the session
# ends); a scenario with no record yet goes first.


def _longest_first(name: str, recorded: dict[str, float]) -> tuple[float, str]:
    return -recorded.get(name, float("inf")), name


def _record(scenario: str, seconds: float) -> None:
    # Workers finish side by side: one writes at a time, each keeping the others' entries.
    # Into build/ only: a tracked file written while other scenarios build images from
    # the checkout made it "dirty" under them, which changes the image's revision label.
    with (LOGS / ".durations.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        this_run = json.loads(TIMES.read_text()) if TIMES.exists() else {}
        this_run[scenario] = round(seconds)
        TIMES.write_text(json.dumps(this_run, indent=2) + "\n")


_RECORDED = recorded_durations()
ALL = sorted(
    (p.parent.name for p in ROOT.glob("molecule/*/molecule.yml")),
    key=lambda name: _longest_first(name, _RECORDED),
)


def _selected() -> list[str]:
    wanted = [s.strip() for s in os.environ.get("MOLECULE_SCENARIOS", "").split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(ALL))
    if unknown:
        raise pytest.UsageError(f"unknown Molecule scenario(s) {unknown}; known: {ALL}")
    return wanted or ALL


def _link_collection() -> None:
    """Make the checkout importable as noticeboard.deploy (prerun is off: no Galaxy)."""
    link = ROOT / ".ansible" / "collections" / "ansible_collections" / "noticeboard" / "deploy"
    link.parent.mkdir(parents=True, exist_ok=True)
    # Scenarios start side by side: one of them replaces the link, the others wait.
    with (link.parent / ".link.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if link.is_symlink() and link.resolve() == ROOT:
            return
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            # ansible-lint installs a copy here when it runs first; a copy would go stale.
            shutil.rmtree(link)
        link.symlink_to(os.path.relpath(ROOT, link.parent), target_is_directory=True)


def _env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "")]),
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    }


def _molecule(*args: str, log, timeout: float | None = None) -> int:
    cmd = [str(Path(sys.executable).parent / "molecule"), "-c", str(BASE_CONFIG), *args]
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    ).returncode


def _images() -> None:
    """This run's images (images.py), built by whichever worker gets here first.

    The other workers wait for it at the lock; a later run builds again (BuildKit's cache
    makes that quick) so that no scenario ever pulls an image older than the checkout.
    """
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"
    done = LOGS / "images.done"
    with (LOGS / ".images.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and done.read_text() == run_id:
            return
        started = time.monotonic()
        with (LOGS / "images.log").open("w") as log:
            try:
                took = images.build(_selected(), log)
            except subprocess.CalledProcessError as failed:
                pytest.fail(
                    f"building the scenarios' images failed ({failed.cmd}); "
                    f"see {LOGS / 'images.log'}",
                    pytrace=False,
                )
        done.write_text(run_id)
        print(f"images for {', '.join(_selected())}: {time.monotonic() - started:.0f} s")
        for name, seconds in took.items():
            print(f"  {name:12} {seconds:5.0f} s")


# pyproject.toml's pytest timeout is sized for app tests; a scenario takes minutes.
if importlib.util.find_spec("pytest_timeout"):
    pytestmark = pytest.mark.timeout(TIMEOUT_S + 900)


@pytest.mark.parametrize("scenario", _selected())
def test_scenario(scenario: str) -> None:
    _link_collection()
    LOGS.mkdir(parents=True, exist_ok=True)
    _images()
    logfile = LOGS / f"{scenario}.log"
    started = time.monotonic()
    rc = None
    try:
        with logfile.open("w") as log:
            rc = _molecule("test", "-s", scenario, log=log, timeout=TIMEOUT_S)
    finally:
        # `molecule test` destroys after a failure too; this also covers a timeout or an
        # interrupted run, and is a quick no-op when nothing is left.
        if rc != 0:
            with logfile.open("a") as log:
                _molecule("destroy", "-s", scenario, log=log, timeout=600)
        elapsed = time.monotonic() - started
        print(f"molecule scenario {scenario}: {elapsed:.0f} s, rc={rc}, log {logfile}")
        if rc == 0:
            _record(scenario, elapsed)
    if rc != 0:
        lines = logfile.read_text(errors="replace").splitlines()
        tail = "\n".join(lines[-40:])
        pytest.fail(
            f"molecule test -s {scenario} failed (rc={rc}); what failed:\n{_failures(lines)}\n"
            f"last lines of {logfile}:\n{tail}",
            pytrace=False,
        )


def _failures(lines: list[str], limit: int = 6, width: int = 12) -> str:
    """Each failed Ansible task (with its TASK line) and each failed pytest test in a log.

    A scenario's log ends with the destroy step; why it failed is further up.
    """
    found: list[str] = []
    task = ""
    for number, line in enumerate(lines):
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line
        elif line.startswith(("fatal: ", "failed: ")):
            after = lines[number + 1 : number + width]
            if after[:1] == ["...ignoring"]:
                continue
            found.append("\n".join([task, line, *after]))
        elif line.startswith("FAILED ") and "::" in line.split()[1]:
            found.append(line)  # pytest's short summary of the verifier
        if len(found) >= limit:
            break
    return "\n---\n".join(found) or "(no failed task or test in the log; see its end)"

"""The zero-downtime upgrade of one host (its own HAProxy, two app slots) under load.

The figures come from the Molecule ``single`` scenario's own upgrade test
(``molecule/single/tests/test_single.py``), run alone: site.yml brings up the host of
``inventories/pi`` with release v1 in slot blue; then, while the cluster's ``loadgen.py``
on that host reads, writes, uploads and holds 20 event streams through HAProxy's HTTPS
port, ``upgrade.yml`` moves it to ``upgrade-v2`` (an expand-only migration) in slot green.
The test writes what the load generator counted to ``$NB_SINGLE_REPORT.upgrade.json``,
also when it fails.

The scenario runs from a copy of the checkout in which it is called ``bench_single``, with
a container of its own name, so it may run beside the suite's ``single``. The host is
removed after every run, and before one when a stopped run left it. Run by
``bench/run.py single``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "bench_single"
CONTAINER = "nb-mol-bench_single"
LOG = ROOT / "build" / "bench" / "single.log"
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - scripts/testbed.py: copy_checkout

# The files of the copied scenario that name its container.
NAMING_THE_CONTAINER = (
    "molecule.yml",
    "inventory/host_vars/noticeboard-pi.yml",
    "tests/conftest.py",
)


def scenario_copy(dest: Path) -> Path:
    """A copy of the checkout whose single scenario is SCENARIO, in CONTAINER."""
    project = testbed.copy_checkout(dest)
    scenario = project / "molecule" / SCENARIO
    (project / "molecule" / "single").rename(scenario)
    for name in NAMING_THE_CONTAINER:
        path = scenario / name
        path.write_text(path.read_text().replace("nb-mol-single", CONTAINER))
    link = project / ".ansible" / "collections" / "ansible_collections" / "noticeboard" / "deploy"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(project, link.parent), target_is_directory=True)
    return project


def molecule(project: Path, step: str, env: dict[str, str], log) -> tuple[int, float]:
    """One Molecule step on the scenario; its return code and seconds. Output to LOG."""
    cmd = [
        str(Path(sys.executable).parent / "molecule"),
        *("-c", str(project / "molecule" / "config.yml")),
        *(step, "-s", SCENARIO),
    ]
    print(f"bench: single: molecule {step} ...", flush=True)
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    started = time.monotonic()
    done = subprocess.run(
        cmd,
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=3600,
        check=False,
    )
    return done.returncode, time.monotonic() - started


def leftover() -> bool:
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name=^{CONTAINER}$"],
        capture_output=True,
        text=True,
        check=True,
    )
    return bool(found.stdout.split())


def run_upgrade_under_load() -> dict:
    """Create the host, converge, run the upgrade test; its report."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nb-bench-single-") as tmp:
        project = scenario_copy(Path(tmp) / "noticeboard")
        report = Path(tmp) / "report"
        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "ANSIBLE_FORCE_COLOR": "0",
            "NO_COLOR": "1",
            "PY_COLORS": "0",
            "NB_SINGLE_REPORT": str(report),
            "PYTEST_ADDOPTS": "-k upgrade_under_load",
        }
        steps: dict[str, float] = {}
        rc = 1
        with LOG.open("w") as log:
            try:
                steps_to_run = ("create", "converge", "verify")
                if leftover():
                    steps_to_run = ("destroy", *steps_to_run)
                for step in steps_to_run:
                    rc, steps[step] = molecule(project, step, env, log)
                    if rc != 0 and step != "verify":
                        raise RuntimeError(f"molecule {step} -s {SCENARIO} failed; see {LOG}")
            finally:
                molecule(project, "destroy", env, log)
        written = report.with_name(report.name + ".upgrade.json")
        if not written.exists():
            raise RuntimeError(f"the upgrade test wrote no report (verify rc={rc}); see {LOG}")
        result = json.loads(written.read_text())
        shutil.copy(written, LOG.with_suffix(".json"))
    result["test_passed"] = rc == 0
    result["setup_s"] = {k: round(v, 1) for k, v in steps.items() if k != "verify"}
    return result


def bench_single(record) -> None:
    """Measure one single-host upgrade under load; record through bench/run.py's ``record``."""
    command = (
        "nox -s bench -- single  (molecule/single's upgrade test on a host of its own;"
        " log in build/bench/single.log)"
    )
    result = run_upgrade_under_load()
    streams = result["streams"]
    context = {
        "upgrade_rc": result["rc"],
        "test_passed": result["test_passed"],
        "requests": result["requests"],
        "writes": result["writes"],
        "reads": result["reads"],
        "uploads": result["uploads"],
        "slowest_request_s": result["slowest_request_seconds"],
        "streams": streams["clients"],
        "streams_resumed": streams["resumed"],
        "events_delivered": streams["delivered"],
        "setup_s": result["setup_s"],
    }
    print(f"bench: single: {json.dumps(context)}", flush=True)
    record(
        "single_upgrade_s",
        result["seconds"],
        "s",
        command,
        note="upgrade.yml v1 -> upgrade-v2 (expand-only migration), one host switching"
        " between its two app slots behind its own HAProxy, under load",
        **context,
    )
    record(
        "single_upgrade_failed_requests",
        result["failed"],
        "requests",
        command,
        goal=0,
        baseline=result["requests"],
        failures=result["failures"][:10],
        note="baseline: the requests sent during the upgrade",
    )
    record(
        "single_upgrade_missed_events",
        streams["missed"],
        "events",
        command,
        goal=0,
        baseline=streams["delivered"] + streams["missed"],
        missed_sample=streams["missed_sample"],
        note="baseline: the events owed to the streams (acknowledged writes x streams)",
    )

"""The rolling upgrade of two app hosts under load, on hosts of its own.

The figures come from the Molecule ``cluster`` scenario's own upgrade test
(``molecule/cluster/tests/test_upgrade.py``), run alone: site.yml brings up lb, app1,
app2 and db with release v1; then, while ``loadgen.py`` on the lb host reads, writes,
uploads and holds 50 event streams through HAProxy, ``upgrade.yml`` moves both app hosts
to ``upgrade-v2`` (an expand-only migration), one at a time. The test writes what the
load generator counted to the file named by ``NB_ROLLING_REPORT``, also when it fails:
failed requests and missed events are figures here, not only assertions there.

The scenario runs from a copy of the checkout in which it is called ``bench_rolling``, so
that its Molecule state never mixes with the test suite's. Its hosts carry the shipped
inventory's names and fixed addresses, as the suite's ``cluster`` hosts do, so the two
must not run at the same time. The hosts are removed after every run, and before one
when a stopped run left some. Run by ``bench/run.py rolling``.
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
SCENARIO = "bench_rolling"
LOG = ROOT / "build" / "bench" / "rolling.log"
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - scripts/testbed.py: copy_checkout, images


def scenario_copy(dest: Path) -> Path:
    """A copy of the checkout whose cluster scenario is named SCENARIO; the collection
    resolves to the copy (what tests/molecule links for the checkout itself)."""
    project = testbed.copy_checkout(dest)
    (project / "molecule" / "cluster").rename(project / "molecule" / SCENARIO)
    link = project / ".ansible" / "collections" / "ansible_collections" / "noticeboard" / "deploy"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(project, link.parent), target_is_directory=True)
    return project


def leftover_hosts() -> list[str]:
    """Containers of this scenario that an earlier, stopped run left behind."""
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=org.noticeboard.molecule={SCENARIO}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.split()


def molecule(
    project: Path, step: str, env: dict[str, str], log, scenario: str = SCENARIO
) -> tuple[int, float]:
    """One Molecule step on SCENARIO; its return code and seconds. Output to LOG."""
    cmd = [
        str(Path(sys.executable).parent / "molecule"),
        *("-c", str(project / "molecule" / "config.yml")),
        *(step, "-s", scenario),
    ]
    print(f"bench: {scenario.removeprefix('bench_')}: molecule {step} ...", flush=True)
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    started = time.monotonic()
    rc = subprocess.run(
        cmd,
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=3600,
        check=False,
    ).returncode
    return rc, time.monotonic() - started


def run_scenario(
    project: Path, scenario: str, env: dict[str, str], leftover: bool, log: Path
) -> tuple[int, dict[str, float]]:
    """create, converge and verify SCENARIO (destroy first when a stopped run LEFTOVER
    hosts), then always destroy; verify's return code and each step's seconds. A failed
    create or converge raises: there is no upgrade to measure."""
    steps: dict[str, float] = {}
    rc = 1
    with log.open("w") as out:
        try:
            steps_to_run = ("create", "converge", "verify")
            if leftover:
                steps_to_run = ("destroy", *steps_to_run)
            for step in steps_to_run:
                rc, steps[step] = molecule(project, step, env, out, scenario)
                if rc != 0 and step != "verify":
                    raise RuntimeError(f"molecule {step} -s {scenario} failed; see {log}")
        finally:
            molecule(project, "destroy", env, out, scenario)
    return rc, steps


def run_upgrade_under_load() -> dict:
    """Create the hosts (create runs prepare too), converge, run the upgrade test; its report."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nb-bench-rolling-") as tmp:
        project = scenario_copy(Path(tmp) / "noticeboard")
        report = Path(tmp) / "report.json"
        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "ANSIBLE_FORCE_COLOR": "0",
            "NO_COLOR": "1",
            "PY_COLORS": "0",
            "NB_ROLLING_REPORT": str(report),
            # The verifier runs this one test of the scenario's tests directory.
            "PYTEST_ADDOPTS": "-k rolling_upgrade_under_load",
        }
        # create runs prepare.yml too (images into the test registry).
        rc, steps = run_scenario(project, SCENARIO, env, bool(leftover_hosts()), LOG)
        if not report.exists():
            raise RuntimeError(f"the upgrade test wrote no report (verify rc={rc}); see {LOG}")
        result = json.loads(report.read_text())
        shutil.copy(report, LOG.with_suffix(".json"))
    result["test_passed"] = rc == 0
    result["setup_s"] = {k: round(v, 1) for k, v in steps.items() if k != "verify"}
    return result


def record_upgrade(
    record, figures: tuple[str, str, str], result: dict, command: str, note: str
) -> None:
    """Record an upgrade-under-load report as three FIGURES: the upgrade's seconds (with
    what the load generator counted), the failed requests and the missed events."""
    seconds, failed, missed = figures
    streams = result["streams"]
    context = {
        "upgrade_rc": result["upgrade_rc"],
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
    print(f"bench: {seconds.removesuffix('_upgrade_s')}: {json.dumps(context)}", flush=True)
    record(seconds, result["upgrade_seconds"], "s", command, note=note, **context)
    record(
        failed,
        result["failed"],
        "requests",
        command,
        goal=0,
        baseline=result["requests"],
        failures=result["failures"][:10],
        note="baseline: the requests sent during the upgrade",
    )
    record(
        missed,
        streams["missed"],
        "events",
        command,
        goal=0,
        baseline=streams["delivered"] + streams["missed"],
        missed_sample=streams["missed_sample"],
        note="baseline: the events owed to the streams (acknowledged writes x streams)",
    )


def bench_rolling(record) -> None:
    """Measure one rolling upgrade under load; record through bench/run.py's ``record``."""
    command = (
        "nox -s bench -- rolling  (molecule/cluster's upgrade test on hosts of its own;"
        " log in build/bench/rolling.log)"
    )
    record_upgrade(
        record,
        ("rolling_upgrade_s", "rolling_failed_requests", "rolling_missed_events"),
        run_upgrade_under_load(),
        command,
        "upgrade.yml v1 -> upgrade-v2 (expand-only migration), two app hosts, serial 1,"
        " under load through HAProxy",
    )

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "bench_single"
CONTAINER = "nb-mol-bench_single"
LOG = ROOT / "build" / "bench" / "single.log"
sys.path.insert(0, str(ROOT / "scripts"))

import rolling  # noqa: E402 - bench/rolling.py: run_scenario, record_upgrade

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
        rc, steps = rolling.run_scenario(project, SCENARIO, env, leftover(), LOG)
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
    # The single test's report names them for any playbook (upgrade.yml, rollback.yml).
    result["upgrade_seconds"], result["upgrade_rc"] = result["seconds"], result["rc"]
    rolling.record_upgrade(
        record,
        ("single_upgrade_s", "single_upgrade_failed_requests", "single_upgrade_missed_events"),
        result,
        command,
        "upgrade.yml v1 -> upgrade-v2 (expand-only migration), one host switching"
        " between its two app slots behind its own HAProxy, under load",
    )

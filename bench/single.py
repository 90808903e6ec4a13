"""The zero-downtime upgrade of one host (its own HAProxy, two app slots) under load.

The figures come from the Molecule ``single`` scenario's own upgrade test
(``molecule/single/tests/test_single.py``), run alone: site.yml brings up the host of
``inventories/pi`` with release v1 in slot blue; then, while the cluster's ``loadgen.py``
on that host reads, writes, uploads and holds 20 event streams through HAProxy's HTTPS
port, ``upgrade.yml`` moves it to ``upgrade-v2`` (an expand-only migration) in slot green.
The test writes what the load generator counted to ``$NB_SINGLE_REPORT.upgrade.json``,
also when it fails.

Then, on the same host under the same load, what a user would do instead:
bench/plain_compose_upgrade.py (copied into the scenario's tests) upgrades the
production compose file by ``docker compose pull && docker compose up -d`` and writes
``$NB_SINGLE_REPORT.plain-compose.json``; both are recorded side by side.

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
PLAIN_COMPOSE = ROOT / "bench" / "plain_compose_upgrade.py"
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
    shutil.copy(PLAIN_COMPOSE, scenario / "tests" / "test_upgrade_by_plain_compose.py")
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


def run_upgrade_under_load() -> dict[str, dict]:
    """Create the host, converge, run the upgrade test and the plain compose upgrade; their
    reports by name ("upgrade", "plain-compose")."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    if shutil.which("molecule", path=path) is None:
        raise RuntimeError(
            f"the single group runs Molecule, which is neither beside {sys.executable} nor"
            " on PATH: run it as `nox -s bench -- single`, or from the interpreter of the"
            " venv scripts/test-all made (.venv/bin/python bench/run.py single)"
        )
    with tempfile.TemporaryDirectory(prefix="nb-bench-single-") as tmp:
        project = scenario_copy(Path(tmp) / "noticeboard")
        report = Path(tmp) / "report"
        env = {
            **os.environ,
            "PATH": path,
            "ANSIBLE_FORCE_COLOR": "0",
            "NO_COLOR": "1",
            "PY_COLORS": "0",
            "NB_SINGLE_REPORT": str(report),
            "PYTEST_ADDOPTS": "-k 'upgrade_under_load or plain_compose'",
        }
        rc, steps = rolling.run_scenario(project, SCENARIO, env, leftover(), LOG)
        reports = {}
        for name in ("upgrade", "plain-compose"):
            written = report.with_name(f"{report.name}.{name}.json")
            if not written.exists():
                raise RuntimeError(f"the {name} test wrote no report (verify rc={rc}); see {LOG}")
            reports[name] = json.loads(written.read_text())
            shutil.copy(written, LOG.with_name(f"single.{name}.json"))
    setup_s = {k: round(v, 1) for k, v in steps.items() if k != "verify"}
    for result in reports.values():
        result["test_passed"] = rc == 0
        result["setup_s"] = setup_s
    return reports


def bench_single(record) -> None:
    """Measure one single-host upgrade under load; record through bench/run.py's ``record``."""
    command = (
        "nox -s bench -- single  (molecule/single's upgrade test on a host of its own;"
        " log in build/bench/single.log)"
    )
    reports = run_upgrade_under_load()
    plain = reports["plain-compose"]
    described = {
        "upgrade": (
            "single_upgrade",
            "upgrade.yml v1 -> upgrade-v2 (expand-only migration), one host switching"
            " between its two app slots behind its own HAProxy, under load",
        ),
        "plain-compose": (
            "plain_compose_upgrade",
            "what a user would do instead, on the same host under the same load: the"
            " production compose file (SQLite, port published) moved from v1 to upgrade-v2"
            " by `docker compose pull && docker compose up -d`; seconds until /readyz"
            f" answers again ({plain['command_seconds']} s for the two commands; the release"
            " was already on the host from the upgrade before, so the pull only checked it)",
        ),
    }
    for name, (prefix, note) in described.items():
        result = reports[name]
        # Each report names them for any playbook (upgrade.yml, rollback.yml) or command.
        result["upgrade_seconds"], result["upgrade_rc"] = result["seconds"], result["rc"]
        figures = (f"{prefix}_s", f"{prefix}_failed_requests", f"{prefix}_missed_events")
        rolling.record_upgrade(record, figures, result, command, note)

"""Rollout times: a cold ``site.yml``, a no-op re-run and an upgrade to a new tag, in one run.

Everything goes through ``scripts/rollout-local`` (the README's first command), on a
throwaway host of its own (``NB_LOCAL_HOST``) so that a user's local rollout is left
alone:

1. cold: the host is removed with its Docker data first, so site.yml installs Docker
   from Debian's packages, pulls the image and migrates a new database;
2. no-op: the same command again; its recap must say ``changed=0`` (recorded as read);
3. upgrade: a copy of the checkout with a one-line change gives a new image and so a new
   tag; site.yml pulls it and replaces the container.

Between 2 and 3, on the deployed host: how long Compose's ``up --wait`` takes to see a
recreated app healthy, with the health check's start interval the role renders and, as
the baseline, the same compose file without it (the first check one 10 s interval after
the start), alternately, three times each.

The figures are the seconds rollout-local reports for its ``site.yml`` run (the image
build and the host's creation are outside them). Run by ``bench/run.py deploy``.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLLOUT = ROOT / "scripts" / "rollout-local"
HOST = "nb-bench-deploy"
LOG = ROOT / ".testbed" / f"rollout-local-{HOST}" / "ansible.log"
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - scripts/testbed.py: copy_checkout


def rollout(port: int, *args: str, context: Path | None = None) -> dict:
    """Run rollout-local against the bench host; the site.yml seconds and its recap."""
    env = {
        **os.environ,
        "NB_LOCAL_HOST": HOST,
        "NB_LOCAL_PORT": str(port),
        # Per-task times in the log, to say where the seconds go.
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
    }
    if context:
        env["NB_LOCAL_CONTEXT"] = str(context)
    started = time.monotonic()
    done = subprocess.run(
        [str(ROLLOUT), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    total = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"rollout-local {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    if args:
        return {}
    took = re.search(r"site\.yml took ([\d.]+) s", done.stdout)
    recap = re.search(r"^nb-local-host\s*:\s*(.*)$", done.stdout, re.M)
    if not (took and recap):
        raise RuntimeError(f"no timing or recap in rollout-local's output:\n{done.stdout}")
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}
    print(f"bench: deploy {took.group(1)} s, {recap.group(1).strip()}", flush=True)
    return {
        "seconds": float(took.group(1)),
        "recap": counts,
        "script_s": round(total, 1),
        "slowest_tasks": slowest_tasks(),
    }


def slowest_tasks(count: int = 5) -> dict[str, float]:
    """The slowest tasks of the last run, from profile_tasks' summary at the log's end."""
    rows = re.findall(r"^(\S.*?) -{3,} (\d+\.\d+)s$", LOG.read_text(), re.M)
    ranked = sorted(((float(s), name.strip()) for name, s in rows), reverse=True)
    return {name: secs for secs, name in ranked[:count]}


HEALTH_RUNS = 3
# Where the app role puts the compose project (noticeboard_dir, as inventories/local has it).
APP_DIR = "/opt/noticeboard"


def healthy_after_recreate(compose_file: str) -> float:
    """Seconds ``docker compose up --wait --force-recreate`` takes for the app on the bench
    host, with COMPOSE_FILE in the app's directory."""
    started = time.monotonic()
    subprocess.run(
        [
            "docker",
            "exec",
            "-w",
            APP_DIR,
            HOST,
            "docker",
            "compose",
            "-f",
            compose_file,
            "up",
            "--detach",
            "--wait",
            "--force-recreate",
            "app",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return round(time.monotonic() - started, 2)


def health_wait() -> dict[str, list[float]]:
    """Recreate-to-healthy seconds with the role's compose file and with a copy without
    its start_interval, alternately; the role's file serves again afterwards."""
    baseline_file = ".bench-no-start-interval.yml"
    rendered = subprocess.run(
        ["docker", "exec", HOST, "cat", f"{APP_DIR}/compose.yml"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "start_interval:" not in rendered:
        raise RuntimeError("the role's compose file has no start_interval to compare against")
    without = "".join(
        line for line in rendered.splitlines(keepends=True) if "start_interval:" not in line
    )
    subprocess.run(
        ["docker", "exec", "-i", HOST, "sh", "-c", f"cat > {APP_DIR}/{baseline_file}"],
        input=without,
        check=True,
        text=True,
    )
    times: dict[str, list[float]] = {"start_interval": [], "without": []}
    try:
        for _ in range(HEALTH_RUNS):
            times["without"].append(healthy_after_recreate(baseline_file))
            times["start_interval"].append(healthy_after_recreate("compose.yml"))
    finally:
        subprocess.run(
            ["docker", "exec", HOST, "rm", "-f", f"{APP_DIR}/{baseline_file}"], check=False
        )
    print(f"bench: recreate to healthy {times}", flush=True)
    return times


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_deploy(record) -> None:
    """Measure the three rollouts and record them through bench/run.py's ``record``."""
    port = free_port()
    command = "nox -s bench -- deploy  (scripts/rollout-local on a throwaway host)"
    rollout(port, "--down")
    try:
        cold = rollout(port)
        noop = rollout(port)
        health = health_wait()
        with tempfile.TemporaryDirectory(prefix="nb-bench-deploy-") as tmp:
            context = testbed.copy_checkout(Path(tmp))
            with (context / "src" / "noticeboard" / "web.py").open("a") as fh:
                fh.write("\n# a one-line change, released as a new tag\n")
            upgrade = rollout(port, context=context)
    finally:
        rollout(port, "--down")
    record(
        "deploy_cold_s",
        round(cold["seconds"], 1),
        "s",
        command,
        recap=cold["recap"],
        slowest_tasks=cold["slowest_tasks"],
        note="fresh host: Docker from Debian's packages, image pull, first migration",
    )
    record(
        "deploy_noop_s",
        round(noop["seconds"], 1),
        "s",
        command,
        baseline=round(cold["seconds"], 1),
        changed=noop["recap"].get("changed"),
        recap=noop["recap"],
        slowest_tasks=noop["slowest_tasks"],
    )
    record(
        "deploy_noop_ratio",
        round(noop["seconds"] / cold["seconds"], 3),
        "ratio",
        command,
        goal=0.2,
        changed=noop["recap"].get("changed"),
        note="no-op re-run over the cold run; the recap must say changed=0",
    )
    record(
        "app_recreate_healthy_s",
        statistics.median(health["start_interval"]),
        "s",
        command,
        baseline=statistics.median(health["without"]),
        baseline_is="the same compose file without start_interval, alternately in the same run",
        runs=health,
        note="docker compose up --wait --force-recreate app on the deployed host, median of "
        f"{HEALTH_RUNS}",
    )
    record(
        "deploy_upgrade_s",
        round(upgrade["seconds"], 1),
        "s",
        command,
        recap=upgrade["recap"],
        slowest_tasks=upgrade["slowest_tasks"],
        change="one line appended to src/noticeboard/web.py, built and pushed as a new tag",
    )

"""Rollout times: a cold ``site.yml``, a no-op re-run and an upgrade to a new tag, in one run.

Everything goes through ``scripts/rollout-local`` (the README's first command), on a
throwaway host of its own (``NB_LOCAL_HOST``) so that a user's local rollout is left
alone:

1. cold: the host is removed with its Docker data first, so site.yml installs Docker
   from Debian's packages, pulls the image and migrates a new database;
2. no-op: the same command again; its recap must say ``changed=0`` (recorded as read);
3. upgrade: a copy of the checkout with a one-line change gives a new image and so a new
   tag; site.yml pulls it and replaces the container.

The figures are the seconds rollout-local reports for its ``site.yml`` run (the image
build and the host's creation are outside them). Run by ``bench/run.py deploy``.
"""

from __future__ import annotations

import os
import re
import socket
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
        "deploy_upgrade_s",
        round(upgrade["seconds"], 1),
        "s",
        command,
        recap=upgrade["recap"],
        slowest_tasks=upgrade["slowest_tasks"],
        change="one line appended to src/noticeboard/web.py, built and pushed as a new tag",
    )

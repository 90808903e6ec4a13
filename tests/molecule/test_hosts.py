"""Waiting for a test host to boot (scripts/testbed.py's ensure_host, which
scripts/rollout-local uses): the first look can come before systemd is PID 1, when
systemctl answers "offline"; that is waited out, not taken for a failed boot.

Here the host's systemd starts a few seconds late on purpose, so the first look always
comes before it. Runs in the molecule session, after molecule_images built the host image.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - scripts/testbed.py


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [testbed.docker_cli(), *args], capture_output=True, text=True, check=check, timeout=300
    )


def test_a_host_whose_systemd_starts_late_is_waited_for(tmp_path: Path) -> None:
    testbed.ensure_images(["systemd-host"])
    (tmp_path / "Dockerfile").write_text(
        f"FROM {testbed.IMAGES['systemd-host'].tag}\n"
        'ENTRYPOINT ["/bin/sh", "-c", "sleep 3; exec /sbin/init"]\n'
    )
    suffix = uuid.uuid4().hex[:8]
    tag, name = f"local/late-boot:{suffix}", f"nb-late-boot-{suffix}"
    docker("build", "-q", "-t", tag, str(tmp_path))
    try:
        # Before systemd runs, systemctl says "offline" (what the first look sees).
        early = docker(
            "run", "--rm", "--entrypoint=systemctl", tag, "is-system-running", check=False
        )
        assert early.stdout.strip() == "offline"
        testbed.ensure_host(name, tag, ["--label", f"{testbed.LABEL}=test"])
        state = docker("exec", name, "systemctl", "is-system-running").stdout.strip()
        assert state == "running"
    finally:
        docker("rm", "-f", "-v", name, check=False)
        docker("rmi", tag, check=False)

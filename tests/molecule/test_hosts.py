"""Waiting for a test host to boot (scripts/testbed.py's ensure_host, which
scripts/rollout-local uses): the first look can come before systemd is PID 1, when
systemctl answers "offline"; that is waited out, not taken for a failed boot.

Here the host's systemd starts a few seconds late on purpose, so the first look always
comes before it. Runs in the molecule session, after molecule_images built the host image.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - scripts/testbed.py


def test_a_host_whose_systemd_starts_late_is_waited_for(tmp_path: Path) -> None:
    testbed.ensure_images(["systemd-host"])
    (tmp_path / "Dockerfile").write_text(
        f"FROM {testbed.IMAGES['systemd-host'].tag}\n"
        'ENTRYPOINT ["/bin/sh", "-c", "sleep 3; exec /sbin/init"]\n'
    )
    suffix = uuid.uuid4().hex[:8]
    tag, name = f"local/late-boot:{suffix}", f"nb-late-boot-{suffix}"
    docker = testbed.docker_cli()
    testbed.run([docker, "build", "-q", "-t", tag, str(tmp_path)], quiet=True)
    try:
        # Before systemd runs, systemctl says "offline" (what the first look sees).
        early = testbed.run(
            [docker, "run", "--rm", "--entrypoint=systemctl", tag, "is-system-running"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert early.stdout.strip() == "offline"
        testbed.ensure_host(name, tag, ["--label", f"{testbed.LABEL}=test"])
        state = testbed.run(
            [docker, "exec", name, "systemctl", "is-system-running"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert state.stdout.strip() == "running"
    finally:
        testbed.run([docker, "rm", "-f", "-v", name], check=False, quiet=True)
        testbed.run([docker, "rmi", tag], check=False, quiet=True)

"""The test-bed's promises: a bare Debian host gets a Docker engine, and cached images stay.

The bare host is a Debian 13 container without Docker and without systemd, like the
machines CI runs on, with this checkout's scripts mounted read-only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - scripts/testbed.py


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [testbed.docker_cli(), *args], capture_output=True, text=True, check=check, timeout=900
    )


@pytest.fixture
def bare_host():
    # The machine CI runs on: Debian without systemd as PID 1 (Docker's init reaps the
    # engine's orphans instead) and without Docker.
    name = f"nb-bare-{uuid.uuid4().hex[:8]}"
    testbed.ensure_images(["molecule-host"])
    docker(
        "run",
        "-d",
        "--init",
        "--name",
        name,
        "--label",
        f"{testbed.LABEL}=test",
        *testbed.host_run_args(),
        "-v",
        "/var/lib/docker",
        "-v",
        f"{ROOT / 'scripts'}:/repo/scripts:ro",
        testbed.IMAGES["molecule-host"].tag,
        "sleep",
        "infinity",
    )
    try:
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False)


def test_a_bare_debian_host_gets_a_running_engine_and_keeps_it(bare_host: str) -> None:
    assert docker("exec", bare_host, "sh", "-c", "command -v dockerd", check=False).returncode
    first = docker("exec", bare_host, "python3", "/repo/scripts/testbed.py", "engine")
    assert "docker engine is up" in first.stdout
    info = docker("exec", bare_host, "docker", "info", "--format", "{{.Driver}}")
    assert info.stdout.strip() == "overlay2"
    again = docker("exec", bare_host, "python3", "/repo/scripts/testbed.py", "engine")
    assert "answers; leaving it alone" in again.stdout


def test_cached_base_images_are_not_rebuilt() -> None:
    testbed.ensure_images(["trixie"])
    before = docker("image", "inspect", "-f", "{{.Id}}", "local/debian:trixie").stdout
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "testbed.py"), "images", "trixie"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "building" not in out
    after = docker("image", "inspect", "-f", "{{.Id}}", "local/debian:trixie").stdout
    assert before == after
    status = json.loads(
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "testbed.py"), "status"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert status["images"]["trixie"] is True

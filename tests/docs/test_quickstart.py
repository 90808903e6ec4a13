"""The documentation's commands, run as written, so the docs cannot rot.

The quick start in docs/deployment.rst is included from docs/examples/; these tests run
those very files on the test-bed, in a scratch copy of the repository, and check that
they end with a ready app that refuses a signed-out request and serves its first admin.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - scripts/testbed.py


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository's files as a user's clone has them."""
    return testbed.copy_checkout(tmp_path)


def test_compose_quickstart_ends_with_a_ready_app_that_asks_for_a_sign_in(checkout: Path) -> None:
    project = f"nbdocs{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "NB_BUILD_FLAGS": "--testbed",
        "COMPOSE_PROJECT_NAME": project,
        "NOTICEBOARD_PUBLISH": str(port),
    }
    compose = ["docker", "compose", "-f", "docker/docker-compose.prod.yml"]
    try:
        result = subprocess.run(
            ["bash", "docs/examples/compose-quickstart.sh"],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        *_, ready_line, signed_out, signed_in = lines
        ready = json.loads(ready_line)
        assert ready["status"] == "ready", ready
        # The board it starts is closed to strangers and open to its first admin.
        assert (signed_out, signed_in) == ("signed out: 401", "signed in: 200"), result.stdout
        env_file = (checkout / "docker" / ".env").read_text()
        assert "SECRET_KEY=" in env_file
        secret = checkout / "docker" / "secrets" / "admin_password"
        assert secret.stat().st_mode & 0o777 == 0o644
        assert secret.parent.stat().st_mode & 0o777 == 0o700
    finally:
        subprocess.run(
            [*compose, "down", "-v", "--remove-orphans"],
            cwd=checkout,
            env=env,
            capture_output=True,
            timeout=300,
        )

"""Each bad input fails before any change, with a message naming the variable to fix."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
GOOD = {"noticeboard_secret_key": "molecule-only-0f3b8d6a2c4e9f1a7b5d3c8e6a4f2b0d"}
DROP = object()

# (id, role, extra vars, text the failure must contain)
CASES = [
    ("missing-secret-key", "app", {"noticeboard_secret_key": DROP}, "noticeboard_secret_key"),
    (
        "placeholder-secret-key",
        "app",
        {"noticeboard_secret_key": "changeme"},
        "noticeboard_secret_key",
    ),
    (
        "short-secret-key",
        "app",
        {"noticeboard_secret_key": "a1b2c3d4e5f6g7h8"},
        "noticeboard_secret_key",
    ),
    (
        "unknown-database-engine",
        "app",
        {"noticeboard_database_url": "oracle://db/x"},
        "noticeboard_database_url",
    ),
    ("non-numeric-port", "app", {"noticeboard_port": "http"}, "noticeboard_port"),
    ("port-out-of-range", "app", {"noticeboard_port": 70000}, "noticeboard_port"),
    (
        "unknown-image-source",
        "app",
        {"noticeboard_image_source": "ftp"},
        "noticeboard_image_source",
    ),
    (
        "archive-mode-without-archive",
        "app",
        {"noticeboard_image_source": "archive"},
        "noticeboard_image_archive",
    ),
    (
        "archive-not-on-controller",
        "app",
        {"noticeboard_image_source": "archive", "noticeboard_image_archive": "/nonexistent/nb.tar"},
        "noticeboard_image_archive",
    ),
    (
        "settings-not-a-mapping",
        "app",
        {"noticeboard_settings": ["GUNICORN_WORKERS", "2"]},
        "noticeboard_settings",
    ),
    ("no-compose-v2-on-host", "app", {}, "docker_engine"),
    ("sqlite-on-two-app-hosts", "app+twin", {}, "noticeboard_database_url"),
    (
        "unknown-docker-source",
        "docker_engine",
        {"docker_engine_source": "snap"},
        "docker_engine_source",
    ),
    (
        "compose-minimum-not-a-version",
        "docker_engine",
        {"docker_engine_compose_min_version": "latest"},
        "docker_engine_compose_min_version",
    ),
    (
        "log-files-not-a-number",
        "docker_engine",
        {"docker_engine_log_max_file": "many"},
        "docker_engine_log_max_file",
    ),
    (
        "users-not-a-list",
        "docker_engine",
        {"docker_engine_users": {"pi": True}},
        "docker_engine_users",
    ),
]


def attempt(role: str, extra: dict) -> subprocess.CompletedProcess:
    """Run one role; role "app+twin" adds a second inventory name for the same host."""
    extra = {k: v for k, v in {**GOOD, **extra}.items() if v is not DROP}
    role, _, twin = role.partition("+")
    inventories = [os.environ["MOLECULE_INVENTORY_FILE"]]
    if twin:
        inventories.append(str(SCENARIO / "twin-inventory.yml"))
    cmd = [
        "ansible-playbook",
        *(arg for inv in inventories for arg in ("-i", inv)),
        str(SCENARIO / f"attempt-{role}.yml"),
        "-e",
        json.dumps(extra),
    ]
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "ANSIBLE_NOCOLOR": "1"}
    )


@pytest.mark.parametrize(
    ("role", "extra", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_fails_early_and_names_the_variable(host, role, extra, names):
    done = attempt(role, extra)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert names in out, out[-3000:]
    recap = next(row for row in done.stdout.splitlines() if row.startswith("nb-mol-bad_inventory"))
    assert "changed=0" in recap and "failed=1" in recap, recap


def test_nothing_was_installed_or_written(host):
    assert not host.file("/opt/noticeboard").exists
    assert not host.file("/etc/docker").exists
    assert not host.package("docker.io").is_installed

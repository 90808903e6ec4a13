"""playbooks/uninstall.yml with noticeboard_uninstall_docker=true on a host that has Docker
from the docker_engine role and none of the rest (no app, MariaDB or HAProxy): the engine,
Compose, the repository, daemon.json and the drop-in go; images and volumes stay.

Files run in name order: this one comes after the role's own checks, and the scenario's
host is destroyed after it. Shared by docker_engine_upstream (Docker's repository).
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

CONFIG = [
    "/etc/docker/daemon.json",
    "/etc/systemd/system/docker.service.d/noticeboard-environment.conf",
    "/etc/apt/sources.list.d/docker.sources",
]
PACKAGES = [
    "docker.io",
    "docker-cli",
    "docker-compose",
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-compose-plugin",
]
KEPT = "uninstall-keeps-this-volume"


def _host_name() -> str:
    return "nb-mol-" + os.environ["MOLECULE_SCENARIO_NAME"]


def uninstall(*extra: str) -> int:
    """Run uninstall.yml with the host in every group it names; the host's changed= count."""
    groups = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "uninstall-groups.yml")
    with open(groups, "w") as out:
        for group in ("app", "db", "lb"):
            out.write(f"{group}:\n  hosts:\n    {_host_name()}: {{}}\n")
    done = subprocess.run(
        [
            "ansible-playbook",
            "-i", os.environ["MOLECULE_INVENTORY_FILE"],
            "-i", groups,
            os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", "uninstall.yml"),
            "-e", "noticeboard_uninstall_docker=true",
            *extra,
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    recap = re.findall(rf"{re.escape(_host_name())}\s+: ok=\d+\s+changed=(\d+)", done.stdout)
    assert recap, done.stdout[-3000:]
    return int(recap[-1])


def installed(host) -> list[str]:
    return [name for name in PACKAGES if host.package(name).is_installed]


@pytest.mark.timeout(900)
def test_uninstall_removes_docker_when_asked_and_keeps_its_data(host):
    if installed(host):
        host.check_output(f"docker volume create {KEPT}")
        before = installed(host)

        # --check reports and changes nothing.
        assert uninstall("--check") > 0
        assert installed(host) == before
        assert host.service("docker").is_running

        assert uninstall() > 0

    assert installed(host) == []
    assert not host.service("docker").is_running
    assert host.run("command -v dockerd").rc != 0
    for path in CONFIG:
        assert not host.file(path).exists, path
    # Images, containers and volumes stay unless purging was asked for.
    assert host.file(f"/var/lib/docker/volumes/{KEPT}").is_directory

    # Nothing is left to do: a second run changes nothing.
    assert uninstall() == 0

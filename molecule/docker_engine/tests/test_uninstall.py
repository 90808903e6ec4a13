"""playbooks/uninstall.yml with noticeboard_uninstall_docker=true on a host that has Docker
from the docker_engine role and none of the rest (no app, MariaDB or HAProxy): the engine,
Compose, the repository, daemon.json and the drop-in go; images and volumes stay.

Files run in name order: this one comes after the role's own checks, and the scenario's
host is destroyed after it. docker_engine_upstream runs it too (Docker's repository).
"""

from __future__ import annotations

import pytest
from verifylib import group_inventory, hosts_in, run_playbook

CONFIG = [
    "/etc/docker/daemon.json",
    "/etc/systemd/system/docker.service.d/noticeboard-environment.conf",
    "/etc/apt/sources.list.d/docker.sources",
]
# Debian's names and Docker's: whichever source the role used.
PACKAGES = [
    "docker.io", "docker-cli", "docker-compose",
    "docker-ce", "docker-ce-cli", "containerd.io", "docker-compose-plugin",
]  # fmt: skip
KEPT = "uninstall-keeps-this-volume"
HOST = hosts_in("all")[0]


def uninstall(*extra: str) -> int:
    """uninstall.yml with Docker's removal asked for and the host in every group it
    names, as a host of a real inventory would be; the host's changed= count."""
    return run_playbook(
        "uninstall",
        *extra,
        extra_vars={"noticeboard_uninstall_docker": True},
        inventories=[group_inventory(HOST, ["app", "db", "lb"])],
    ).counter(HOST)


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

"""The test-bed's stand-in for Docker's apt repository, seen from a Debian 12 host.

A plain ``local/debian:bookworm`` container on the nb-testbed network adds the stand-in the
way the docker_engine role adds Docker's repository (deb822, ``Signed-By`` the public key,
no ``trusted=yes``), installs Docker's five package names over a pre-installed
``docker.io`` and runs what they carry. apt must refuse the same repository when the
key it is told to trust is another one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - scripts/testbed.py

SOURCES = """\
Types: deb
URIs: {url}/debian
Suites: bookworm
Components: stable
Architectures: amd64
Signed-By: {key}
"""
# The role's minimum (noticeboard_compose_min_version).
COMPOSE_MIN = (2, 20, 0)


def docker(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [testbed.docker_cli(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=check,
        timeout=600,
    )


def sh(host: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    result = docker("exec", "-i", host, "bash", "-euo", "pipefail", "-s", stdin=script, check=False)
    if check and result.returncode != 0:
        pytest.fail(
            f"exit {result.returncode}\n{script}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def docker_repo() -> dict[str, object]:
    testbed.ensure_images(["bookworm"])
    return testbed.ensure_docker_repo()


@pytest.fixture
def bookworm_host(docker_repo: dict[str, object]):
    name = f"nb-dockerrepo-test-{uuid.uuid4().hex[:8]}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--label",
        f"{testbed.LABEL}=test",
        "--network",
        str(docker_repo["network"]),
        testbed.IMAGES["bookworm"].tag,
        "sleep",
        "infinity",
    )
    try:
        sh(name, "install -d -m 0755 /etc/apt/keyrings")
        docker("cp", str(docker_repo["key"]), f"{name}:/etc/apt/keyrings/docker.asc")
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def installed(host: str, package: str) -> bool:
    status = sh(host, f"dpkg-query -W -f='${{Status}}' {package} 2>/dev/null || true").stdout
    return status.endswith(" installed")


def test_the_role_s_package_names_install_over_debian_s_docker_io(
    docker_repo: dict[str, object], bookworm_host: str
) -> None:
    host = bookworm_host
    sources = SOURCES.format(url=docker_repo["url"], key="/etc/apt/keyrings/docker.asc")
    sh(host, f"cat >/etc/apt/sources.list.d/docker.sources <<'EOF'\n{sources}EOF\n")
    update = sh(host, "apt-get update")
    assert f"{docker_repo['url']}/debian bookworm InRelease" in update.stdout
    assert "trusted" not in sh(host, "cat /etc/apt/sources.list.d/docker.sources").stdout

    # A host that has Debian's engine: Docker's packages must push it out (Conflicts).
    env = "DEBIAN_FRONTEND=noninteractive"
    sh(host, f"{env} apt-get install -y -q --no-install-recommends docker.io")
    assert installed(host, "docker.io")
    packages = " ".join(testbed.DOCKER_REPO_PACKAGES)
    sh(host, f"{env} apt-get install -y -q --no-install-recommends {packages}")
    for package in testbed.DOCKER_REPO_PACKAGES:
        assert installed(host, package), package
    for package in ("docker.io", "containerd", "runc"):
        assert not installed(host, package), f"{package} should have been replaced"

    assert "20.10" in sh(host, "dockerd --version").stdout
    compose = sh(host, "docker compose version --short").stdout.strip()
    assert tuple(int(n) for n in re.match(r"v?(\d+)\.(\d+)\.(\d+)", compose).groups()) >= (
        COMPOSE_MIN
    ), compose
    assert "buildx" in sh(host, "docker buildx version").stdout
    sh(host, "containerd --version && runc --version && docker-init --version")

    # Where a systemd host looks for the units, enabled the way Debian's packages do it.
    sh(
        host,
        "test -f /lib/systemd/system/docker.service"
        " && test -f /lib/systemd/system/docker.socket"
        " && test -f /lib/systemd/system/containerd.service"
        " && test -L /etc/systemd/system/multi-user.target.wants/docker.service"
        " && test -L /etc/systemd/system/sockets.target.wants/docker.socket"
        " && test -L /etc/systemd/system/multi-user.target.wants/containerd.service"
        " && getent group docker"
        # sysvinit hosts: docker.io's removal made its init script non-executable.
        " && test -x /etc/init.d/docker",
    )


@pytest.mark.parametrize(
    "signed_by",
    [
        pytest.param("/usr/share/keyrings/debian-archive-keyring.gpg", id="another-key"),
        pytest.param(None, id="no-signed-by"),
    ],
)
def test_apt_refuses_the_stand_in_without_its_own_key(
    docker_repo: dict[str, object], bookworm_host: str, signed_by: str | None
) -> None:
    sources = SOURCES.format(url=docker_repo["url"], key=signed_by)
    if signed_by is None:
        sources = "\n".join(line for line in sources.splitlines() if "Signed-By" not in line)
    # Only the stand-in in this apt run, so that the check reads no other repository.
    sh(
        host := bookworm_host,
        f"mkdir -p /tmp/only && cat >/tmp/only/docker.sources <<'EOF'\n{sources}\nEOF\n",
    )
    only = "-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/tmp/only"
    update = sh(host, f"apt-get {only} update", check=False)
    assert update.returncode != 0
    assert "NO_PUBKEY" in update.stdout + update.stderr
    assert "is not signed" in update.stderr
    policy = sh(host, f"apt-cache {only} policy docker-ce").stdout
    assert "Candidate" not in policy or "Candidate: (none)" in policy


def test_a_second_run_reuses_the_key_and_the_repository(docker_repo: dict[str, object]) -> None:
    key = Path(str(docker_repo["key"])).read_text()
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "testbed.py"), "docker-repo"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "building" not in out and "signing key" not in out, out
    assert Path(str(docker_repo["key"])).read_text() == key
    status = json.loads(
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "testbed.py"), "status"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["docker_repo"]
    assert status["serving"] is True
    assert status["url"] == "http://docker-repo"
    for suite in ("bookworm", "trixie"):
        assert sorted(status["packages"][suite]) == sorted(testbed.DOCKER_REPO_PACKAGES)

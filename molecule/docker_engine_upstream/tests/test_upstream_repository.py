"""On Debian 12 the default source installs Docker from Docker's repository (the stand-in),
replacing Debian's docker.io, and the engine runs under systemd with Compose v2."""

import json

IMAGE = "registry:5000/testbed/debian:trixie"
UPSTREAM = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
)


def _sources(host):
    fields = {}
    for line in host.file("/etc/apt/sources.list.d/docker.sources").content_string.splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def test_the_host_is_debian_12_booting_systemd(host):
    assert host.system_info.codename == "bookworm"
    assert host.check_output("ps -o comm= -p 1") == "systemd"


def test_repository_file_is_deb822_for_this_release_and_architecture(host):
    f = host.file("/etc/apt/sources.list.d/docker.sources")
    assert f.user == "root" and f.mode == 0o644
    fields = _sources(host)
    assert fields["Types"] == "deb"
    assert fields["URIs"] == "http://docker-repo/debian"
    assert fields["Suites"] == "bookworm"
    assert fields["Components"] == "stable"
    assert fields["Architectures"] == host.check_output("dpkg --print-architecture")


def test_packages_are_verified_with_the_key_fetched_from_the_repository(host):
    fields = _sources(host)
    assert fields["Signed-By"] == "/etc/apt/keyrings/docker.asc"
    key = host.file(fields["Signed-By"])
    assert key.user == "root" and key.mode == 0o644
    assert key.content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # apt really verified it: the repository's lists are there and signed.
    lists = host.check_output("ls /var/lib/apt/lists/").split()
    assert "docker-repo_debian_dists_bookworm_InRelease" in lists


def test_dockers_packages_replaced_debians(host):
    for name in UPSTREAM:
        assert host.package(name).is_installed, name
    for name in ("docker.io", "docker-compose", "containerd", "runc"):
        assert not host.package(name).is_installed, name
    policy = host.check_output("apt-cache policy docker-ce")
    assert "http://docker-repo/debian bookworm/stable" in policy


def test_compose_v2_and_buildx_answer(host):
    version = host.check_output("docker compose version --short").lstrip("v")
    assert tuple(int(p) for p in version.split(".")[:2]) >= (2, 20)
    assert host.run("docker buildx version").rc == 0


def test_the_engine_runs_under_systemd_with_the_drop_in(host):
    for unit in ("docker", "containerd"):
        assert host.service(unit).is_enabled and host.service(unit).is_running, unit
    environment = host.check_output("systemctl show docker -p Environment")
    assert "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1" in environment
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LoggingDriver"] == "json-file"


def test_a_container_runs_from_an_image_pulled_from_the_registry(host):
    out = host.check_output(f"docker run --rm {IMAGE} cat /etc/debian_version")
    assert out.startswith("13")


def test_deploy_user_is_in_the_docker_group(host):
    assert "docker" in host.user("deploy").groups

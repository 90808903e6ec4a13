"""What the docker_engine role promises on a Debian 13 host that boots systemd, distro source."""

import json

IMAGE = "registry:5000/testbed/debian:trixie"


def test_engine_and_compose_plugin_are_installed_from_debian(host):
    for name in ("docker.io", "docker-cli", "docker-compose"):
        assert host.package(name).is_installed, name
    assert not host.file("/etc/apt/sources.list.d/docker.sources").exists


def test_daemon_json_rotates_logs_and_keeps_extra_options(host):
    daemon = host.file("/etc/docker/daemon.json")
    assert daemon.user == "root" and daemon.mode == 0o644
    config = json.loads(daemon.content_string)
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert config["insecure-registries"] == ["registry:5000"]


def test_dockerd_environment_is_a_systemd_drop_in(host):
    drop_in = host.file("/etc/systemd/system/docker.service.d/noticeboard-environment.conf")
    assert drop_in.user == "root" and drop_in.mode == 0o644
    assert drop_in.content_string.startswith("#")
    environment = host.check_output("systemctl show docker -p Environment")
    assert "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1" in environment.split("=", 1)[1].split()


def test_the_running_daemon_was_restarted_with_the_drop_in(host):
    # The package started dockerd before the drop-in existed: only a restart through
    # systemd gives the running process the variable.
    pid = host.check_output("systemctl show docker -p MainPID --value")
    assert int(pid) > 0
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1" in environ.splitlines()


def test_the_daemon_runs_with_json_file_logging(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LoggingDriver"] == "json-file"
    assert info["Driver"] == "overlay2"


def test_compose_v2_plugin_answers(host):
    version = host.check_output("docker compose version --short").lstrip("v")
    assert tuple(int(p) for p in version.split(".")[:2]) >= (2, 20)


def test_a_container_runs_from_an_image_pulled_from_the_registry(host):
    out = host.check_output(f"docker run --rm {IMAGE} cat /etc/debian_version")
    assert out.startswith("13")


def test_containers_find_each_other_by_name_on_a_user_network(host):
    host.check_output("docker network create nb-verify-net")
    try:
        host.check_output(
            f"docker run -d --name nb-verify-a --network nb-verify-net {IMAGE} sleep 60"
        )
        out = host.check_output(
            f"docker run --rm --network nb-verify-net {IMAGE} getent hosts nb-verify-a"
        )
        assert out.split()[1] == "nb-verify-a"
    finally:
        host.run("docker rm -f nb-verify-a")
        host.run("docker network rm nb-verify-net")


def test_deploy_user_is_in_the_docker_group(host):
    assert "docker" in host.user("deploy").groups


def test_docker_and_containerd_are_enabled_and_active_under_systemd(host):
    assert host.check_output("ps -o comm= -p 1") == "systemd"
    for unit in ("docker", "containerd"):
        service = host.service(unit)
        assert service.is_enabled, unit
        assert service.is_running, unit
    assert host.check_output("systemctl is-system-running") == "running"


def test_a_container_runs_under_a_memory_limit(host):
    # cgroups reach the inner engine: a limit is applied, not refused.
    out = host.check_output(
        f"docker run --rm --memory 64m {IMAGE} sh -c 'cat /sys/fs/cgroup/memory.max "
        "2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'"
    )
    assert int(out) == 64 * 1024 * 1024

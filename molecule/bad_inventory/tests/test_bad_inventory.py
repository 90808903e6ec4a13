"""Each bad input fails before any change, with a message naming the variable to fix."""

from __future__ import annotations

import pytest
from verifylib import SCENARIO, PlaybookRun, run_playbook

HOST = "nb-mol-bad_inventory"
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
        "health-timeout-without-unit",
        "app",
        {"noticeboard_health_timeout": "30"},
        "noticeboard_health_timeout",
    ),
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
    (
        "app-compose-minimum-not-a-version",
        "app",
        {"noticeboard_compose_min_version": "latest"},
        "noticeboard_compose_min_version",
    ),
    (
        # Raspberry Pi OS 11 (bullseye, 32-bit) as Ansible reports it.
        "unsupported-distribution",
        "docker_engine",
        {
            "bad_inventory_pretend": {
                "distribution": "Raspbian",
                "distribution_major_version": "11",
                "distribution_version": "11",
                "distribution_release": "bullseye",
                "architecture": "armv7l",
            }
        },
        "this host is Raspbian 11",
    ),
]

# Cases that need a Docker CLI with a Compose plugin on the host (Debian's packages,
# installed for them and purged afterwards; no engine): (id, extra vars, text, fake
# plugin version or None for the real one).
CLI_CASES = [
    (
        "compose-plugin-too-old",
        {},
        "noticeboard_compose_min_version",
        "2.12.2",
    ),
    (
        # tests/molecule/images.py pushed this tag for amd64 only; the host says it is an arm64 Pi.
        "image-without-host-architecture",
        {
            "noticeboard_image": "registry:5000/nb-molecule/amd64-only",
            "noticeboard_image_tag": "trixie",
            "noticeboard_registry_insecure": True,
            "bad_inventory_pretend": {"architecture": "aarch64"},
        },
        "noticeboard_image_tag",
        None,
    ),
    (
        "image-tag-not-in-registry",
        {
            "noticeboard_image": "registry:5000/nb-molecule/amd64-only",
            "noticeboard_image_tag": "no-such-tag",
            "noticeboard_registry_insecure": True,
        },
        "noticeboard_image_tag",
        None,
    ),
]
CLI_PACKAGES = "docker-cli docker-compose"
# Found before Debian's /usr/libexec/docker/cli-plugins: answers `compose version` with an
# old version and hands everything else to the real plugin.
FAKE_PLUGIN = "/usr/local/lib/docker/cli-plugins/docker-compose"
FAKE_PLUGIN_SCRIPT = """#!/bin/sh
if [ "$1" = compose ] && [ "$2" = version ]; then echo {version}; exit 0; fi
exec /usr/libexec/docker/cli-plugins/docker-compose "$@"
"""


def attempt(role: str, extra: dict) -> PlaybookRun:
    """Run one role; role "app+twin" adds a second inventory name for the same host."""
    extra = {k: v for k, v in {**GOOD, **extra}.items() if v is not DROP}
    role, _, twin = role.partition("+")
    return run_playbook(
        f"attempt-{role}.yml",
        extra_vars=extra,
        inventories=[SCENARIO / "twin-inventory.yml"] if twin else [],
        env={"ANSIBLE_NOCOLOR": "1"},
        ok=None,
    )


def assert_fails_early(role: str, extra: dict, names: str) -> None:
    done = attempt(role, extra)
    assert done.returncode != 0, done.output[-3000:]
    # The YAML callback wraps long messages; compare with the lines joined.
    assert names in done.said, done.output[-3000:]
    recap = done.recap[HOST]
    assert recap["changed"] == 0 and recap["failed"] == 1, recap


@pytest.mark.parametrize(
    ("role", "extra", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_fails_early_and_names_the_variable(host, role, extra, names):
    assert_fails_early(role, extra, names)


class TestWithDockerCli:
    @pytest.fixture(scope="class")
    def docker_cli(self, host):
        host.run_test(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
            f"apt-get install -y -qq --no-install-recommends {CLI_PACKAGES}"
        )
        assert host.run("docker compose version --short").rc == 0
        yield
        host.run_test(f"apt-get purge -y -qq --autoremove {CLI_PACKAGES}")

    @pytest.fixture
    def compose_version(self, host, request):
        version = request.param
        if version:
            host.run_test(
                "mkdir -p %s && printf '%%s' %s > %s && chmod 755 %s",
                FAKE_PLUGIN.rsplit("/", 1)[0],
                FAKE_PLUGIN_SCRIPT.format(version=version),
                FAKE_PLUGIN,
                FAKE_PLUGIN,
            )
            assert host.check_output("docker compose version --short") == version
        yield version
        host.run_test("rm -rf /usr/local/lib/docker")

    @pytest.mark.parametrize(
        ("extra", "names", "compose_version"),
        [c[1:] for c in CLI_CASES],
        ids=[c[0] for c in CLI_CASES],
        indirect=["compose_version"],
    )
    def test_bad_input_fails_early_and_names_the_variable(
        self, host, docker_cli, compose_version, extra, names
    ):
        assert_fails_early("app", extra, names)


def test_nothing_was_installed_or_written(host):
    assert not host.file("/opt/noticeboard").exists
    assert not host.file("/etc/docker").exists
    assert not host.package("docker.io").is_installed
    assert not host.package("docker-cli").is_installed

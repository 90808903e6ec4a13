"""The image on its own: lint, build, user, read-only root, health, contents."""

from __future__ import annotations

import re
import subprocess
import sys

from imagetools import ROOT, docker_cli, new_secret_key, sh, wait_healthy

DOCKER = docker_cli()
VENV_BIN = ROOT / ".venv" / "bin"
SHELL_SCRIPTS = [
    ROOT / "docker" / "docker-entrypoint.sh",
    ROOT / "docker" / "debian-python.sh",
    # Every stand-in's scripts, so that a new stand-in is linted without being listed.
    *sorted((ROOT / "docker" / "standins").glob("*/*.sh")),
]
DOCKERFILES = [
    ROOT / "docker" / "Dockerfile",
    *sorted((ROOT / "docker" / "standins").glob("*/Dockerfile")),
]


def tool(name: str) -> str:
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else name


def test_dockerfiles_are_hadolint_clean() -> None:
    sh(tool("hadolint"), *map(str, DOCKERFILES))


def test_shell_scripts_are_shellcheck_clean() -> None:
    sh(tool("shellcheck"), *map(str, SHELL_SCRIPTS))


def test_no_syntax_line_that_would_pull_a_frontend() -> None:
    for dockerfile in DOCKERFILES:
        assert not re.search(r"^#\s*syntax\s*=", dockerfile.read_text(), re.M), dockerfile


def test_env_example_is_generated_from_the_settings() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "env-example.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_compose_variable_is_documented() -> None:
    example = (ROOT / "docker" / ".env.docker.example").read_text()
    documented = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, re.M))
    builtin = {"COMPOSE_PROJECT_NAME"}
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker" / name).read_text()))
        missing = used - documented - builtin
        assert not missing, f"{name} uses undocumented variables: {sorted(missing)}"


def test_the_image_prints_the_same_settings_as_the_example(image: str) -> None:
    out = sh(DOCKER, "run", "--rm", image, "noticeboard", "settings", "env-example").stdout
    assert out in (ROOT / "docker" / ".env.docker.example").read_text()


def test_labels_and_runtime_configuration(client, image: str) -> None:
    config = client.images.get(image).attrs["Config"]
    labels = config["Labels"]
    for key in ("version", "revision", "source"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert config["User"] == "10001:10001"
    assert "PYTHONUNBUFFERED=1" in config["Env"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"][-1] == "noticeboard-healthcheck"
    assert "/data" in config["Volumes"]
    assert "8000/tcp" in config["ExposedPorts"]


def test_runtime_has_no_build_tools_or_ca_bundle_from_the_build(image: str) -> None:
    script = (
        "for t in gcc cc node npm pip pip3 curl strip; do command -v $t && exit 1; done; "
        "ls -d /root/.cache /root/.npm /tmp/wheels /tmp/app.txt 2>/dev/null && exit 1; "
        "test -e /run/secrets/ca && exit 1; "
        "python3 -c 'import pip' 2>/dev/null && exit 1; exit 0"
    )
    result = sh(DOCKER, "run", "--rm", "--entrypoint", "sh", image, "-c", script, check=False)
    assert result.returncode == 0, f"found in the runtime image: {result.stdout}"


def test_runs_as_the_app_user_without_a_login_shell(image: str) -> None:
    out = sh(DOCKER, "run", "--rm", image, "sh", "-c", "id -u; id -g; getent passwd 10001").stdout
    uid, gid, passwd = out.splitlines()
    assert (uid, gid) == ("10001", "10001")
    assert passwd.endswith(":/usr/sbin/nologin")


def test_root_filesystem_write_fails_but_data_and_tmp_work(image: str) -> None:
    result = sh(
        DOCKER,
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        image,
        "sh",
        "-c",
        "touch /opt/venv/x 2>&1 && echo WROTE-ROOT; touch /data/ok /tmp/ok && echo DATA-OK",
        check=False,
    )
    assert "Read-only file system" in result.stdout
    assert "WROTE-ROOT" not in result.stdout
    assert "DATA-OK" in result.stdout


def test_healthcheck_turns_healthy_on_a_read_only_root(containers, image: str) -> None:
    container = containers.run(
        image,
        environment={"SECRET_KEY": new_secret_key()},
        read_only=True,
        tmpfs={"/tmp": "size=64m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        healthcheck={"interval": 2 * 10**9, "timeout": 5 * 10**9, "retries": 30},
    )
    wait_healthy(container)
    out = container.exec_run(["noticeboard", "db", "current"]).output.decode()
    assert out.strip() not in ("", "none"), "a fresh SQLite database was not initialised"
    assert container.exec_run(["sh", "-c", "test -f /data/noticeboard.db"]).exit_code == 0


def test_check_command_reports_success(image: str) -> None:
    out = sh(DOCKER, "run", "--rm", "-e", f"SECRET_KEY={new_secret_key()}", image, "check").stdout
    assert out.startswith("ok:")

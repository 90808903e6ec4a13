"""Helpers and fixtures for the image tests: real builds, real containers, real compose projects.

Everything here talks to the Docker engine that ``scripts/testbed.py up`` provides
(``nox -s image`` runs it first). Images are built with ``docker/build.py`` on the
test-bed's Debian bases; BuildKit's cache makes repeated builds cheap. Every container
and compose project gets a unique name and the label ``org.noticeboard.test=image``,
and is removed in teardown, also when a test fails; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402

LABEL = "org.noticeboard.test"
RUN_ID = uuid.uuid4().hex[:8]
TEST_REPO = "noticeboard-test"
MARIADB_STANDIN = "local/mariadb:11.8"
POSTGRES_STANDIN = "local/postgres:17"
NODE_STANDIN = "local/node:trixie"
REGISTRY = f"127.0.0.1:{testbed.REGISTRY_PORT}"
CA_BUNDLE = testbed.CA_BUNDLE
PROD = ROOT / "docker" / "docker-compose.prod.yml"
DEV = ROOT / "docker" / "docker-compose.yml"
BUILD_TIMEOUT = 3600


def docker_cli() -> str:
    return testbed.docker_cli()


def sh(*cmd: str, check: bool = True, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; on failure show what it printed."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def build_image(tag: str, *extra: str) -> str:
    sh(
        sys.executable,
        str(ROOT / "docker" / "build.py"),
        "--testbed",
        "--tag",
        tag,
        "--progress",
        "plain",
        *extra,
        timeout=BUILD_TIMEOUT,
    )
    return tag


def new_secret_key() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        api = docker.from_env(timeout=300)
        api.ping()
    except Exception as exc:  # pragma: no cover - a broken test-bed must fail loudly
        pytest.fail(f"no Docker engine answers ({exc}); run scripts/testbed.py up")
    return api


@pytest.fixture(scope="session")
def image(client: docker.DockerClient) -> Iterator[str]:
    """The production image (target runtime) for this machine, on the test-bed base."""
    tag = build_image(f"{TEST_REPO}:runtime-{RUN_ID}")
    yield tag
    sh(docker_cli(), "image", "rm", tag, check=False)


@pytest.fixture(scope="session")
def dev_image(client: docker.DockerClient) -> Iterator[str]:
    tag = build_image(f"{TEST_REPO}:dev-{RUN_ID}", "--target", "dev")
    yield tag
    sh(docker_cli(), "image", "rm", tag, check=False)


def build_standin(folder: str, tag: str) -> str:
    """A stand-in for an official image, built from Debian's packages (kept: it is a cache)."""
    sh(
        *testbed.build_cli(),
        "--build-arg",
        f"BASE={testbed.IMAGES['trixie'].tag}",
        "-t",
        tag,
        str(ROOT / "docker" / "standins" / folder),
        env=testbed.build_env(),
        timeout=BUILD_TIMEOUT,
    )
    return tag


@pytest.fixture(scope="session")
def mariadb_image(client: docker.DockerClient) -> str:
    return build_standin("mariadb", MARIADB_STANDIN)


@pytest.fixture(scope="session")
def postgres_image(client: docker.DockerClient) -> str:
    return build_standin("postgres", POSTGRES_STANDIN)


@pytest.fixture(scope="session")
def node_image(client: docker.DockerClient) -> str:
    return build_standin("node", NODE_STANDIN)


class Containers:
    """Starts labelled containers and removes exactly those at the end."""

    def __init__(self, api: docker.DockerClient):
        self.api = api
        self.started: list = []

    def run(self, image: str, *, name: str | None = None, **kw):
        labels = {LABEL: "image", **kw.pop("labels", {})}
        container = self.api.containers.run(
            image,
            name=name or f"nbtest-{RUN_ID}-{uuid.uuid4().hex[:6]}",
            labels=labels,
            detach=True,
            **kw,
        )
        self.started.append(container)
        return container

    def cleanup(self) -> None:
        for container in self.started:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)


@pytest.fixture
def containers(client: docker.DockerClient) -> Iterator[Containers]:
    made = Containers(client)
    try:
        yield made
    finally:
        made.cleanup()


def wait_healthy(container, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            break
        status = container.attrs["State"].get("Health", {}).get("Status")
        if status == "healthy":
            return
        time.sleep(1)
    logs = container.logs().decode(errors="replace")[-3000:]
    raise AssertionError(f"{container.name} not healthy (status {status}):\n{logs}")


def host_port(container, port: str = "8000/tcp") -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


def wait_http(url: str, timeout: float = 180) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=10)
            if response.status_code == 200:
                return response
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s (last: {last!r})")


class Compose:
    """One compose project with a unique name; ``down -v`` removes all of it."""

    def __init__(self, files: list[Path], env: dict[str, str], tmp: Path, profiles=()):
        self.profiles = list(profiles)
        self.name = f"nbtest-{RUN_ID}-{uuid.uuid4().hex[:6]}"
        self.files = files
        env_file = tmp / f"{self.name}.env"
        # An explicit env file, so a developer's docker/.env never leaks into a test.
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.env_file = env_file
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}

    def base(self) -> list[str]:
        cmd = [docker_cli(), "compose", "-p", self.name, "--env-file", str(self.env_file)]
        for f in self.files:
            cmd += ["-f", str(f)]
        for profile in self.profiles:
            cmd += ["--profile", profile]
        return cmd

    def __call__(self, *args: str, check: bool = True, timeout: float = 900):
        return sh(*self.base(), *args, check=check, timeout=timeout, env=self.env)

    def up(self, *args: str) -> None:
        self("up", "-d", "--wait", "--wait-timeout", "600", *args)

    def port(self, service: str, port: int = 8000) -> int:
        out = self("port", service, str(port)).stdout.strip()
        return int(out.rsplit(":", 1)[1])

    def containers(self, service: str) -> list[dict]:
        out = self("ps", "-a", "--format", "json", service).stdout.strip()
        if not out:
            return []
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines()]

    def started_at(self, service: str) -> str:
        return self.inspect(service)["State"]["StartedAt"]

    def inspect(self, service: str) -> dict:
        """What Docker applied to the service's one container, as ``docker inspect`` has it."""
        (container,) = self.containers(service)
        return json.loads(sh(docker_cli(), "inspect", container["ID"]).stdout)[0]

    def config(self) -> dict:
        """The compose files as Compose reads them: anchors merged, sizes in bytes."""
        return json.loads(self("config", "--format", "json").stdout)

    def logs(self) -> str:
        return self("logs", "--no-color", check=False).stdout[-6000:]

    def down(self) -> None:
        self("down", "-v", "--remove-orphans", "--timeout", "30", check=False)


@pytest.fixture
def compose_project(tmp_path: Path) -> Iterator:
    made: list[Compose] = []

    def make(files: list[Path], env: dict[str, str], profiles=()) -> Compose:
        project = Compose(files, env, tmp_path, profiles)
        made.append(project)
        return project

    try:
        yield make
    finally:
        for project in made:
            project.down()


@pytest.fixture
def src_copy(tmp_path: Path) -> Path:
    """A private copy of src/ for tests that edit source files."""
    target = tmp_path / "src"
    shutil.copytree(
        ROOT / "src", target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    # The container's uid must be able to read it and the reloader to stat it.
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    tmp_path.chmod(0o755)
    return target


# --- signing in: every board the tests start asks for it (AUTH_MODE=accounts) ----------

HEADERS = {"X-Requested-With": "test"}
#: The first admin of every board the image tests start; a test-only password.
ADMIN_NAME = "admin"
ADMIN_PASSWORD = "Image-tests-first-pass-0f-the-board"


def admin_settings() -> dict[str, str]:
    """For a container run without Compose: ``serve`` creates this admin as it migrates."""
    return {"ADMIN_USERNAME": ADMIN_NAME, "ADMIN_PASSWORD": ADMIN_PASSWORD}


@contextlib.contextmanager
def signed_in(base: str) -> Iterator[httpx.Client]:
    """A client holding the admin's session cookie."""
    with httpx.Client(base_url=base, headers=HEADERS, timeout=60) as client:
        answer = client.post(
            "/api/session", json={"username": ADMIN_NAME, "password": ADMIN_PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        yield client


# --- the production file: notes and attachments through restarts (test_compose*.py) ----


def create_note(base: str, payload: bytes) -> dict:
    with signed_in(base) as client:
        response = client.post(
            "/api/notes",
            data={"body": "survives restarts\nsecond line"},
            files={"attachment": ("report.bin", payload, "application/octet-stream")},
        )
    assert response.status_code == 201, response.text
    return response.json()


def assert_note_is_there(base: str, note_id: int, payload: bytes) -> None:
    wait_http(f"{base}/readyz")
    with signed_in(base) as client:
        note = client.get(f"/api/notes/{note_id}")
        assert note.status_code == 200, note.text
        assert note.json()["body"].startswith("survives restarts")
        attachment = client.get(f"/api/notes/{note_id}/attachment")
    assert attachment.status_code == 200
    assert attachment.content == payload


def migrate_exit_codes(project) -> list[int]:
    return [c.get("ExitCode") for c in project.containers("migrate")]


def persistence_round_trip(project) -> None:
    project.up()
    assert migrate_exit_codes(project) == [0], project.logs()
    base = f"http://127.0.0.1:{project.port('app')}"
    payload = os.urandom(300 * 1024)
    note = create_note(base, payload)

    project("down", "--timeout", "30")
    project.up()
    base = f"http://127.0.0.1:{project.port('app')}"
    assert_note_is_there(base, note["id"], payload)

    project.up("--force-recreate", "--no-deps", "app")
    base = f"http://127.0.0.1:{project.port('app')}"
    assert_note_is_there(base, note["id"], payload)


def admin_secret(directory: Path) -> Path:
    """The first admin's password as docker-compose.prod.yml's secret file, as its users write it.

    Compose bind-mounts the file as it is, so the app's uid must be able to read it.
    """
    path = directory / "admin_password"
    path.write_text(ADMIN_PASSWORD + "\n")
    path.chmod(0o644)
    return path


def prod_env(image: str, secrets_dir: Path, **extra: str) -> dict[str, str]:
    """The production file's variables; ADMIN_USERNAME is left to the file's default."""
    return {
        "SECRET_KEY": new_secret_key(),
        "NOTICEBOARD_IMAGE": image,
        "NOTICEBOARD_PUBLISH": "127.0.0.1:",
        "ADMIN_PASSWORD_SECRET": str(admin_secret(secrets_dir)),
        **extra,
    }

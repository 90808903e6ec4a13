"""The production file with a database server, its promises read back from Docker.

One stack per database profile (MariaDB, PostgreSQL), shared by the tests of this
module: notes survive restarts, the database sits alone on an internal network that
nothing outside reaches, every service gets the limits and hardening the file asks for,
and a crashed app comes back by its restart policy. What the file asks for is read from
the file through ``docker compose config``, so tuning a limit never breaks a test; what
the services got is read from ``docker inspect`` of the running containers.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from imagetools import (
    PROD,
    Compose,
    docker_cli,
    new_secret_key,
    persistence_round_trip,
    prod_env,
    sh,
    signed_in,
    wait_http,
)

# Profile -> (service, port, DATABASE_URL of the app).
DATABASES = {
    "mariadb": ("mariadb", 3306, "mysql+pymysql://noticeboard:{pw}@mariadb:3306/noticeboard"),
    "postgres": (
        "postgres",
        5432,
        "postgresql+psycopg://noticeboard:{pw}@postgres:5432/noticeboard",
    ),
}


def start_stack(profile: str, tmp: Path, image: str, mariadb_image: str, postgres_image: str):
    service, _, url = DATABASES[profile]
    password = new_secret_key()[:24]
    env = prod_env(
        image,
        tmp,
        MARIADB_IMAGE=mariadb_image,
        POSTGRES_IMAGE=postgres_image,
        DATABASE_URL=url.format(pw=password),
        **{f"{profile.upper()}_PASSWORD": password},
    )
    project = Compose([PROD], env, tmp, [profile])
    project.database = service
    try:
        project.up()
        yield project
    finally:
        project.down()


@pytest.fixture(scope="module")
def mariadb_stack(tmp_path_factory, image, mariadb_image, postgres_image):
    tmp = tmp_path_factory.mktemp("mariadb")
    yield from start_stack("mariadb", tmp, image, mariadb_image, postgres_image)


@pytest.fixture(scope="module")
def postgres_stack(tmp_path_factory, image, mariadb_image, postgres_image):
    tmp = tmp_path_factory.mktemp("postgres")
    yield from start_stack("postgres", tmp, image, mariadb_image, postgres_image)


@pytest.fixture(scope="module", params=sorted(DATABASES))
def stack(request):
    """The production file with one database profile, started once per module."""
    return request.getfixturevalue(f"{request.param}_stack")


def test_notes_and_attachments_survive_restarts(stack):
    persistence_round_trip(stack)


def test_a_signed_out_request_is_refused_and_the_first_admin_signs_in(stack):
    """The migrate job made the admin from the secret, on either database server."""
    base = f"http://127.0.0.1:{stack.port('app')}"
    refused = httpx.get(f"{base}/api/notes", timeout=30)
    assert refused.status_code == 401, refused.text
    with signed_in(base) as client:
        assert client.get("/api/notes").status_code == 200


def test_the_database_is_alone_on_an_internal_network(stack):
    db = stack.inspect(stack.database)
    networks = set(db["NetworkSettings"]["Networks"])
    assert networks == {f"{stack.name}_backend"}
    (network,) = json.loads(sh(docker_cli(), "network", "inspect", *networks).stdout)
    assert network["Internal"] is True, "the database network reaches the outside"
    assert not any((db["HostConfig"]["PortBindings"] or {}).values()), "it publishes a port"
    assert not any((db["NetworkSettings"]["Ports"] or {}).values()), "it publishes a port"


PROBE = """
import json, socket, sys
results = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        results[target] = "open"
    except OSError as exc:
        results[target] = type(exc).__name__
print(json.dumps(results))
"""


def reachable(results: dict[str, str]) -> set[str]:
    return {target for target, outcome in results.items() if outcome == "open"}


def test_only_the_app_reaches_the_database(stack, containers, image):
    db = stack.inspect(stack.database)
    _, port, _ = DATABASES[stack.database]
    address = db["NetworkSettings"]["Networks"][f"{stack.name}_backend"]["IPAddress"]
    targets = [f"{stack.database}:{port}", f"{address}:{port}"]

    app = stack.inspect("app")["Id"]
    seen = json.loads(sh(docker_cli(), "exec", app, "python3", "-c", PROBE, *targets).stdout)
    assert reachable(seen) == set(targets), seen

    # The app's public network and Docker's default bridge: by name nor by address.
    for network in (f"{stack.name}_frontend", "bridge"):
        probe = containers.run(
            image, command=["python3", "-c", PROBE, *targets], network=network, user="10001"
        )
        assert probe.wait(timeout=60)["StatusCode"] == 0
        seen = json.loads(probe.logs(stderr=False))
        assert reachable(seen) == set(), f"reached from {network}: {seen}"


def test_limits_hardening_and_logs_are_what_docker_applied(stack):
    services = stack.config()["services"]
    assert set(services) == {"migrate", "app", stack.database}
    for name, wanted in services.items():
        host = stack.inspect(name)["HostConfig"]
        limits = wanted.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("memory"), f"{name}: no memory limit in the compose file"
        assert limits.get("cpus"), f"{name}: no CPU limit in the compose file"
        assert host["Memory"] == int(limits["memory"]), name
        assert host["NanoCpus"] == round(float(limits["cpus"]) * 1e9), name
        if "pids" in limits:
            assert host["PidsLimit"] == int(limits["pids"]), name

        assert host["ReadonlyRootfs"] is True, f"{name}: root file system is writable"
        assert [c.upper().removeprefix("CAP_") for c in host["CapDrop"]] == ["ALL"], name
        assert "no-new-privileges:true" in (host["SecurityOpt"] or []), name
        granted = {c.upper().removeprefix("CAP_") for c in host["CapAdd"] or []}
        assert granted == set(wanted.get("cap_add", [])), name

        # Logs rotate, so a chatty container cannot fill the disk.
        logging = wanted.get("logging", {})
        assert {"max-size", "max-file"} <= set(logging.get("options", {})), name
        assert host["LogConfig"] == {"Type": logging["driver"], "Config": logging["options"]}

        # A job runs once; services come back from crashes and reboots.
        expected = "no" if name == "migrate" else "unless-stopped"
        assert host["RestartPolicy"]["Name"] == expected, name


def wait_restarted(stack, before: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        attrs = stack.inspect("app")
        state = attrs["State"]
        # A restart publishes the port anew, on another host port.
        published = (attrs["NetworkSettings"]["Ports"] or {}).get("8000/tcp")
        if attrs["RestartCount"] > before and state["Running"] and published:
            return attrs
        time.sleep(0.5)
    raise AssertionError(f"the app was not restarted within {timeout} s: {state}")


# The app's restart policy does not depend on the database: one stack proves it.
def test_a_crashed_app_is_restarted_by_its_policy(postgres_stack):
    stack = postgres_stack
    attrs = stack.inspect("app")
    before = attrs["RestartCount"]
    # The app's PID 1 (Gunicorn's master) as the host's process table lists it, killed
    # the way the kernel's OOM killer would. From inside the container no signal reaches
    # it: the kernel shields a namespace's init from signals it has no handler for.
    os.kill(attrs["State"]["Pid"], signal.SIGKILL)

    after = wait_restarted(stack, before)
    assert after["State"]["Pid"] != attrs["State"]["Pid"]
    port = after["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
    base = f"http://127.0.0.1:{port}"
    assert wait_http(f"{base}/readyz").json()["status"] == "ready"
    with signed_in(base) as client:
        assert client.get("/api/notes").status_code == 200

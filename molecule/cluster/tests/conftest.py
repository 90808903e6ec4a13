"""The cluster scenario's own fixtures: the four hosts, HTTP through the load balancer,
SQL in MariaDB, one verbose re-run of site.yml, and the states the tests ask for (release
v1 serving, an upgrade done), each reached only when it does not hold already.

Hosts are found by inventory group, so a copy of this scenario under another directory
name (other container names) works unchanged. What every scenario shares (in-host HTTP,
playbook runs, the inventory's variables) is in molecule/shared/verifylib.py.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest
from verifylib import (
    PlaybookRun,
    Response,
    converge,
    ensure,
    host_named,
    hosts_in,
    http,
    run_playbook,
    variables,
)

APP_DIR = "/opt/noticeboard"
DB_DIR = "/opt/noticeboard-mariadb"
DB_PROJECT = "noticeboard-mariadb"
APP_CONTAINER = "noticeboard-app-1"
LB_ADMIN_SOCKET = "/opt/noticeboard-lb/run/admin.sock"
LB_URL = "https://127.0.0.1"
UPGRADE_TAG = "upgrade-v2"
# The inventory's secrets, which no playbook output may show.
SECRET_NAMES = (
    "noticeboard_secret_key",
    "noticeboard_admin_password",
    "noticeboard_mariadb_password",
    "noticeboard_mariadb_root_password",
)

# The start of every script below that runs inside a host and talks HTTPS to the load
# balancer: `ctx` does not verify certificates (the load balancer's is self-signed).
IN_HOST_TLS = """
import ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
"""


# The hosts, by inventory group (a name as the inventory spells it: `hosts_in`).
group = hosts_in


@pytest.fixture(scope="session")
def lb():
    return host_named(group("lb")[0])


# The name the load balancer serves, as inventories/cluster sets it.
LB_NAME = variables(group("lb")[0], "noticeboard_lb_server_name")["noticeboard_lb_server_name"]
# The app image, tags aside, as the inventory sets it.
IMAGE = variables(group("app")[0], "noticeboard_image")["noticeboard_image"]


@pytest.fixture(scope="session")
def db():
    return host_named(group("db")[0])


@pytest.fixture(scope="session")
def apps():
    return [host_named(name) for name in group("app")]


def address(host) -> str:
    """The host's address on the test network (eth0), as the role sees it in facts."""
    return host.check_output("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1")


@pytest.fixture(scope="session")
def db_address(db) -> str:
    return address(db)


def via_lb(lb, method: str, path: str, body: dict | None = None) -> Response:
    """A request to the load balancer's HTTPS port, from the lb host itself."""
    return http(lb, method, f"{LB_URL}{path}", body, host_header=LB_NAME)


def upload(lb, name: str, size: int) -> tuple[dict, str]:
    """Post a note with SIZE random bytes attached through the load balancer; the note as
    the app answered and the sha256 of what was sent."""
    sent = http(
        lb,
        "POST",
        f"{LB_URL}/api/notes",
        host_header=LB_NAME,
        form={"body": f"upload {name}"},
        file={"field": "attachment", "name": name, "size": size},
        timeout=30,
    )
    assert sent.status == 201, (sent.status, sent.body)
    return sent.body, sent.sent_sha256


def sql(db, statement: str) -> list[list[str]]:
    """Rows of a statement run as MariaDB's root inside the db container."""
    inner = (
        'MYSQL_PWD="$(cat /run/secrets/mariadb_root_password)" '
        "exec mariadb -uroot --batch --skip-column-names "
        "noticeboard -e " + shlex.quote(statement)
    )
    out = db.check_output("docker compose -p %s exec -T mariadb sh -c %s", DB_PROJECT, inner)
    return [line.split("\t") for line in out.splitlines() if line]


def lb_servers(lb) -> dict[str, dict[str, str]]:
    """HAProxy's view of the app servers (runtime API `show stat`), by server name."""
    out = lb.check_output(
        "echo 'show stat app 4 -1' | socat -t 5 stdio unix-connect:%s", LB_ADMIN_SOCKET
    )
    lines = [line for line in out.splitlines() if line]
    header = lines[0].removeprefix("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    return {row["svname"]: row for row in rows}


def both_servers_up(lb, timeout: float = 120) -> dict[str, str]:
    """Wait until HAProxy reports every app server UP; its view at the end."""
    deadline = time.monotonic() + timeout
    while True:
        states = {name: row["status"] for name, row in lb_servers(lb).items() if name != "BACKEND"}
        if set(states.values()) == {"UP"} or time.monotonic() > deadline:
            return states
        time.sleep(1)


def running_image(app) -> str:
    return app.check_output("docker inspect -f '{{.Config.Image}}' %s", APP_CONTAINER)


def started_at(app) -> str:
    return app.check_output("docker inspect -f '{{.State.StartedAt}}' %s", APP_CONTAINER)


def revision(db) -> str:
    return sql(db, "SELECT version_num FROM alembic_version")[0][0]


def release_record(app, name: str = "previous") -> dict | None:
    """What upgrade.yml (release-previous.json) or rollback.yml (release-rolled-back.json)
    recorded on an app host, or None."""
    record = app.file(f"{APP_DIR}/release-{name}.json")
    return json.loads(record.content_string) if record.exists else None


# --- the states tests ask for ----------------------------------------------------------


def serves(lb, apps, tag: str) -> bool:
    """Every app host runs TAG, HAProxy has each UP, /readyz answers through it."""
    return (
        {running_image(app) for app in apps} == {f"{IMAGE}:{tag}"}
        and set(both_servers_up(lb).values()) == {"UP"}
        and via_lb(lb, "GET", "/readyz").status == 200
    )


def ensure_v1_serving(lb, apps) -> None:
    """Release v1 serves on every app host, as site.yml left it: after converge and
    after test_upgrade.py's rollback nothing is done; after an upgrade that was not
    rolled back, rollback.yml; otherwise site.yml again."""

    def bring_back() -> PlaybookRun:
        if any(release_record(app) for app in apps):
            return run_playbook("rollback")
        return converge()

    ensure("release v1 serving on every app host", lambda: serves(lb, apps, "v1"), bring_back)


@pytest.fixture
def v1_serving(lb, apps) -> None:
    ensure_v1_serving(lb, apps)


@pytest.fixture
def upgraded(lb, apps) -> None:
    """upgrade.yml moved every app host from v1 to upgrade-v2 and nothing rolled it back.
    test_upgrade.py's first test does that under load; alone, v1 first, then a plain
    upgrade.yml."""

    def upgrade() -> PlaybookRun:
        ensure_v1_serving(lb, apps)
        return run_playbook("upgrade", "-e", f"noticeboard_image_tag={UPGRADE_TAG}")

    ensure(
        f"an upgrade from v1 to {UPGRADE_TAG}",
        lambda: (
            all((release_record(app) or {}).get("image") == f"{IMAGE}:v1" for app in apps)
            and serves(lb, apps, UPGRADE_TAG)
        ),
        upgrade,
    )


@pytest.fixture(scope="session")
def verbose_rerun() -> PlaybookRun:
    """site.yml once more with -v, on the cluster as converge left it: the idempotence
    check (no host changed) and the no-secret check read the same run."""
    return converge(verbosity=1)


# The order the modules run in. The base tests need the cluster exactly as site.yml left
# it (a re-run must change nothing, and it is the scenario's idempotence check); the
# backup test restores what it backed up; the upgrade test moves to a new release and
# rolls back. Every test that needs a release state asks a fixture for it, so a module
# or a test also runs alone (molecule/README.md).
ORDER = ("test_site.py", "test_security.py", "test_backup.py", "test_upgrade.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = Path(str(item.fspath)).name
        return ORDER.index(name) if name in ORDER else len(ORDER)

    items.sort(key=rank)

"""The cluster scenario's own fixtures: the four hosts, HTTP through the load balancer,
SQL in MariaDB, HAProxy's view and runtime API, one verbose re-run of site.yml, and the
states the tests ask for (release v1 serving, an upgrade done, HAProxy as site.yml sets it
up), each reached only when it does not hold already.

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
    wait_until,
)

APP_DIR = "/opt/noticeboard"
DB_DIR = "/opt/noticeboard-mariadb"
DB_PROJECT = "noticeboard-mariadb"
APP_CONTAINER = "noticeboard-app-1"
LB_DIR = "/opt/noticeboard-lb"
LB_ADMIN_SOCKET = f"{LB_DIR}/run/admin.sock"
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


def lb_admin(lb, command: str) -> str:
    """One command to HAProxy's runtime API on the lb host; its answer."""
    return lb.check_output("echo %s | socat -t 5 stdio unix-connect:%s", command, LB_ADMIN_SOCKET)


def wait_server_status(lb, server: str, wanted: str, timeout: float = 30) -> None:
    wait_until(
        lambda: lb_servers(lb)[server]["status"] == wanted, f"{server} {wanted}", timeout, 0.5
    )


# Runs inside a host: the requests of a JSON list ({"url", "headers": [[name, value], ...]}),
# each on a connection of its own, ARGV[2] seconds apart. Headers go exactly as given
# (case, '_' in names, repeats: what urllib would tidy up); no redirect is followed and
# no certificate verified. Prints a JSON list of {"status", "headers", "text"}, status 0
# when no HTTP answer came.
RAW_REQUESTS = (
    IN_HOST_TLS
    + """
import http.client, json, sys, time
from urllib.parse import urlsplit
answers = []
for spec in json.loads(sys.argv[1]):
    url = urlsplit(spec["url"])
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=15, context=ctx)
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=15)
    try:
        conn.putrequest("GET", url.path + (f"?{url.query}" if url.query else ""),
                        skip_host=True, skip_accept_encoding=True)
        for name, value in spec["headers"]:
            conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        answers.append({"status": r.status, "headers": r.getheaders(),
                        "text": r.read().decode(errors="replace")})
    except OSError as e:
        answers.append({"status": 0, "headers": [], "text": f"{type(e).__name__}: {e}"})
    finally:
        conn.close()
    time.sleep(float(sys.argv[2]))
print(json.dumps(answers))
"""
)


def raw_get(host, url: str, *headers: tuple[str, str], times: int = 1) -> list[dict]:
    """GET URL from inside HOST TIMES times with exactly HEADERS (Host among them); the
    answers, each with its headers as a {lower-case name: value} dict."""
    spec = [{"url": url, "headers": [list(h) for h in headers]}] * times
    answers = json.loads(host.check_output("python3 -c %s %s 0", RAW_REQUESTS, json.dumps(spec)))
    for answer in answers:
        answer["headers"] = {name.lower(): value for name, value in answer["headers"]}
    return answers


def sessions_by_server(lb) -> dict[str, int]:
    """Sessions HAProxy has sent to each app server so far (`stot`; health checks are not
    sessions)."""
    return {name: int(row["stot"]) for name, row in lb_servers(lb).items() if name != "BACKEND"}


def served_by(lb, client, count: int = 12) -> set[str]:
    """The app servers that answered COUNT requests for /readyz sent one after another
    from CLIENT to the load balancer's HTTPS port, by HAProxy's own counters; every
    request must be answered 200.

    Least connections sends short requests one after another to every server only while
    none holds a long one: an event stream a test before left open goes on until HAProxy
    next writes to it (a heartbeat, seconds), so the servers in rotation are let go of
    theirs first."""

    def idle() -> bool:
        rows = lb_servers(lb).values()
        return all(row["scur"] in ("", "0") for row in rows if row["status"] == "UP")

    wait_until(idle, "no app server in rotation holds a session", 30, 0.5)
    before = sessions_by_server(lb)
    url = f"https://{address(lb)}/readyz"
    answers = raw_get(client, url, ("Host", LB_NAME), times=count)
    assert [a["status"] for a in answers] == [200] * count, [a["text"][:200] for a in answers]
    after = sessions_by_server(lb)
    return {name for name, total in after.items() if total > before.get(name, 0)}


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


def converge_lb(*extra: str, ok: bool | None = True) -> PlaybookRun:
    """site.yml for the load balancer alone, as an operator re-applies it: limited to the
    lb hosts (and localhost, where the plays that take and give back the lock run) and to
    the loadbalancer role's tasks."""
    return converge(*extra, limit=",".join([*group("lb"), "localhost"]), tags="loadbalancer", ok=ok)


def haproxy_started_at(lb) -> str:
    """When HAProxy's container started: a reload keeps it, a restart moves it."""
    return lb.check_output("docker inspect -f '{{.State.StartedAt}}' noticeboard-lb-haproxy-1")


def lb_installed(lb) -> bool:
    return lb.file(f"{LB_DIR}/compose.yml").exists


def lb_as_site_made_it(lb) -> bool:
    """HAProxy runs with the configuration and the certificate mode site.yml gives it: the
    inventory's rise, a server line with its address for each app host, and the inventory's
    TLS mode (acme: its renewal timer) - what the tests that switch modes or uninstall it
    change."""
    if not lb_installed(lb):
        return False
    config = lb.file(f"{LB_DIR}/config/haproxy.cfg").content_string
    want = variables(group("lb")[0], "noticeboard_lb_health_check_rise", "noticeboard_lb_tls_mode")
    servers = [f"server {name} {address(host_named(name))}:8000" for name in group("app")]
    return (
        f" rise {want['noticeboard_lb_health_check_rise']} " in config
        and all(line in config for line in servers)
        and (want["noticeboard_lb_tls_mode"] == "acme")
        == lb.file("/etc/systemd/system/noticeboard-lb-acme-renew.timer").exists
        and set(both_servers_up(lb).values()) == {"UP"}
    )


def ensure_lb_as_site_made_it(lb) -> None:
    """HAProxy as site.yml sets it up: after converge and after the tests that reconfigure
    or uninstall it nothing is done; otherwise the load balancer's part of site.yml."""
    ensure("HAProxy as site.yml sets it up", lambda: lb_as_site_made_it(lb), converge_lb)


@pytest.fixture(scope="session")
def verbose_rerun() -> PlaybookRun:
    """site.yml once more with -v, on the cluster as converge left it: the idempotence
    check (no host changed) and the no-secret check read the same run."""
    return converge(verbosity=1)


# The order the modules run in. The base tests need the cluster exactly as site.yml left
# it (a re-run must change nothing, and it is the scenario's idempotence check); the
# load balancer's tests put back every server they take out; the backup test restores
# what it backed up; the upgrade test moves to a new release and rolls back; the drills
# end with every host rebooted. Last, the tests that reconfigure and uninstall HAProxy,
# which leave it as site.yml sets it up. Every test that needs a state asks a fixture for
# it, so a module or a test also runs alone (molecule/README.md).
ORDER = (
    "test_site.py",
    "test_security.py",
    "test_loadbalancer.py",
    "test_backup.py",
    "test_upgrade.py",
    "test_upgrade_drills.py",
    "test_loadbalancer_config.py",
    "test_loadbalancer_uninstall.py",
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = Path(str(item.fspath)).name
        return ORDER.index(name) if name in ORDER else len(ORDER)

    items.sort(key=rank)

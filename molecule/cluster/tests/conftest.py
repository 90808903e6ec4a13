"""Shared fixtures of the cluster scenario's verifiers: the four hosts, HTTP through the
load balancer, SQL in MariaDB, and one verbose re-run of site.yml.

Hosts are found by inventory group, so a copy of this scenario under another directory
name (other container names) works unchanged. Commands go through `docker exec`
(testinfra's docker backend): the hosts are Molecule's containers.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

# The whole inventory directory: Molecule's hosts file, inventories/cluster's hosts.yml
# (the groups) and the group_vars linked beside them.
INVENTORY = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
SCENARIO = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).resolve().parents[1]))
RUNNER = AnsibleRunner(INVENTORY)

APP_DIR = "/opt/noticeboard"
DB_DIR = "/opt/noticeboard-mariadb"
DB_PROJECT = "noticeboard-mariadb"
LB_ADMIN_SOCKET = "/opt/noticeboard-lb/run/admin.sock"
LB_URL = "https://127.0.0.1"

# The start of every script below that runs inside a host and talks HTTPS to the load
# balancer: `ctx` does not verify certificates (the load balancer's is self-signed).
IN_HOST_TLS = """
import ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
"""

# Runs inside a host: method, URL, optional JSON body; prints the status, then the body.
CLIENT = (
    IN_HOST_TLS
    + """
import sys, urllib.error, urllib.request
method, url, host, body = sys.argv[1:5]
headers = {"Content-Type": "application/json", "X-Requested-With": "molecule"}
if host:
    headers["Host"] = host
req = urllib.request.Request(url, data=body.encode() or None, method=method, headers=headers)
try:
    r = urllib.request.urlopen(req, timeout=15, context=ctx)
except urllib.error.HTTPError as e:
    r = e
print(r.status)
print(r.read().decode())
"""
)

# Runs inside the lb host: posts a note whose attachment is SIZE random bytes named NAME
# through the load balancer (multipart/form-data); prints {"status", "sha256", "note"}.
UPLOAD = (
    IN_HOST_TLS
    + """
import hashlib, json, os, sys, urllib.error, urllib.request, uuid
url, host, name, size = sys.argv[1:5]
data = os.urandom(int(size))
boundary = uuid.uuid4().hex
crlf = "\\r\\n"
field = f"--{boundary}{crlf}Content-Disposition: form-data; name="
parts = [
    f'{field}"body"{crlf}{crlf}upload {name}{crlf}'.encode(),
    f'{field}"attachment"; filename="{name}"{crlf}'.encode(),
    f"Content-Type: application/octet-stream{crlf}{crlf}".encode() + data + crlf.encode(),
    f"--{boundary}--{crlf}".encode(),
]
headers = {"Host": host, "X-Requested-With": "molecule",
           "Content-Type": f"multipart/form-data; boundary={boundary}"}
req = urllib.request.Request(url + "/api/notes", data=b"".join(parts), headers=headers)
try:
    r = urllib.request.urlopen(req, timeout=30, context=ctx)
except urllib.error.HTTPError as e:
    r = e
text = r.read().decode()
try:
    note = json.loads(text)
except ValueError:
    note = text
print(json.dumps({"status": r.status, "sha256": hashlib.sha256(data).hexdigest(), "note": note}))
"""
)

# Opens a TCP connection and prints what the server says first (MariaDB greets), or
# the error: "ok <greeting>" / "error <exception>". A server that says nothing first
# (HTTP) is "ok" once connected: how soon it drops an idle connection is not the point.
PROBE = """
import socket, sys
timeout = float(sys.argv[3])
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=timeout)
except OSError as e:
    print("error", type(e).__name__, e)
    sys.exit()
with s:
    s.settimeout(timeout)
    try:
        print("ok", s.recv(512).decode("latin-1").replace("\\n", " "))
    except OSError:
        print("ok", "(connected; the server sent nothing first)")
"""


def resolved(host: str, *names: str) -> dict[str, str]:
    """Variables as a playbook on HOST sees them: templated, the vault decrypted."""
    expr = "{{ dict(__names | zip(__names | map('extract', hostvars[inventory_hostname]))) }}"
    done = subprocess.run(
        [
            "ansible",
            host,
            "-i",
            INVENTORY,
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={expr}",
            "-e",
            json.dumps({"__names": list(names)}),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # The JSON document comes first; profile_tasks (enabled for every scenario) follows it.
    report, _ = json.JSONDecoder().raw_decode(done.stdout)
    return report["plays"][0]["tasks"][0]["hosts"][host]["msg"]


def host_named(name: str):
    return testinfra.get_host(f"docker://{name}")


def group(name: str) -> list[str]:
    hosts = sorted(RUNNER.get_hosts(name))
    assert hosts, f"the inventory has no host in group {name}"
    return hosts


@pytest.fixture(scope="session")
def lb():
    return host_named(group("lb")[0])


# The name the load balancer serves, as inventories/cluster sets it.
LB_NAME = resolved(group("lb")[0], "noticeboard_lb_server_name")["noticeboard_lb_server_name"]


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


@dataclass
class Response:
    status: int
    body: object


def http(host, method: str, url: str, body: dict | None = None, host_header: str = "") -> Response:
    payload = json.dumps(body) if body else ""
    out = host.check_output("python3 -c %s %s %s %s %s", CLIENT, method, url, host_header, payload)
    status, _, text = out.partition("\n")
    try:
        return Response(int(status), json.loads(text))
    except ValueError:
        return Response(int(status), text)


def via_lb(lb, method: str, path: str, body: dict | None = None) -> Response:
    """A request to the load balancer's HTTPS port, from the lb host itself."""
    return http(lb, method, f"{LB_URL}{path}", body, LB_NAME)


def upload(lb, name: str, size: int) -> tuple[dict, str]:
    """Post a note with SIZE random bytes attached through the load balancer; the note as
    the app answered and the sha256 of what was sent."""
    out = lb.check_output("python3 -c %s %s %s %s %s", UPLOAD, LB_URL, LB_NAME, name, str(size))
    sent = json.loads(out)
    assert sent["status"] == 201, sent
    return sent["note"], sent["sha256"]


def probe(host, target: str, port: int, timeout: float = 5.0) -> str:
    return host.check_output("python3 -c %s %s %s %s", PROBE, target, str(port), str(timeout))


def sql(db, statement: str) -> list[list[str]]:
    """Rows of a statement run as MariaDB's root inside the db container."""
    inner = (
        'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb -uroot --batch --skip-column-names '
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


def playbook(*extra: str) -> subprocess.CompletedProcess[str]:
    """Run the scenario's converge playbook (site.yml) again, as a user would."""
    cmd = ["ansible-playbook", "-i", INVENTORY, str(SCENARIO / "converge.yml"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def run_playbook(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run one of the collection's playbooks against the scenario's inventory."""
    cmd = [
        "ansible-playbook",
        "-i",
        INVENTORY,
        str(SCENARIO.parents[1] / "playbooks" / f"{name}.yml"),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters by host."""
    rows = {}
    started = False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            started = True
            continue
        if started and ":" in line and "ok=" in line:
            name, _, counters = line.partition(":")
            rows[name.strip()] = {k: int(v) for k, v in (c.split("=") for c in counters.split())}
    return rows


@pytest.fixture(scope="session")
def verbose_rerun() -> subprocess.CompletedProcess[str]:
    """site.yml once more with -v, on the cluster as converge left it."""
    done = playbook("-v")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done


# The order the modules run in. The base tests need the cluster exactly as site.yml left
# it (a re-run must change nothing); the backup test restores what it backed up; the
# upgrade test moves to a new release and its rollback brings v1 back, as the drills
# expect to find it.
ORDER = ("test_site.py", "test_security.py", "test_backup.py", "test_upgrade.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = Path(str(item.fspath)).name
        return ORDER.index(name) if name in ORDER else len(ORDER)

    items.sort(key=rank)

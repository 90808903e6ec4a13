"""The cluster's security promises: MariaDB's port answers the app hosts only (a real
connection from the lb host fails), the app's port answers the lb host only, the app's
account exists for the app hosts' addresses only, no app container sees the Docker
socket, secrets sit in 0600 files and never appear in Ansible's output; through the load
balancer's HTTPS port, notes, attachments and the event stream are for signed-in users
only, and headers that a single sign-on proxy would set open nothing."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from conftest import APP_DIR, DB_DIR, LB_NAME, SECRET_NAMES, address, group, sql, upload
from verifylib import Response, http, probe, variables


def dropped_by(host, chain: str, rules: int | None = None) -> int:
    """Packets the DROP rules of one of our iptables chains on HOST have dropped so far
    (checking, when RULES is given, that the chain holds that many DROP rules)."""
    out = host.check_output(f"iptables -w 10 -L {chain} -v -x -n")
    rows = [line.split() for line in out.splitlines() if " DROP " in f" {line} "]
    if rules is not None:
        assert len(rows) == rules, out
    return sum(int(row[0]) for row in rows)


def drop_counter(db) -> int:
    """Packets the MariaDB firewall's one DROP rule has dropped so far."""
    return dropped_by(db, "NOTICEBOARD-MARIADB", rules=1)


def test_the_app_hosts_reach_mariadb(apps, db_address):
    for app in apps:
        answer = probe(app, db_address, 3306)
        # MariaDB's handshake: the server admits the host and names its auth plugin.
        assert answer.startswith("ok "), (app.backend.name, answer)
        assert "mysql_native_password" in answer, (app.backend.name, answer)


def test_the_lb_host_cannot_connect_to_mariadb(lb, db, apps, db_address):
    # The lb host reaches the same network (the app's port on an app host answers)...
    assert probe(lb, address(apps[0]), 8000).startswith("ok")
    dropped = drop_counter(db)
    # ...but its connection to MariaDB goes nowhere: the SYN is dropped on the db host.
    answer = probe(lb, db_address, 3306, timeout=4)
    assert answer.startswith("error "), answer
    assert drop_counter(db) > dropped


def published_drops(host) -> int:
    """Packets the published-ports chain (roles/docker_engine) has dropped so far."""
    return dropped_by(host, "NOTICEBOARD-PUBLISHED")


def test_the_app_port_answers_the_lb_hosts_only(lb, db, apps):
    # Nobody reaches the app around HAProxy (issue 20): the db host stands for any client.
    for app in apps:
        assert probe(lb, address(app), 8000).startswith("ok"), app.backend.name
        assert probe(app, address(app), 8000).startswith("ok"), app.backend.name
        dropped = published_drops(app)
        answer = probe(db, address(app), 8000, timeout=3)
        assert answer.startswith("error "), (app.backend.name, answer)
        assert published_drops(app) > dropped, app.backend.name


def test_the_apps_account_exists_for_the_app_hosts_only(db, apps):
    rows = sql(db, "SELECT Host FROM mysql.user WHERE User = 'noticeboard'")
    hosts = sorted(row[0] for row in rows)
    assert hosts == sorted(address(app) for app in apps)
    roots = sql(db, "SELECT Host FROM mysql.user WHERE User = 'root'")
    assert roots == [["localhost"]]


def test_the_firewall_admits_exactly_the_app_hosts(db, apps):
    rules = db.check_output("iptables -w 10 -S NOTICEBOARD-MARIADB").splitlines()
    sources = sorted(r.split("-s ")[1].split()[0] for r in rules if " -j RETURN" in r)
    assert sources == sorted(f"{address(app)}/32" for app in apps)
    assert rules[-1].endswith("-j DROP")
    docker_user = db.check_output("iptables -w 10 -S DOCKER-USER").splitlines()
    first = next(r for r in docker_user if r.startswith("-A "))
    assert first == "-A DOCKER-USER -j NOTICEBOARD-MARIADB"


def test_no_app_container_sees_the_docker_socket(apps):
    for app in apps:
        ids = app.check_output("docker ps -q").split()
        assert ids, f"no container runs on {app.backend.name}"
        for info in json.loads(app.check_output("docker inspect %s", " ".join(ids))):
            sources = [m.get("Source", "") for m in info["Mounts"]]
            exposed = [s for s in sources if "docker.sock" in s or s in ("/run", "/var/run", "/")]
            assert exposed == [], (info["Name"], sources)


@pytest.mark.parametrize(
    ("where", "path"),
    [("app", f"{APP_DIR}/app.env"), ("db", f"{DB_DIR}/mariadb.env")],
)
def test_env_files_are_readable_by_root_only(where, path, apps, db):
    for host in apps if where == "app" else [db]:
        env = host.file(path)
        assert (env.user, env.group, env.mode) == ("root", "root", 0o600), host.backend.name


# A full run of site.yml: minutes on a busy machine (pyproject's timeout is for unit tests).
@pytest.mark.timeout(1800)
def test_no_secret_appears_in_verbose_output(verbose_rerun):
    secrets = variables(group("db")[0], *SECRET_NAMES)
    assert all(secrets.values()), secrets
    # The database password also travels URL-encoded inside DATABASE_URL.
    encoded = quote(secrets["noticeboard_mariadb_password"], safe="")
    secrets["noticeboard_mariadb_password (URL-encoded)"] = encoded
    output = verbose_rerun.stdout + verbose_rerun.stderr
    assert "-v" in " ".join(verbose_rerun.args)
    leaked = [name for name, value in secrets.items() if value in output]
    assert leaked == [], leaked


# --- who may read the board (AUTH_MODE=accounts, the collection's default) --------------

# What a single sign-on proxy would say about its user. In accounts mode the app believes
# no such header, and the load balancer drops them from clients anyway.
FORGED_IDENTITY = {"Remote-User": "admin", "Remote-Groups": "noticeboard-admins"}


@pytest.fixture(scope="module")
def guarded(lb) -> tuple[list[str], str]:
    """What a stranger must not read: the notes, the attachment of a note that has one
    (posted now, signed in), and the event stream; with the sha256 of that attachment."""
    note, digest = upload(lb, "access-check.bin", 2048)
    return ["/api/notes", f"/api/notes/{note['id']}/attachment", "/events"], digest


def from_the_network(db, lb, path: str, **request) -> Response:
    """GET PATH at the load balancer's public HTTPS port from the db host, which stands for
    any client on the network; of an event stream only its first line."""
    url = f"https://{address(lb)}{path}"
    return http(db, "GET", url, host_header=LB_NAME, first_line=path == "/events", **request)


def test_a_stranger_reads_no_note_attachment_or_event(lb, db, guarded):
    paths, _ = guarded
    answers = {path: from_the_network(db, lb, path, signed_out=True) for path in paths}
    assert {path: a.status for path, a in answers.items()} == dict.fromkeys(paths, 401), {
        path: a.text[:200] for path, a in answers.items()
    }


def test_forged_single_sign_on_headers_open_nothing(lb, db, guarded):
    paths, _ = guarded
    answers = {
        path: from_the_network(db, lb, path, headers=FORGED_IDENTITY, signed_out=True)
        for path in paths
    }
    assert {path: a.status for path, a in answers.items()} == dict.fromkeys(paths, 401), {
        path: a.text[:200] for path, a in answers.items()
    }


def test_signed_in_the_same_requests_are_served(lb, db, guarded):
    paths, digest = guarded
    answers = {path: from_the_network(db, lb, path) for path in paths}
    assert {path: a.status for path, a in answers.items()} == dict.fromkeys(paths, 200), {
        path: a.text[:200] for path, a in answers.items()
    }
    notes, attachment, events = (answers[path] for path in paths)
    assert isinstance(notes.body, dict) and notes.body["notes"], notes.text[:300]
    assert attachment.sha256 == digest
    # An event stream opens with the reconnection delay (noticeboard.events).
    assert events.text.startswith("retry:"), events.text[:200]

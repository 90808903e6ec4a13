"""site.yml from nothing: the load balancer serves the app from both app hosts, whose
notes live in MariaDB on the db host, and a second run changes nothing."""

from __future__ import annotations

import os
import shlex
import uuid
from pathlib import Path

import pytest
from conftest import APP_DIR, LB_NAME, group, lb_servers, sql, via_lb
from verifylib import http

DB_CONTAINER = "noticeboard-mariadb-mariadb-1"


# A full run of site.yml: minutes on a busy machine (pyproject's timeout is for unit tests).
@pytest.mark.timeout(1800)
def test_a_rerun_of_site_yml_changes_nothing(verbose_rerun):
    counters = verbose_rerun.recap
    # localhost: the plays that take and give back the lock (roles/lock) run there.
    expected = set(group("lb") + group("app") + group("db")) | {"localhost"}
    assert set(counters) == expected, counters
    changed = {name: c["changed"] for name, c in counters.items() if c["changed"] or c["failed"]}
    assert changed == {}, verbose_rerun.stdout[-6000:]


def test_the_load_balancer_serves_the_app(lb):
    ready = via_lb(lb, "GET", "/readyz")
    assert ready.status == 200, ready.body
    page = via_lb(lb, "GET", "/")
    assert page.status == 200
    assert "<html" in str(page.body).lower()


# The acme mode against the test-bed's Pebble (inventory/group_vars/testbed/cluster.yml).
PEBBLE_ROOT_CHECK = """
import json, socket, ssl, sys, urllib.request
name, api_ca = sys.argv[1:3]
api = ssl.create_default_context(cadata=api_ca)
root = urllib.request.urlopen("https://pebble:15000/roots/0", context=api).read().decode()
with socket.create_connection(("127.0.0.1", 443), 10) as raw:
    with ssl.create_default_context(cadata=root).wrap_socket(raw, server_hostname=name) as tls:
        print(json.dumps(tls.getpeercert()["issuer"]))
"""


def test_the_load_balancer_serves_a_certificate_from_the_acme_ca(lb):
    ca = Path(os.environ.get("NB_TESTBED_CACHE", "/var/cache/noticeboard-testbed"))
    api_ca = (ca / "pebble" / "ca.pem").read_text()
    out = lb.run(shlex.join(["python3", "-c", PEBBLE_ROOT_CHECK, LB_NAME, api_ca]))
    assert out.rc == 0, out.stderr
    assert "Pebble Intermediate" in out.stdout
    assert lb.service("noticeboard-lb-acme-renew.timer").is_running


def test_both_app_hosts_serve(apps):
    assert len(apps) == 2
    for app in apps:
        ready = http(app, "GET", "http://127.0.0.1:8000/readyz")
        assert ready.status == 200, (app.backend.name, ready.body)


def test_the_load_balancer_sends_requests_to_both_app_hosts(lb):
    before = {name: int(row["stot"]) for name, row in lb_servers(lb).items()}
    assert len(before) == 2
    assert {row["status"] for row in lb_servers(lb).values()} == {"UP"}
    for _ in range(8):
        assert via_lb(lb, "GET", "/api/notes").status == 200
    after = {name: int(row["stot"]) for name, row in lb_servers(lb).items()}
    assert all(after[name] > before[name] for name in before), (before, after)


def test_a_note_posted_through_the_load_balancer_is_stored_in_mariadb(lb, db, apps):
    title = f"cluster-{uuid.uuid4().hex[:12]}"
    created = via_lb(lb, "POST", "/api/notes", {"title": title, "body": "stored in MariaDB"})
    assert created.status in (200, 201), created.body
    # The title is made of hex digits here: nothing to escape.
    rows = sql(db, f"SELECT title, body FROM notes WHERE title = '{title}'")  # noqa: S608
    assert rows == [[title, "stored in MariaDB"]]
    # Each app host reads it from the shared database.
    for app in apps:
        listed = http(app, "GET", "http://127.0.0.1:8000/api/notes")
        bodies = [n["body"] for n in listed.body["notes"] if n["title"] == title]
        assert bodies == ["stored in MariaDB"], app.backend.name


def test_the_schema_was_migrated_once_for_the_cluster(apps, db):
    logs = [app.file(f"{APP_DIR}/migrations.log") for app in apps]
    texts = [log.content_string for log in logs if log.exists]
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert sql(db, "SELECT COUNT(*) FROM alembic_version") == [["1"]]


def test_mariadb_keeps_its_data_on_a_named_volume(db):
    mounts = db.check_output(
        "docker inspect -f %s %s",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{println}}{{end}}",
        DB_CONTAINER,
    )
    assert "volume noticeboard-mariadb_data /var/lib/mysql" in mounts.splitlines()
    health = db.check_output("docker inspect -f '{{.State.Health.Status}}' %s", DB_CONTAINER)
    assert health == "healthy"


def test_mariadb_accepts_statements_as_large_as_the_role_sets(db):
    # noticeboard_mariadb_max_allowed_packet (64M): attachments travel in one statement.
    assert sql(db, "SELECT @@max_allowed_packet") == [[str(64 * 1024 * 1024)]]

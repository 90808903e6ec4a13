"""backup.yml, then restore.yml, on the cluster: MariaDB is dumped on the db host inside
one transaction while the app serves (the cluster keeps attachments in MariaDB,
ATTACHMENT_STORE=database, so the dump holds them too); the restore stops every writer,
brings back exactly the rows and the attachments of the backup, keeps the data from
before aside, and the app is ready again afterwards. Every attachment is served, byte for
byte, by every app host, whichever one received the upload."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from conftest import (
    IN_HOST_TLS,
    LB_NAME,
    LB_URL,
    SECRET_NAMES,
    group,
    sql,
    started_at,
    upload,
    via_lb,
)
from verifylib import run_playbook, session_cookie, variables, wait_ready

BACKUP_DIR = "/var/backups/noticeboard"
# Runs inside an app host: downloads the attachment of each note id from the app on this
# host (not through the load balancer), with the Cookie header in argv[2] ("" for none),
# one line "<id> <sha256 or HTTP status>" each.
DOWNLOAD = """
import hashlib, sys, urllib.error, urllib.request
headers = {"Cookie": sys.argv[2]} if sys.argv[2] else {}
for note_id in sys.argv[1].split():
    url = f"http://127.0.0.1:8000/api/notes/{note_id}/attachment"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            print(note_id, hashlib.sha256(r.read()).hexdigest())
    except urllib.error.HTTPError as e:
        print(note_id, e.code)
"""

# Runs inside the lb host, in the background: posts notes titled PREFIX-<n> through the
# load balancer until the file STOP exists, with the Cookie header in the environment
# variable WRITER_COOKIE; one line "<n> <status>" per attempt in OUT (status 0: no HTTP
# answer at all), and "done" when it has stopped.
WRITER = (
    IN_HOST_TLS
    + """
import json, os, sys, time, urllib.error, urllib.request
url, host, prefix, out, stop = sys.argv[1:6]
headers = {"Host": host, "X-Requested-With": "molecule", "Content-Type": "application/json"}
if os.environ.get("WRITER_COOKIE"):
    headers["Cookie"] = os.environ["WRITER_COOKIE"]
n = 0
with open(out, "a", buffering=1) as log:
    while not os.path.exists(stop):
        n += 1
        body = json.dumps({"title": f"{prefix}-{n}", "body": "written during the restore"}).encode()
        req = urllib.request.Request(url + "/api/notes", data=body, method="POST", headers=headers)
        try:
            status = urllib.request.urlopen(req, timeout=30, context=ctx).status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError:
            status = 0
        log.write(f"{n} {status}\\n")
        time.sleep(0.2)
    log.write("done\\n")
"""
)


def attachments(db) -> dict[str, str]:
    """sha256 of every attachment stored in MariaDB, by key, as the database computes it."""
    rows = sql(db, "SELECT attachment_key, SHA2(data, 256) FROM attachment_blobs")
    return dict(rows)


def served(apps, notes: list[list[str]]) -> dict[str, dict[str, str]]:
    """sha256 of each note's attachment as each app host serves it, by host and key."""
    with_files = [row for row in notes if row[3] != "NULL"]
    ids = [row[0] for row in with_files]
    sums = {}
    for app in apps:
        cookie = session_cookie(app, "http://127.0.0.1:8000")
        out = app.check_output("python3 -c %s %s %s", DOWNLOAD, " ".join(ids), cookie)
        by_id = dict(line.split(" ", 1) for line in out.splitlines())
        sums[app.backend.name] = {row[3]: by_id[row[0]] for row in with_files}
    return sums


def table_rows(db, schema: str = "noticeboard") -> dict[str, list[list[str]]]:
    return {
        "notes": sql(db, f"SELECT id, title, body, attachment_key FROM {schema}.notes ORDER BY id"),  # noqa: S608
        "events": sql(db, f"SELECT id, kind, note_id FROM {schema}.events ORDER BY id"),  # noqa: S608
    }


def backup_sets(host) -> set[str]:
    out = host.check_output(f"ls {BACKUP_DIR} 2>/dev/null || true")
    return set(out.split())


def writer_log(lb, path: str) -> tuple[list[tuple[int, int]], bool]:
    """The writer's attempts so far, and whether it has stopped."""
    lines = lb.run("cat %s", path).stdout.splitlines()
    rows = [line.split() for line in lines if line != "done"]
    attempts = [(int(n), int(status)) for n, status in rows]
    return attempts, "done" in lines


def no_secret_in(output: str) -> list[str]:
    secrets = variables(group("app")[0], *SECRET_NAMES)
    assert all(secrets.values()), secrets
    return [name for name in SECRET_NAMES if secrets[name] in output]


# Two playbook runs: minutes on a busy machine (pyproject's timeout is for unit tests).
@pytest.mark.timeout(1800)
def test_mariadb_backup_and_restore_round_trip(lb, apps, db):
    for i in range(3):
        upload(lb, f"backup-{i}.bin", 4096 + i)
    assert via_lb(lb, "POST", "/api/notes", {"body": "plain note before the backup"}).status == 201
    rows_before, sums_before = table_rows(db), attachments(db)
    assert len(sums_before) >= 3, sums_before
    # Each upload reached one app host; both serve every attachment, unchanged.
    expected = {row[3]: sums_before[row[3]] for row in rows_before["notes"] if row[3] != "NULL"}
    assert served(apps, rows_before["notes"]) == {app.backend.name: expected for app in apps}
    sets_before = backup_sets(db)

    # --- backup, while the app serves
    done = run_playbook("backup", verbosity=1)
    assert no_secret_in(done.stdout + done.stderr) == []
    new_sets = backup_sets(db) - sets_before
    assert len(new_sets) == 1, new_sets
    stamp = new_sets.pop()
    backup_set = f"{BACKUP_DIR}/{stamp}"

    manifest = json.loads(db.file(f"{backup_set}/manifest.json").content_string)
    assert manifest["engine"] == "mariadb"
    assert manifest["tables"]["notes"] == len(rows_before["notes"])
    assert manifest["tables"]["events"] == len(rows_before["events"])
    assert manifest["revision"] == sql(db, "SELECT version_num FROM alembic_version")[0][0]
    dump = db.file(f"{backup_set}/mariadb.sql.gz")
    assert dump.exists
    assert dump.mode & 0o077 == 0, oct(dump.mode)
    assert db.file(backup_set).mode == 0o700
    for app in apps:
        # No attachment files on the app hosts: they are all in the dump.
        app_manifest = json.loads(app.file(f"{backup_set}/manifest.json").content_string)
        assert app_manifest["uploads"] == {}, app_manifest
        assert app.file(backup_set).mode == 0o700

    # --- after the backup: a note more, a new upload, a note with its attachment less
    assert via_lb(lb, "POST", "/api/notes", {"body": "written after the backup"}).status == 201
    upload(lb, "after-backup.bin", 2048)
    with_file = next(row for row in rows_before["notes"] if row[3] != "NULL")
    assert via_lb(lb, "DELETE", f"/api/notes/{with_file[0]}").status == 204
    assert table_rows(db) != rows_before
    assert attachments(db) != sums_before

    # --- restore, with a client writing through the load balancer all along
    prefix = f"restore-writer-{uuid.uuid4().hex[:8]}"
    log, stop = f"/root/{prefix}.log", f"/root/{prefix}.stop"
    started_before = {app.backend.name: started_at(app) for app in apps}
    lb.check_output(
        "WRITER_COOKIE=%s setsid nohup python3 -c %s %s %s %s %s %s >/dev/null 2>&1 &",
        session_cookie(lb, LB_URL, host_header=LB_NAME),
        WRITER,
        LB_URL,
        LB_NAME,
        prefix,
        log,
        stop,
    )
    try:
        # The writer has written before the restore begins.
        for _ in range(60):
            if any(status == 201 for _, status in writer_log(lb, log)[0]):
                break
            time.sleep(1)
        done = run_playbook("restore", "-e", f"noticeboard_restore_backup={stamp}", verbosity=1)
        assert no_secret_in(done.stdout + done.stderr) == []
        # Let the writer land a few notes on the restored database too.
        for _ in range(120):
            attempts, _ = writer_log(lb, log)
            last_failure = max((n for n, status in attempts if status != 201), default=0)
            if sum(1 for n, status in attempts if n > last_failure and status == 201) >= 3:
                break
            time.sleep(1)
    finally:
        lb.run("touch %s", stop)
        for _ in range(60):
            attempts, stopped = writer_log(lb, log)
            if stopped:
                break
            time.sleep(1)
    assert stopped, "the writer did not stop"
    lb.run("rm -f %s %s", log, stop)

    # Every writer was stopped: the app containers started again, and the load balancer
    # had nothing to send the writes to for a while.
    for app in apps:
        assert started_at(app) != started_before[app.backend.name], app.backend.name
    failures = [n for n, status in attempts if status != 201]
    assert failures, attempts
    before_stop = {f"{prefix}-{n}" for n, status in attempts if status == 201 and n < failures[0]}
    after_start = {f"{prefix}-{n}" for n, status in attempts if status == 201 and n > failures[-1]}
    # A write that timed out may still have landed: compare with every attempt.
    attempted = {f"{prefix}-{n}" for n, _ in attempts}
    assert before_stop, attempts
    assert after_start, attempts

    # The rows of the backup are back, exactly; of the writer's notes, the ones written
    # before the stop are gone from the live database (they are in <db>_prerestore) and
    # the ones written after the restart are kept.
    rows_after = table_rows(db)
    written = {row[1]: row[0] for row in rows_after["notes"] if row[1].startswith(prefix)}
    notes = [row for row in rows_after["notes"] if not row[1].startswith(prefix)]
    assert notes == rows_before["notes"]
    events = [row for row in rows_after["events"] if row[2] not in written.values()]
    assert events == rows_before["events"]
    assert set(written) <= attempted
    assert not before_stop & set(written)
    assert after_start <= set(written)
    kept_aside = {row[1] for row in table_rows(db, "noticeboard_prerestore")["notes"]}
    assert before_stop <= kept_aside
    assert "written after the backup" in {
        row[2] for row in table_rows(db, "noticeboard_prerestore")["notes"]
    }

    # The attachments of the backup are back, exactly, and every app host serves them.
    assert attachments(db) == sums_before
    assert served(apps, rows_after["notes"]) == {app.backend.name: expected for app in apps}

    # Ready through the load balancer, and the note deleted after the backup is back.
    ready = wait_ready(lb, f"{LB_URL}/readyz", host_header=LB_NAME, within=30)
    assert ready.status == 200, ready.body
    assert via_lb(lb, "GET", f"/api/notes/{with_file[0]}").status == 200

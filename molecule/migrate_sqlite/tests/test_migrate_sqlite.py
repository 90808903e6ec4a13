"""After playbooks/migrate_sqlite_to_mariadb.yml: every row and file intact, the app on
MariaDB, reads served during maintenance, the SQLite file kept, a re-run harmless.

Rows are compared without the application's code: the SQLite side with Python's sqlite3
module on the host, the MariaDB side with the `mariadb` client's JSON_ARRAY; both are
reduced to the same lines and hashed here.
"""

from __future__ import annotations

import hashlib
import json

from verifylib import Response, http, run_playbook, variables

HOST = "nb-mol-migrate_sqlite"
DIR = "/opt/noticeboard"
SQLITE = f"{DIR}/data/noticeboard.db"
PLAYBOOK = "noticeboard.deploy.migrate_sqlite_to_mariadb"
# The old file name, kept for its callers: an import of the playbook above.
OLD_PLAYBOOK = "migrate-sqlite-to-mariadb"

COLUMNS = {
    "notes": "id, title, body, created_at, attachment_name, attachment_key, attachment_size",
    "events": "id, kind, note_id, payload, created_at",
    "event_lock": "id",
}

SQLITE_ROWS = """
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for row in db.execute(f"SELECT {sys.argv[3]} FROM {sys.argv[2]} ORDER BY id"):
    print(json.dumps(list(row), ensure_ascii=False))
"""


def canonical(rows: list[list]) -> list[str]:
    """One line per row; times to whole seconds (MariaDB's DATETIME keeps no fraction)."""
    lines = []
    for row in rows:
        values = [
            v[:19] if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[13] == ":" else v
            for v in row
        ]
        lines.append(json.dumps(values, ensure_ascii=False, separators=(",", ":")))
    return lines


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def sqlite_rows(host, table: str, path: str = SQLITE) -> list[str]:
    out = host.check_output("python3 -c %s %s %s %s", SQLITE_ROWS, path, table, COLUMNS[table])
    return canonical([json.loads(line) for line in out.splitlines()])


def mariadb_rows(host, table: str) -> list[str]:
    password = variables(HOST, "nb_test_mariadb_password")["nb_test_mariadb_password"]
    query = f"SELECT JSON_ARRAY({COLUMNS[table]}) FROM {table} ORDER BY id"  # noqa: S608
    out = host.check_output(
        "docker exec nb-mariadb mariadb --default-character-set=utf8mb4 -N -B -r "
        "-u noticeboard -p%s noticeboard -e %s",
        password,
        query,
    )
    return canonical([json.loads(line) for line in out.splitlines()])


def app_http(host, method: str, path: str, body: dict | None = None) -> Response:
    return http(host, method, "http://127.0.0.1:8000" + path, body, timeout=20)


def seed(host) -> dict:
    return json.loads(host.file("/root/seed.json").content_string)


def test_every_row_is_in_mariadb_with_equal_counts_and_checksums(host):
    manifest = seed(host)
    assert manifest["notes"] > 10_000
    for table in COLUMNS:
        source = sqlite_rows(host, table)
        target = mariadb_rows(host, table)
        if table == "notes":
            assert len(source) == manifest["notes"]
        if table == "events":
            assert len(source) == manifest["events"]
            # The playbook's write check after the move: one note posted and deleted.
            extra = [json.loads(line) for line in target[len(source) :]]
            assert [e[1] for e in extra] == ["note-created", "note-deleted"], extra[:2]
            assert extra[0][2] == extra[1][2] > json.loads(sqlite_rows(host, "notes")[-1])[0]
            target = target[: len(source)]
        assert len(target) == len(source), table
        assert digest(target) == digest(source), table
        assert target == source, table


def test_the_backup_holds_the_same_rows(host):
    backups = host.check_output("ls /var/backups/noticeboard/before-mariadb-*.db").split()
    assert len(backups) == 1
    backup = host.file(backups[0])
    assert (backup.user, backup.mode) == ("root", 0o600)
    for table in COLUMNS:
        assert digest(sqlite_rows(host, table, backups[0])) == digest(sqlite_rows(host, table))


def test_every_attachment_is_served_unchanged(host):
    files = seed(host)["files"]
    assert len(files) >= 20
    stored = set(host.check_output(f"ls {DIR}/data/uploads").split())
    assert stored == set(files)
    notes = [json.loads(line) for line in mariadb_rows(host, "notes")]
    with_files = [n for n in notes if n[5]]
    assert {n[5] for n in with_files} == set(files)
    for note in with_files:
        got = app_http(host, "GET", f"/api/notes/{note[0]}/attachment")
        assert got.status == 200
        assert got.sha256 == files[note[5]], note[0]


def test_the_app_runs_on_mariadb_and_keeps_the_sqlite_file(host):
    url = host.file(f"{DIR}/secrets/database_url")
    assert url.mode == 0o400
    assert url.content_string.startswith("mysql+pymysql://noticeboard:")
    assert host.file(f"{DIR}/app.env").mode == 0o600
    assert host.file(SQLITE).exists
    assert host.file(f"{DIR}/moved-to-mariadb.json").exists
    ready = app_http(host, "GET", "/readyz").body
    assert ready["status"] == "ready" and ready["maintenance"] is False
    newest = app_http(host, "GET", "/api/notes?limit=1").body["notes"][0]
    assert newest["id"] == json.loads(mariadb_rows(host, "notes")[-1])[0]


def test_reads_were_served_while_writes_waited(host):
    samples = [
        json.loads(line)
        for line in host.file("/root/watch.jsonl").content_string.splitlines()
        if line.strip()
    ]
    maintenance = [i for i, s in enumerate(samples) if s["write"] == 503]
    assert len(maintenance) > 10, "the watcher hardly saw maintenance mode"
    for i in maintenance:
        sample = samples[i]
        assert "read-only for maintenance" in sample["refusal"]
        if sample["read"] != 200:
            # Only while the container was replaced: a neighbour found the app gone.
            around = samples[max(i - 1, 0) : i + 2]
            assert any(s["write"] is None for s in around), sample
        else:
            assert sample["newest"] is not None
    served = [i for i in maintenance if samples[i]["read"] == 200]
    assert len(served) >= len(maintenance) - 2
    maintenance = [samples[i] for i in maintenance]
    assert any(s["stream"] == 200 and s["stream_first"].startswith("retry:") for s in maintenance)
    # Before and after the move the same write is only refused as bad input.
    assert samples[0]["write"] == 400 and samples[-1]["write"] == 400
    assert all(s["write"] in (400, 503, None) for s in samples)


def test_writes_work_on_mariadb(host):
    created = app_http(host, "POST", "/api/notes", {"body": "written after the move"})
    assert created.status == 201
    note = created.body
    assert json.loads(mariadb_rows(host, "notes")[-1])[2] == "written after the move"
    assert app_http(host, "DELETE", f"/api/notes/{note['id']}").status == 204


def migrate(*extra: str, playbook: str = PLAYBOOK):
    """The docs' command: ansible-playbook PLAYBOOK -i INVENTORY --limit APPHOST,localhost."""
    return run_playbook(playbook, *extra, limit=f"{HOST},localhost", ok=None)


def test_a_missing_target_is_named_and_nothing_changes(host):
    before = host.file(f"{DIR}/app.env").content_string
    # Through the old file name: its callers get the same refusal.
    done = migrate("-e", "noticeboard_database_url=", playbook=OLD_PLAYBOOK)
    assert done.returncode != 0
    said = done.said  # YAML output folds long lines
    assert "noticeboard_database_url must name the MariaDB database" in said, said[-3000:]
    assert "it is empty. Nothing was changed." in said
    assert host.file(f"{DIR}/app.env").content_string == before


def test_a_rerun_changes_nothing(host):
    container = "docker inspect -f '{{.Id}}' noticeboard-app-1"
    before = host.check_output(container)
    notes = mariadb_rows(host, "notes")
    done = migrate()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recap = done.recap[HOST]
    assert (recap["changed"], recap["failed"]) == (0, 0), done.changed_tasks()
    assert host.check_output(container) == before
    assert mariadb_rows(host, "notes") == notes

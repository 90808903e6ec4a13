"""Backups of a natively installed MariaDB: playbooks/backup.yml dumps the database on the
db host through the mariadb role's `dump` entry point, and the role's `restore` entry point
(delegated from the app host, as the backup role calls it) brings back rows changed and
deleted after the backup, keeping the replaced ones aside.

The scenario has no Docker and no app: the backup role's uploads part runs on the app host
against an empty data directory made here, as beside an app without uploads. Its full
restore, which stops and starts the app's containers, is covered by the `app` and
`cluster` scenarios.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import APP, DB, sql
from verifylib import host_named, run_playbook

BACKUPS = "/var/backups/noticeboard"
# The app would hold this URL; the backup role only needs to know it is not SQLite.
DATABASE_URL = "mysql+pymysql://noticeboard:unused@db.invalid/noticeboard"
TABLE = "noticeboard.backup_probe"


def bodies(table: str = TABLE) -> list[str]:
    # The table names are this module's constants.
    return [row[0] for row in sql(f"SELECT body FROM {table} ORDER BY id")]  # noqa: S608


def backup_sets() -> set[str]:
    listed = host_named(DB).run("ls -1 %s", BACKUPS)
    return {name for name in listed.stdout.split() if re.fullmatch(r"20\d{6}T\d{6}Z", name)}


@pytest.fixture(scope="module")
def backup_set():
    """A table with three rows, and a backup set taken of it by playbooks/backup.yml."""
    sql(
        "DROP TABLE IF EXISTS noticeboard.backup_probe;"
        " CREATE TABLE noticeboard.backup_probe (id INT PRIMARY KEY, body VARCHAR(64));"
        " INSERT INTO noticeboard.backup_probe"
        " VALUES (1, 'kept'), (2, 'changed later'), (3, 'deleted later');"
    )
    # What a deployed app without uploads has on its host.
    host_named(APP).check_output("mkdir -p /opt/noticeboard/data")
    before = backup_sets()
    run_playbook("backup", "-e", f"noticeboard_database_url={DATABASE_URL}")
    new = backup_sets() - before
    assert len(new) == 1, new
    yield f"{BACKUPS}/{new.pop()}"
    for database in ("noticeboard_restore", "noticeboard_prerestore"):
        sql(f"DROP DATABASE IF EXISTS {database}")
    sql("DROP TABLE IF EXISTS noticeboard.backup_probe")


def test_backup_dumps_the_native_database_with_its_rows(backup_set):
    db = host_named(DB)
    dump = db.file(f"{backup_set}/mariadb.sql.gz")
    assert dump.exists and dump.size > 0
    assert dump.mode == 0o600
    assert db.file(backup_set).mode == 0o700
    dumped = f"{backup_set}/mariadb.sql.gz"
    rows = db.check_output("gunzip -c %s | grep -F backup_probe", dumped)
    assert "'changed later'" in rows and "'deleted later'" in rows
    manifest = json.loads(db.file(f"{backup_set}/manifest.json").content_string)
    assert manifest["engine"] == "mariadb"
    assert manifest["database"] == "noticeboard"
    assert manifest["tables"]["backup_probe"] == 3


def test_restore_brings_back_rows_changed_and_deleted_after_the_backup(backup_set):
    sql(
        "UPDATE noticeboard.backup_probe SET body = 'changed after the backup' WHERE id = 2;"
        " DELETE FROM noticeboard.backup_probe WHERE id = 3;"
        " INSERT INTO noticeboard.backup_probe VALUES (4, 'written after the backup');"
    )
    after = ["kept", "changed after the backup", "written after the backup"]
    assert bodies() == after
    playbook = "restore-database.yml"
    run_playbook(
        playbook, "-e", f"backup_set={backup_set}", "-e", '{"restore_steps": ["load", "swap"]}'
    )
    assert bodies() == ["kept", "changed later", "deleted later"]
    # What the restore replaced is kept aside, and an unswap puts it back.
    assert bodies("noticeboard_prerestore.backup_probe") == after
    run_playbook(playbook, "-e", f"backup_set={backup_set}", "-e", '{"restore_steps": ["unswap"]}')
    assert bodies() == after

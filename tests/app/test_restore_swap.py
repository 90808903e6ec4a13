"""The restore's table swap and row counts (backup helper: mariadb-swap, verify
--mariadb-schema) on a real MariaDB server, as restore_mariadb.yml calls them.

The role passes a client command that runs `mariadb` as root inside the database's
container; here it is the local client as root, over the server's socket.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import new_database

from noticeboard import migrate

HELPER = (
    Path(__file__).resolve().parents[2] / "roles" / "backup" / "files" / "noticeboard-backup.py"
)
CLIENT = "mariadb --user=root --batch --skip-column-names"


def load_helper():
    spec = importlib.util.spec_from_file_location("noticeboard_backup", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def helper(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HELPER), *args], capture_output=True, text=True, timeout=120
    )


def sql(statement: str, database: str = "") -> str:
    done = subprocess.run(
        [*CLIENT.split(), *([database] if database else [])],
        input=statement,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def titles(database: str) -> list[str]:
    return sorted(sql("SELECT title FROM notes;", database).split("\n")[:-1])


def add_note(database: str, title: str) -> None:
    # The titles are the tests' own constants.
    sql(f"INSERT INTO notes (title, body, created_at) VALUES ('{title}', 'b', NOW());", database)  # noqa: S608


@pytest.fixture
def restored(tmp_path) -> Iterator[tuple[str, Path]]:
    """A live database with notes 'kept' and 'later', and <db>_restore loaded from a dump
    taken when it held 'kept' only; yields the name and the dump's manifest."""
    with new_database("mariadb", tmp_path) as url:
        name = sa.make_url(url).database
        migrate.upgrade(url)
        add_note(name, "kept")
        dump = subprocess.run(
            ["mariadb-dump", "--user=root", "--single-transaction", "--skip-extended-insert", name],
            capture_output=True,
            check=True,
        ).stdout
        (tmp_path / "mariadb.sql.gz").write_bytes(gzip.compress(dump))
        manifest = tmp_path / "manifest.json"
        made = helper("manifest", str(manifest), f"--dump={tmp_path / 'mariadb.sql.gz'}")
        assert made.returncode == 0, made.stderr
        sql(f"CREATE DATABASE `{name}_restore`;")
        subprocess.run([*CLIENT.split(), f"{name}_restore"], input=dump, check=True)
        add_note(name, "later")
        try:
            yield name, manifest
        finally:
            for scratch in (f"{name}_restore", f"{name}_prerestore"):
                sql(f"DROP DATABASE IF EXISTS `{scratch}`;")


def test_swap_puts_the_restored_tables_live_and_unswap_puts_them_back(restored):
    name, manifest = restored
    tables = sorted(load_helper().list_tables(CLIENT, [name])[name])
    assert "notes" in tables and "alembic_version" in tables

    swapped = helper("mariadb-swap", "swap", name, f"--client={CLIENT}")
    assert swapped.returncode == 0, swapped.stderr
    report = json.loads(swapped.stdout)
    assert report["changed"] is True and report["step"] == "swap"
    assert report["moved"] == {
        f"{name} -> {name}_prerestore": tables,
        f"{name}_restore -> {name}": tables,
    }
    assert report["statements"][-1].startswith("RENAME TABLE ")
    assert titles(name) == ["kept"]
    assert titles(f"{name}_prerestore") == ["kept", "later"]
    assert sql(f"SHOW TABLES FROM `{name}_restore`;") == ""

    counted = helper("verify", str(manifest), f"--mariadb-schema={name}", f"--client={CLIENT}")
    assert counted.returncode == 0, counted.stdout + counted.stderr

    unswapped = helper("mariadb-swap", "unswap", name, f"--client={CLIENT}")
    assert unswapped.returncode == 0, unswapped.stderr
    assert json.loads(unswapped.stdout)["changed"] is True
    assert titles(name) == ["kept", "later"]
    assert titles(f"{name}_restore") == ["kept"]
    assert sql(f"SHOW TABLES FROM `{name}_prerestore`;") == ""


def test_nothing_to_move_changes_nothing(restored):
    name, _ = restored
    # Nothing was set aside yet, so there is nothing to put back.
    result = helper("mariadb-swap", "unswap", name, f"--client={CLIENT}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["changed"] is False and report["statements"] == []
    assert titles(name) == ["kept", "later"] and titles(f"{name}_restore") == ["kept"]


def test_counts_that_differ_from_the_manifest_fail_naming_the_table(restored):
    name, manifest = restored
    # The live database holds one note more than the dump.
    result = helper("verify", str(manifest), f"--mariadb-schema={name}", f"--client={CLIENT}")
    assert result.returncode == 1
    assert "table notes: 2 rows, backup has 1" in result.stdout
    # The loaded scratch database matches.
    loaded = helper(
        "verify", str(manifest), f"--mariadb-schema={name}_restore", f"--client={CLIENT}"
    )
    assert loaded.returncode == 0, loaded.stdout


def test_a_failing_client_is_reported_and_nothing_moves(restored):
    name, _ = restored
    result = helper("mariadb-swap", "swap", name, "--client=mariadb --user=nobody-here")
    assert result.returncode == 1
    assert "mariadb client exited with" in json.loads(result.stdout)["error"]
    assert result.stderr.startswith("noticeboard-backup: ")
    assert titles(name) == ["kept", "later"]


def test_the_statement_quotes_every_name():
    plan = load_helper().swap_plan(
        "swap", "my`db", {"my`db": ["a`b"], "my`db_restore": ["a`b", "c"], "my`db_prerestore": []}
    )
    assert plan["statements"] == [
        "DROP DATABASE IF EXISTS `my``db_prerestore`",
        "CREATE DATABASE `my``db_prerestore`",
        "RENAME TABLE `my``db`.`a``b` TO `my``db_prerestore`.`a``b`, "
        "`my``db_restore`.`a``b` TO `my``db`.`a``b`, `my``db_restore`.`c` TO `my``db`.`c`",
    ]

"""`noticeboard db copy` and `db verify`: SQLite to a real MariaDB and PostgreSQL.

The source is a SQLite board filled through the application's models (ids with gaps,
text with newlines, tabs and non-Latin letters, times with fractions, attachments);
the checks below compare the two databases with plain SQL, not with the copy's own
checksums.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
import sqlalchemy as sa
from conftest import SERVER_BACKENDS, new_database

from noticeboard import migrate, transfer
from noticeboard.db import make_engine
from noticeboard.models import AttachmentBlob, Event, Note, User

from helpers import CSRF, base_env, run_cli

NOTES = 2500
BATCH = 400
TABLES = ("notes", "events", "event_lock", "attachment_blobs", "users", "sign_in_failures")


def fill(url: str) -> None:
    """Notes and their events, some deleted, as the app writes them."""
    rng = random.Random(8)
    engine = make_engine(url)
    start = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)
    notes, events, blobs = [], [], []
    for i in range(1, NOTES + 1):
        body = f"note {i}\n\tline two — ünïcödé 掲示板 {rng.random()}" + " x" * rng.randrange(50)
        attached = i % 97 == 0
        when = start + dt.timedelta(seconds=i, microseconds=i * 37)
        notes.append(
            {
                "id": i,
                "title": f"Title {i} ✓",
                "body": body,
                "created_at": when,
                "attachment_name": f"file {i}.txt" if attached else None,
                "attachment_key": f"{i:032x}" if attached else None,
                "attachment_size": i * 11 if attached else None,
            }
        )
        if attached:
            # Every byte value, some past the 64 KiB of MariaDB's plain BLOB.
            data = bytes(range(256)) * (i // 10) + rng.randbytes(i)
            blobs.append(
                {"attachment_key": f"{i:032x}", "data": data, "size": len(data), "created_at": when}
            )
        events.append(
            {
                "kind": "note-created",
                "note_id": i,
                "payload": json.dumps({"id": i}),
                "created_at": when,
            }
        )
    with engine.begin() as conn:
        conn.execute(sa.insert(Note), notes)
        conn.execute(sa.insert(Event), events)
        conn.execute(sa.insert(AttachmentBlob), blobs)
        # Accounts move with the board (a hash, not a password; its text is what matters).
        conn.execute(
            sa.insert(User),
            [
                {
                    "username": f"user{i}",
                    "role": "admin" if i == 1 else "member",
                    "password_hash": f"scrypt:32768:8:1${i:016x}$" + "ab" * 64,
                    "session_version": i,
                    "created_at": start,
                    "updated_at": start,
                }
                for i in range(1, 4)
            ],
        )
        gone = list(range(5, NOTES, 50))
        conn.execute(sa.delete(Note).where(Note.id.in_(gone)))
        conn.execute(
            sa.insert(Event),
            [
                {"kind": "note-deleted", "note_id": n, "payload": "{}", "created_at": start}
                for n in gone
            ],
        )
    engine.dispose()


def plain_rows(url: str, table: str) -> list[tuple]:
    """Every row by primary key through a bare SQL query; times cut to whole seconds."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            key = "attachment_key" if table == "attachment_blobs" else "id"
            rows = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {key}")).all()  # noqa: S608
    finally:
        engine.dispose()
    out = []
    for row in rows:
        values = []
        for value in row:
            if isinstance(value, str) and len(value) == 26 and value[4] == "-" and value[19] == ".":
                value = dt.datetime.fromisoformat(value)  # SQLite keeps times as text
            if isinstance(value, dt.datetime):
                value = value.replace(microsecond=0)
            values.append(value)
        out.append(tuple(values))
    return out


@pytest.fixture(params=SERVER_BACKENDS)
def target_url(request, tmp_path):
    with new_database(request.param, tmp_path) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def source(tmp_path):
    """A filled SQLite board in maintenance mode; returns (url, env for the CLI)."""
    url = f"sqlite:///{tmp_path / 'board.db'}"
    migrate.upgrade(url)
    fill(url)
    env = base_env(url, tmp_path / "data")
    assert run_cli("maintenance", "on", env=env).returncode == 0
    return url, env


def test_copy_moves_every_row_and_the_app_goes_on_from_there(source, target_url, tmp_path):
    url, env = source
    done = run_cli(
        "db", "copy", "--batch-size", str(BATCH), env={**env, "TARGET_DATABASE_URL": target_url}
    )
    assert done.returncode == 0, done.stderr
    assert "notes: 2450 rows copied" in done.stdout
    assert "attachment_blobs: 25 rows copied" in done.stdout
    assert done.stdout.count("match") == len(TABLES)
    for table in TABLES:
        assert plain_rows(target_url, table) == plain_rows(url, table), table

    # The app on the target: new ids follow the copied ones (sequences, AUTO_INCREMENT).
    from noticeboard import settings
    from noticeboard.app import create_app

    app = create_app(settings.load(base_env(target_url, tmp_path / "target-data")))
    try:
        client = app.test_client()
        created = client.post(
            "/api/notes", json={"body": "first on the new database"}, headers=CSRF
        )
        assert created.status_code == 201, created.get_json()
        assert created.get_json()["id"] == NOTES + 1
        newest = app.extensions["noticeboard.db"].max_event_id()
        assert newest == NOTES + len(range(5, NOTES, 50)) + 1
        listed = client.get("/api/notes?limit=100").get_json()["notes"]
        assert listed[1]["body"] == plain_rows(url, "notes")[-1][1]
    finally:
        app.extensions["noticeboard.db"].dispose()


def test_an_interrupted_copy_is_finished_by_running_it_again(source, target_url):
    url, env = source

    def stop_in_the_middle(table: str, copied: int) -> None:
        if table == "notes" and copied >= 2 * BATCH:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transfer.copy(
            url, target_url, size=BATCH, after_batch=stop_in_the_middle, report=lambda _: None
        )
    partial = len(plain_rows(target_url, "notes"))
    assert 0 < partial < NOTES - 50

    env = {**env, "TARGET_DATABASE_URL": target_url}
    again = run_cli("db", "copy", env=env)
    assert again.returncode == 1
    assert f"{partial} in notes" in again.stderr and "--replace" in again.stderr

    again = run_cli("db", "copy", "--replace", env=env)
    assert again.returncode == 0, again.stderr
    for table in TABLES:
        assert plain_rows(target_url, table) == plain_rows(url, table), table
    assert run_cli("db", "verify", env=env).returncode == 0


def test_verify_names_the_table_that_differs(source, target_url):
    _url, env = source
    env = {**env, "TARGET_DATABASE_URL": target_url}
    assert run_cli("db", "copy", env=env).returncode == 0
    engine = sa.create_engine(target_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE notes SET body = 'changed' WHERE id = 1000"))
    engine.dispose()
    result = run_cli(
        "db",
        "verify",
        "--against",
        target_url,
        env={k: v for k, v in env.items() if k != "TARGET_DATABASE_URL"},
    )
    assert result.returncode == 5
    assert "notes: 2450 rows" in result.stdout and "DIFFERENT" in result.stdout
    assert "differs from the source in notes" in result.stderr
    assert "events" not in result.stderr

    checked = run_cli("db", "verify", "--json", env={**env, "TARGET_DATABASE_URL": target_url})
    assert checked.returncode == 5
    report = json.loads(checked.stdout)
    assert report["match"] is False and report["different"] == ["notes"]
    assert report["tables"]["notes"] == {"source_rows": 2450, "target_rows": 2450, "match": False}
    assert report["tables"]["events"]["match"] is True


def test_verify_json_after_a_copy_and_when_the_target_is_not_ready(source, target_url, tmp_path):
    _url, env = source
    env = {**env, "TARGET_DATABASE_URL": target_url}
    assert run_cli("db", "copy", env=env).returncode == 0
    checked = run_cli("db", "verify", "--json", env=env)
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["match"] is True and report["different"] == []
    assert set(report["tables"]) == set(TABLES)
    assert report["tables"]["notes"]["target_rows"] == 2450

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    failed = run_cli("db", "verify", "--json", "--against", empty, env=env)
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["match"] is False and "not at head" in report["error"]


def test_copy_refuses_without_maintenance_mode(source, target_url):
    _url, env = source
    assert run_cli("maintenance", "off", env=env).returncode == 0
    result = run_cli("db", "copy", "--to", target_url, env=env)
    assert result.returncode == 1
    assert "noticeboard maintenance on" in result.stderr
    assert plain_rows(target_url, "notes") == []


def test_copy_refuses_a_target_behind_head(source, tmp_path):
    _url, env = source
    with new_database("mariadb", tmp_path) as target:
        migrate.upgrade(target, "0001")
        result = run_cli("db", "copy", "--to", target, env=env)
    assert result.returncode == 1
    assert "target database" in result.stderr and "not at head" in result.stderr
    assert "nbtest-loopback-only" not in result.stderr


def test_copy_names_the_missing_target(source):
    _, env = source
    result = run_cli("db", "copy", env=env)
    assert result.returncode == 2
    assert "--to URL" in result.stderr and "TARGET_DATABASE_URL" in result.stderr

"""Migrations on every backend: empty to head, data kept across revisions, drift found."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from noticeboard import migrate
from noticeboard.models import Base

from helpers import base_env, run_cli


def test_empty_to_head_matches_the_models(fresh_url):
    migrate.upgrade(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
            assert diff == []
            assert conn.execute(sa.text("SELECT id FROM event_lock")).scalars().all() == [1]
    finally:
        engine.dispose()


def test_previous_revision_with_data_upgrades_with_every_row_intact(fresh_url):
    migrate.upgrade(fresh_url, "0001")
    bodies = [
        "Fire drill on Friday\nMeet at the car park.",
        "\n\n   Leading blank lines then text  \nmore",
        "x" * 450,
        "Ünïcödé ✓ — 東京\nsecond line",
        "   ",
    ]
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            for i, body in enumerate(bodies, start=1):
                conn.execute(
                    sa.text(
                        "INSERT INTO notes (id, body, created_at, attachment_name, "
                        "attachment_key, attachment_size) VALUES "
                        "(:id, :body, :ts, :name, :key, :size)"
                    ),
                    {
                        "id": i * 10,
                        "body": body,
                        "ts": f"2026-01-0{i} 10:00:00",
                        "name": "report.pdf" if i == 1 else None,
                        "key": "ab" * 16 if i == 1 else None,
                        "size": 1234 if i == 1 else None,
                    },
                )
            conn.execute(
                sa.text(
                    "INSERT INTO events (kind, note_id, payload, created_at) "
                    "VALUES ('note-created', 10, '{}', '2026-01-01 10:00:00')"
                )
            )
        engine.dispose()

        migrate.upgrade(fresh_url)

        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, body, title, attachment_name, attachment_key, attachment_size "
                    "FROM notes ORDER BY id"
                )
            ).all()
            events = conn.execute(sa.text("SELECT COUNT(*) FROM events")).scalar()
    finally:
        engine.dispose()

    assert [r.id for r in rows] == [10, 20, 30, 40, 50]
    assert [r.body for r in rows] == bodies
    assert [r.title for r in rows] == [
        "Fire drill on Friday",
        "Leading blank lines then text",
        "x" * 200,
        "Ünïcödé ✓ — 東京",
        "Untitled",
    ]
    assert (rows[0].attachment_name, rows[0].attachment_key, rows[0].attachment_size) == (
        "report.pdf",
        "ab" * 16,
        1234,
    )
    assert events == 1


def test_db_commands_detect_a_schema_behind_head(fresh_url, tmp_path):
    env = base_env(fresh_url, tmp_path)

    result = run_cli("db", "check", env=env)
    assert result.returncode == 3
    assert "no revision" in result.stderr and "noticeboard db upgrade" in result.stderr

    migrate.upgrade(fresh_url, "0001")
    assert run_cli("db", "current", env=env).stdout.strip() == "0001"
    result = run_cli("db", "check", env=env)
    assert result.returncode == 3
    assert "at 0001, head is 0004" in result.stderr.strip().splitlines()[-1]

    migrate.upgrade(fresh_url)
    check = run_cli("check", env=env)
    assert check.returncode == 0, check.stderr
    assert "schema at 0004 (head 0004)" in check.stdout


def test_db_upgrade_command_reaches_head(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path)
    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded to head" in upgraded.stdout
    result = run_cli("db", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "schema is at head (0004)"


def test_attachment_table_is_added_without_touching_the_notes(fresh_url):
    """0003 only adds a table, so the release before it keeps working on the new schema."""
    migrate.upgrade(fresh_url, "0002")
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO notes (id, title, body, created_at, attachment_name, "
                    "attachment_key, attachment_size) VALUES "
                    "(7, 'T', 'B', '2026-01-01 10:00:00', 'a.bin', :key, 3)"
                ),
                {"key": "cd" * 16},
            )
            before = conn.execute(sa.text("SELECT * FROM notes")).all()
        engine.dispose()
        migrate.upgrade(fresh_url)
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT * FROM notes")).all() == before
            # What the previous release writes still goes in unchanged.
            conn.execute(
                sa.text(
                    "INSERT INTO notes (title, body, created_at) "
                    "VALUES ('old release', 'x', '2026-01-02 10:00:00')"
                )
            )
            big = bytes(range(256)) * 600  # past the 64 KiB of MariaDB's plain BLOB
            conn.execute(
                sa.text(
                    "INSERT INTO attachment_blobs (attachment_key, data, size, created_at) "
                    "VALUES (:key, :data, :size, '2026-01-02 10:00:00')"
                ),
                {"key": "cd" * 16, "data": big, "size": len(big)},
            )
            stored = conn.execute(sa.text("SELECT data FROM attachment_blobs")).scalar()
            assert bytes(stored) == big
    finally:
        engine.dispose()

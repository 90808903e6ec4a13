"""ATTACHMENT_STORE=database: every app host serves every attachment, on every backend.

Two app instances share one database and have their own UPLOAD_DIR, as two hosts
behind a load balancer do. What one receives the other must serve byte for byte; a
file from before the switch must still be served and be moved by the import command.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import config_for, new_database

from noticeboard import migrate
from noticeboard.app import create_app
from noticeboard.storage import STATEMENT_SLACK

from helpers import CSRF, base_env, run_cli

# Every byte value, more than MariaDB's plain BLOB holds (64 KiB), under MAX_UPLOAD_MB=1.
PAYLOAD = bytes(range(256)) * 1024 + os.urandom(100_000) + b"\0" * 50_000


@pytest.fixture
def url(shared_url: str) -> str:
    engine = sa.create_engine(shared_url)
    with engine.begin() as conn:
        for table in ("notes", "events", "attachment_blobs"):
            conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
    engine.dispose()
    return shared_url


@pytest.fixture
def make_app(url: str, tmp_path: Path):
    """An app instance on the shared database with its own data directory (its host)."""
    apps = []

    def make(host: str, store: str = "database"):
        app = create_app(
            config_for(url, tmp_path / host, MAX_UPLOAD_MB="1", ATTACHMENT_STORE=store)
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["noticeboard.db"].dispose()


def upload(app, payload: bytes = PAYLOAD, name: str = "plan ü.bin") -> dict:
    response = app.test_client().post(
        "/api/notes",
        data={"body": "with a file", "attachment": (io.BytesIO(payload), name)},
        headers=CSRF,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def blobs(url: str) -> dict[str, tuple[int, bytes]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT attachment_key, size, data FROM attachment_blobs")
            ).all()
    finally:
        engine.dispose()
    return {row.attachment_key: (row.size, bytes(row.data)) for row in rows}


def files_under(app) -> list[str]:
    root = app.extensions["noticeboard.settings"].upload_dir
    return sorted(os.listdir(root)) if root.exists() else []


def test_an_upload_to_one_host_downloads_identical_from_another(make_app, url):
    first, second = make_app("app1"), make_app("app2")
    note = upload(first)
    assert note["attachment"]["size"] == len(PAYLOAD)
    assert files_under(first) == [] and files_under(second) == []
    assert [size for size, _ in blobs(url).values()] == [len(PAYLOAD)]

    download = second.test_client().get(note["attachment"]["url"])
    assert download.status_code == 200
    assert download.data == PAYLOAD
    assert download.headers["Content-Length"] == str(len(PAYLOAD))
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert "sandbox" in download.headers["Content-Security-Policy"]

    again = second.test_client().get(
        note["attachment"]["url"], headers={"If-None-Match": download.headers["ETag"]}
    )
    assert again.status_code == 304
    part = second.test_client().get(note["attachment"]["url"], headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.data) == (206, PAYLOAD[10:20])

    deleted = second.test_client().delete(f"/api/notes/{note['id']}", headers=CSRF)
    assert deleted.status_code == 204
    assert blobs(url) == {}
    assert first.test_client().get(note["attachment"]["url"]).status_code == 404


def test_headers_are_the_same_as_in_files_mode(make_app):
    in_database, on_disk = make_app("db-host"), make_app("files-host", store="files")
    responses = []
    for app in (in_database, on_disk):
        note = upload(app, b"same bytes", 'report "2026" ü.pdf')
        responses.append(app.test_client().get(note["attachment"]["url"]))
    stored, filed = responses
    assert stored.data == filed.data == b"same bytes"
    assert sorted(stored.headers.keys()) == sorted(filed.headers.keys())
    for name in ("Content-Disposition", "Content-Type", "Content-Length", "Cache-Control"):
        assert stored.headers[name] == filed.headers[name], name
    assert len(files_under(on_disk)) == 1 and files_under(in_database) == []


def test_files_mode_keeps_files_and_writes_no_rows(make_app, url):
    app = make_app("pi", store="files")
    note = upload(app)
    (key,) = files_under(app)
    assert (app.extensions["noticeboard.settings"].upload_dir / key).read_bytes() == PAYLOAD
    assert blobs(url) == {}
    assert app.test_client().get(note["attachment"]["url"]).data == PAYLOAD
    app.test_client().delete(f"/api/notes/{note['id']}", headers=CSRF)
    assert files_under(app) == []


def test_an_oversize_upload_is_refused_and_stores_nothing(make_app, url):
    app = make_app("app1")
    response = app.test_client().post(
        "/api/notes",
        data={"body": "too big", "attachment": (io.BytesIO(b"x" * (1024 * 1024 + 1)), "big")},
        headers=CSRF,
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert blobs(url) == {}


def test_a_file_from_before_the_switch_is_served_then_imported(make_app, url, tmp_path):
    before = make_app("app1", store="files")
    old = upload(before, b"uploaded before the switch", "old.txt")
    (key,) = files_under(before)
    orphan = before.extensions["noticeboard.settings"].upload_dir / ("f" * 32)
    orphan.write_bytes(b"no note refers to this")

    after = make_app("app1")  # the same host, switched to database
    other = make_app("app2")
    assert after.test_client().get(old["attachment"]["url"]).data == b"uploaded before the switch"
    assert other.test_client().get(old["attachment"]["url"]).status_code == 404

    env = base_env(url, tmp_path / "app1", ATTACHMENT_STORE="database")
    result = run_cli("attachments", "import", env=env)
    assert result.returncode == 0, result.stderr
    assert "1 imported, 0 already in the database" in result.stdout
    assert "1 left alone" in result.stdout
    assert files_under(after) == ["f" * 32]
    assert blobs(url) == {key: (26, b"uploaded before the switch")}
    assert other.test_client().get(old["attachment"]["url"]).data == b"uploaded before the switch"

    again = run_cli("attachments", "import", env=env)
    assert again.returncode == 0, again.stderr
    assert "0 imported, 0 already in the database" in again.stdout

    # A run that stopped between the commit and removing the file: only the file goes.
    (orphan.parent / key).write_bytes(b"uploaded before the switch")
    resumed = run_cli("attachments", "import", env=env)
    assert "0 imported, 1 already in the database" in resumed.stdout
    assert files_under(after) == ["f" * 32]

    # The same key with other bytes is never resolved by guessing: both are kept.
    (orphan.parent / key).write_bytes(b"something else")
    conflict = run_cli("attachments", "import", env=env)
    assert conflict.returncode == 1
    assert key in conflict.stderr and "differs" in conflict.stderr
    assert (orphan.parent / key).read_bytes() == b"something else"
    assert blobs(url)[key] == (26, b"uploaded before the switch")


def test_import_refuses_in_files_mode(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'board.db'}", tmp_path)
    result = run_cli("attachments", "import", env=env)
    assert result.returncode == 1
    assert "ATTACHMENT_STORE=database" in result.stderr


def test_a_bad_store_names_the_setting_and_the_choices(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'board.db'}", tmp_path, ATTACHMENT_STORE="s3")
    result = run_cli("check", env=env)
    assert result.returncode == 2
    assert "ATTACHMENT_STORE='s3' is not valid" in result.stderr
    assert "files, database" in result.stderr


def test_mariadb_max_allowed_packet_is_named_instead_of_a_lost_connection(tmp_path, capsys):
    """PyMySQL sends bytes as a hex literal, so an attachment takes twice its size."""
    with new_database("mariadb", tmp_path) as url:
        migrate.upgrade(url)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            limit = conn.execute(sa.text("SELECT @@max_allowed_packet")).scalar()
        engine.dispose()
        fits, too_large = (limit - STATEMENT_SLACK) // 2, limit // 2 + 1
        app = create_app(
            config_for(
                url,
                tmp_path / "data",
                ATTACHMENT_STORE="database",
                MAX_UPLOAD_MB=str(limit // (1024 * 1024)),
            )
        )
        try:
            assert upload(app, os.urandom(fits))["attachment"]["size"] == fits
            response = app.test_client().post(
                "/api/notes",
                data={"body": "big", "attachment": (io.BytesIO(os.urandom(too_large)), "b.bin")},
                headers=CSRF,
                content_type="multipart/form-data",
            )
            assert response.status_code == 413
            assert "max_allowed_packet" in response.get_json()["error"]
            assert "raise max_allowed_packet" in capsys.readouterr().err
            assert [size for size, _ in blobs(url).values()] == [fits]
        finally:
            app.extensions["noticeboard.db"].dispose()

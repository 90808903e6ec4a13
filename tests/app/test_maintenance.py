"""Maintenance mode: writes refused with a clear 503, reads and live updates still served."""

from __future__ import annotations

import io

import httpx
import pytest
import sqlalchemy as sa

from noticeboard.maintenance import ReadOnlyError
from noticeboard.models import Note, utcnow

from helpers import CSRF, WAIT, Server, SseClient, base_env, free_port, post_note, run_cli


def flag(app):
    return app.extensions["noticeboard.maintenance"]


def note_count(app) -> int:
    with app.extensions["noticeboard.db"].engine.connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM notes")).scalar()


def test_writes_get_503_with_retry_after_while_reads_go_on(app, client):
    kept = client.post(
        "/api/notes",
        data={"body": "before", "attachment": (io.BytesIO(b"file bytes"), "a.txt")},
        headers=CSRF,
    ).get_json()
    flag(app).enable(120)
    try:
        created = client.post("/api/notes", json={"body": "during"}, headers=CSRF)
        deleted = client.delete(f"/api/notes/{kept['id']}", headers=CSRF)
        for response in (created, deleted):
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "120"
            body = response.get_json()
            assert body["maintenance"] is True
            assert "read-only for maintenance" in body["error"]
        assert note_count(app) == 1

        listed = client.get("/api/notes")
        assert [n["id"] for n in listed.get_json()["notes"]] == [kept["id"]]
        assert client.get(f"/api/notes/{kept['id']}/attachment").data == b"file bytes"
        page = client.get("/")
        assert page.status_code == 200
        assert b"read-only for maintenance" in page.data
        ready = client.get("/readyz").get_json()
        assert ready["status"] == "ready" and ready["maintenance"] is True
    finally:
        flag(app).disable()
    assert client.post("/api/notes", json={"body": "after"}, headers=CSRF).status_code == 201
    assert b"read-only for maintenance" not in client.get("/").data
    assert client.get("/readyz").get_json()["maintenance"] is False


def test_a_browser_is_told_in_html(app, client):
    flag(app).enable()
    try:
        response = client.post(
            "/api/notes",
            data={"body": "x"},
            headers={**CSRF, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
        )
    finally:
        flag(app).disable()
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert b"Read-only for maintenance" in response.data
    assert response.headers["Retry-After"] == "60"


def test_a_write_that_sees_the_switch_before_committing_is_rolled_back(app):
    """The second look, inside the transaction, is what a copy of the database relies on."""
    database = app.extensions["noticeboard.db"]
    with pytest.raises(ReadOnlyError), database.writing() as session:
        session.add(Note(title="t", body="late", created_at=utcnow()))
        flag(app).enable()
    flag(app).disable()
    assert note_count(app) == 0


def test_the_command_switches_a_running_server_without_a_restart(tmp_path):
    """Real Gunicorn: `noticeboard maintenance on|off` from another process takes effect."""
    data = tmp_path / "data"
    url = f"sqlite:///{tmp_path / 'board.db'}"
    env = base_env(url, data)
    assert run_cli("db", "upgrade", env=env).returncode == 0
    with Server(url, data) as srv:
        before = post_note(srv.url, "before")
        stream = SseClient(srv.url + "/events", last_event_id=0).start()
        assert [e.event for e in stream.take(1)] == ["note-created"]

        on = run_cli("maintenance", "on", "--retry-after", "30", env=env)
        assert on.returncode == 0, on.stderr
        assert run_cli("maintenance", "status", env=env).stdout.strip() == "on"
        refused = httpx.post(srv.url + "/api/notes", json={"body": "x"}, headers=CSRF, timeout=WAIT)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
        got = httpx.get(f"{srv.url}/api/notes/{before['id']}", timeout=WAIT)
        assert got.status_code == 200 and got.json()["body"] == "before"
        assert not stream.ended.is_set()

        assert run_cli("maintenance", "off", env=env).returncode == 0
        after = post_note(srv.url, "after")
        (event,) = stream.take(1)
        assert event.event == "note-created" and str(after["id"]) in event.data
        stream.stop = True


def test_switching_on_works_while_the_database_is_down(tmp_path):
    """The flag is what counts; waiting for writes in flight is skipped with a warning."""
    env = base_env(f"postgresql+psycopg://nobody:pw@127.0.0.1:{free_port()}/none", tmp_path)
    result = run_cli("maintenance", "on", env=env)
    assert result.returncode == 0, result.stderr
    assert "maintenance on" in result.stdout
    assert "warning: could not wait for writes in flight" in result.stderr
    assert "pw@" not in result.stderr
    assert (tmp_path / "maintenance").read_text().strip() == "60"
    assert run_cli("maintenance", "status", env=env).stdout.strip() == "on"
    assert run_cli("maintenance", "off", env=env).returncode == 0
    assert not (tmp_path / "maintenance").exists()

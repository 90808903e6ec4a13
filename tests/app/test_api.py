"""The JSON API, the page and the health endpoints, on every backend."""

from __future__ import annotations

import io
import json
import os

import pytest
import sqlalchemy as sa

from noticeboard import migrate
from noticeboard.storage import content_disposition, sanitise_filename

from helpers import CSRF


def counts(app) -> tuple[int, int, int]:
    """Notes, events and stored files: what a refused request must leave unchanged."""
    db = app.extensions["noticeboard.db"]
    with db.engine.connect() as conn:
        notes = conn.execute(sa.text("SELECT COUNT(*) FROM notes")).scalar()
        events = conn.execute(sa.text("SELECT COUNT(*) FROM events")).scalar()
    root = app.extensions["noticeboard.storage"].root
    files = len(os.listdir(root)) if root.exists() else 0
    return notes, events, files


def create(client, body="hello", **fields):
    response = client.post("/api/notes", json={"body": body, **fields}, headers=CSRF)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_get_list_and_delete(client):
    first = create(client, "First line\nsecond line")
    assert first["title"] == "First line"
    second = create(client, "another", title="Explicit title")
    assert second["title"] == "Explicit title"

    assert client.get(f"/api/notes/{first['id']}").get_json() == first
    listed = client.get("/api/notes").get_json()
    assert [n["id"] for n in listed["notes"]] == [second["id"], first["id"]]
    assert listed["next"] is None

    assert client.delete(f"/api/notes/{first['id']}", headers=CSRF).status_code == 204
    missing = client.get(f"/api/notes/{first['id']}")
    assert missing.status_code == 404
    assert missing.get_json()["field"] == "id"
    assert client.delete(f"/api/notes/{first['id']}", headers=CSRF).status_code == 404
    assert client.get("/api/notes/999999/attachment").status_code == 404


def test_list_is_newest_first_and_paginated(client):
    ids = [create(client, f"note {i}")["id"] for i in range(7)]
    seen = []
    url = "/api/notes?limit=3"
    while url:
        page = client.get(url).get_json()
        seen += [n["id"] for n in page["notes"]]
        url = page["next"]
    assert seen == sorted(ids, reverse=True)


def test_every_change_is_an_event_row(app, client):
    note = create(client, "evented")
    client.delete(f"/api/notes/{note['id']}", headers=CSRF)
    with app.extensions["noticeboard.db"].engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, note_id, payload FROM events ORDER BY id")).all()
    assert [(r.kind, r.note_id) for r in rows] == [
        ("note-created", note["id"]),
        ("note-deleted", note["id"]),
    ]
    assert json.loads(rows[0].payload) == note


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "body"),
        ({"json": ["a", "list"]}, 400, "body"),
        ({"json": {}}, 400, "body"),
        ({"json": {"body": 42}}, 400, "body"),
        ({"json": {"body": "   "}}, 400, "body"),
        ({"json": {"body": "x" * 10_001}}, 400, "body"),
        ({"json": {"body": "ok", "title": ["no"]}}, 400, "title"),
        ({"json": {"body": "ok", "title": "t" * 201}}, 400, "title"),
        ({"data": "body=hi", "content_type": "text/plain"}, 415, "body"),
        # Text no database stores: a lone surrogate escape, NUL (PostgreSQL refuses it).
        ({"data": '{"body": "\\ud800"}', "content_type": "application/json"}, 400, "body"),
        ({"json": {"body": "ok", "title": "a\udfffb"}}, 400, "title"),
        ({"json": {"body": "nul \x00 here"}}, 400, "body"),
        # Deeper than the JSON parser recurses.
        ({"data": "[" * 100_000, "content_type": "application/json"}, 400, "body"),
        # A field the API does not know is refused, not dropped.
        ({"json": {"body": "ok", "titel": "typo"}}, 400, "titel"),
        ({"data": {"body": "ok", "colour": "red"}}, 400, "colour"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    app, client, kwargs, status, field
):
    before = counts(app)
    response = client.post("/api/notes", headers=CSRF, **kwargs)
    assert response.status_code == status
    data = response.get_json()
    assert data["field"] == field
    assert data["error"]
    assert counts(app) == before


@pytest.mark.parametrize(
    "query",
    # "²" passes str.isdigit() and fails int(); int() refuses more than 4300 digits.
    ["limit=0", "limit=abc", "limit=101", "before=-1", "limit=%C2%B2", "before=" + "9" * 4301],
)
def test_bad_pagination_is_a_400(client, query):
    response = client.get(f"/api/notes?{query}")
    assert response.status_code == 400
    assert response.get_json()["field"] in {"limit", "before"}


@pytest.mark.parametrize("before", [2**31 - 1, 2**31, 2**53])
def test_a_before_beyond_every_id_lists_from_the_newest(client, before):
    """Found by the property tests: PostgreSQL refused 2**31 against its 32-bit ids."""
    ids = [create(client, f"note {i}")["id"] for i in range(2)]
    response = client.get(f"/api/notes?before={before}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [n["id"] for n in response.get_json()["notes"]] == ids[::-1]


@pytest.mark.parametrize(
    "note_id", [str(2**31), str(2**63), str(2**64 + 1), "9" * 40, "0", "-1", "abc", "%C2%B2"]
)
def test_an_id_that_names_no_note_is_a_404_naming_the_id(app, client, note_id):
    """Ids beyond the 32-bit column used to reach the database: 500 on SQLite, 503 else."""
    before = counts(app)
    for method, path in (
        ("GET", f"/api/notes/{note_id}"),
        ("DELETE", f"/api/notes/{note_id}"),
        ("GET", f"/api/notes/{note_id}/attachment"),
    ):
        response = client.open(path, method=method, headers=CSRF)
        assert response.status_code == 404, (method, path, response.get_data(as_text=True))
        assert response.get_json()["field"] == "id"
    assert counts(app) == before


def test_a_path_with_an_empty_segment_is_a_404_not_a_redirect(client):
    response = client.get("/api/notes//attachment")
    assert response.status_code == 404
    assert response.get_json()["field"] == "path"


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Last-Event-ID": "\u00b2"}, "Last-Event-ID"),
        ({"Last-Event-ID": "9" * 19}, "Last-Event-ID"),
    ],
)
def test_a_bad_last_event_id_is_a_400(client, headers, field):
    response = client.get("/events", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_an_origin_that_does_not_parse_is_refused(app, client):
    before = counts(app)
    response = client.post(
        "/api/notes", json={"body": "x"}, headers={**CSRF, "Origin": "http://[::1"}
    )
    assert response.status_code == 403
    assert response.get_json()["field"] == "Origin"
    assert counts(app) == before


BOUNDARY = "nb-boundary"
BODY_PART = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="body"\r\n\r\nhello\r\n'
FILE_HEAD = 'Content-Disposition: form-data; name="attachment"; filename="a.txt"'
FILE_PART = f"--{BOUNDARY}\r\n{FILE_HEAD}\r\nContent-Type: text/plain\r\n\r\nDATA\r\n"
END = f"--{BOUNDARY}--\r\n"


# Werkzeug could not parse these; its default was to hand the view an empty form, which
# answered "body is required" to a client that had sent one.
UNREADABLE = "the form could not be read whole"


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        # A quote lost in the part header: the file became a text field of another name.
        (
            BODY_PART + FILE_PART.replace('"attachment"', '"attachment') + END,
            "attachment; filename=",
            "unknown field",
        ),
        # No colon after the header's name.
        (
            BODY_PART + FILE_PART.replace("Content-Disposition:", "Content-Disposition") + END,
            "body",
            UNREADABLE,
        ),
        # No blank line between the part's headers and its bytes.
        (BODY_PART + FILE_PART.replace("\r\n\r\nDATA", "\r\nDATA") + END, "body", UNREADABLE),
        # Cut short: no closing boundary.
        (BODY_PART + FILE_PART[:-10], "body", UNREADABLE),
        # The file part named like a text field, or sent twice.
        (
            BODY_PART + FILE_PART.replace('; filename="a.txt"', "") + END,
            "attachment",
            "must be a file part",
        ),
        (BODY_PART + FILE_PART + FILE_PART + END, "attachment", "once"),
        # Bytes and no file name: not what a form sends for "no file chosen".
        (
            BODY_PART + FILE_PART.replace('filename="a.txt"', 'filename=""') + END,
            "attachment",
            "no filename",
        ),
        # A part with no name at all.
        (BODY_PART + FILE_PART.replace('name="attachment"; ', "") + END, "body", "no name"),
    ],
    ids=[
        "lost-quote",
        "no-colon",
        "no-blank-line",
        "cut-short",
        "not-a-file",
        "twice",
        "no-file-name",
        "no-part-name",
    ],
)
def test_a_form_that_cannot_be_read_whole_stores_nothing(app, client, raw, field, says):
    """A note is stored with its attachment or not at all, and the answer says why."""
    before = counts(app)
    response = client.post(
        "/api/notes",
        data=raw.encode(),
        headers={**CSRF, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == field
    assert says in response.get_json()["error"]
    assert counts(app) == before


def test_a_form_with_no_file_chosen_stores_the_note_without_one(client):
    raw = BODY_PART + FILE_PART.replace('filename="a.txt"', 'filename=""').replace("DATA", "") + END
    response = client.post(
        "/api/notes",
        data=raw.encode(),
        headers={**CSRF, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["attachment"] is None


def test_attachment_round_trip_is_byte_identical(app, client):
    payload = bytes(range(256)) * 1000 + os.urandom(4096)
    response = client.post(
        "/api/notes",
        data={"body": "with a file", "attachment": (io.BytesIO(payload), "report 2026.pdf")},
        headers=CSRF,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    note = response.get_json()
    assert note["attachment"]["name"] == "report 2026.pdf"
    assert note["attachment"]["size"] == len(payload)

    download = client.get(note["attachment"]["url"])
    assert download.status_code == 200
    assert download.data == payload
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith('attachment; filename="report')
    assert "sandbox" in download.headers["Content-Security-Policy"]

    client.delete(f"/api/notes/{note['id']}", headers=CSRF)
    assert counts(app)[2] == 0


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../../../etc/passwd", "passwd"),
        # The multipart encoding treats backslashes as escapes, so they never arrive.
        ("..\\..\\windows\\system32\\evil.dll", "windowssystem32evil.dll"),
        ("/absolute/path/.bashrc", "bashrc"),
        ("rm -rf ;name<>.txt", "rm -rf _name__.txt"),
        ("..", "attachment"),
    ],
)
def test_client_file_names_never_reach_the_filesystem(app, client, tmp_path, name, shown):
    root = app.extensions["noticeboard.storage"].root
    response = client.post(
        "/api/notes",
        data={"body": "traversal", "attachment": (io.BytesIO(b"payload"), name)},
        headers=CSRF,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201
    note = response.get_json()
    assert note["attachment"]["name"] == shown
    stored = os.listdir(root)
    assert len(stored) == 1
    assert len(stored[0]) == 32 and all(c in "0123456789abcdef" for c in stored[0])
    header = client.get(note["attachment"]["url"]).headers["Content-Disposition"]
    assert "\r" not in header and "\n" not in header and "/" not in header.split(";")[1]
    assert not (tmp_path / "etc").exists() and not (root.parent.parent / "passwd").exists()


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ('quo"te\r\nX-Injected: yes.txt', "quo_teX-Injected_ yes.txt"),
        ("\x00\x1b[31mred\u202e.txt", "[31mred.txt"),
        ("...hidden", "hidden"),
        ("Ünïcödé 東京.pdf", "Ünïcödé 東京.pdf"),
        ("a" * 300 + ".tar.gz", "a" * 117 + ".gz"),
    ],
)
def test_file_names_are_sanitised_for_the_header(name, shown):
    clean = sanitise_filename(name)
    assert clean == shown
    header = content_disposition(clean)
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert header.count('"') == 2


def test_oversize_upload_is_413_and_nothing_is_written(app, client):
    before = counts(app)
    response = client.post(
        "/api/notes",
        data={"body": "too big", "attachment": (io.BytesIO(b"\0" * (1024 * 1024 + 1)), "big.bin")},
        headers=CSRF,
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "1 MiB" in response.get_json()["error"]
    assert counts(app) == before


def test_state_changes_need_the_csrf_header_and_same_origin(app, client):
    before = counts(app)
    response = client.post("/api/notes", json={"body": "forged"})
    assert response.status_code == 403
    assert response.get_json()["field"] == "X-Requested-With"
    response = client.post(
        "/api/notes",
        json={"body": "forged"},
        headers={**CSRF, "Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert counts(app) == before
    note = create(client, "kept")
    assert client.delete(f"/api/notes/{note['id']}").status_code == 403
    assert client.get(f"/api/notes/{note['id']}").status_code == 200


def test_page_lists_notes_with_security_headers(client):
    create(client, "<script>alert(1)</script>")
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "static/dist/app.js" in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_health_and_readiness(app, client):
    assert client.get("/healthz").get_json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["revision"] == migrate.head_revision()


def test_readiness_fails_when_the_schema_is_behind(fresh_url, tmp_path):
    from conftest import config_for

    from noticeboard.app import create_app

    migrate.upgrade(fresh_url, "0001")
    app = create_app(config_for(fresh_url, tmp_path))
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "expected 0004" in response.get_json()["reason"]
    finally:
        app.extensions["noticeboard.db"].dispose()


def test_proxy_headers_are_trusted_only_when_configured(shared_url, tmp_path):
    from conftest import config_for
    from flask import request

    from noticeboard.app import create_app

    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "board.example"}
    for count, seen in (("0", "http://localhost/"), ("1", "https://board.example/")):
        app = create_app(config_for(shared_url, tmp_path, TRUSTED_PROXY_COUNT=count))
        urls = []
        app.before_request(lambda urls=urls: urls.append(request.host_url))
        try:
            response = app.test_client().get("/healthz", headers=headers)
            assert urls == [seen]
            # HSTS is the front door's to send (noticeboard_lb_hsts), never the app's.
            assert "Strict-Transport-Security" not in response.headers
        finally:
            app.extensions["noticeboard.db"].dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    from conftest import config_for

    from noticeboard.app import create_app

    url = f"sqlite:///{tmp_path / 'wal.db'}"
    migrate.upgrade(url)
    app = create_app(config_for(url, tmp_path))
    try:
        with app.extensions["noticeboard.db"].engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        app.extensions["noticeboard.db"].dispose()


def test_readiness_holds_on_a_schema_a_newer_release_migrated(fresh_url, tmp_path):
    """Rolling upgrades: the old release keeps serving once the new one has expanded the schema."""
    import sqlalchemy as sa
    from conftest import config_for

    from noticeboard.app import create_app

    migrate.upgrade(fresh_url)
    engine = sa.create_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    app = create_app(config_for(fresh_url, tmp_path))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 200
        body = response.get_json()
        assert (body["schema"], body["revision"]) == ("ahead", "9999_from_the_future")
        assert body["head"] == migrate.head_revision()
    finally:
        app.extensions["noticeboard.db"].dispose()

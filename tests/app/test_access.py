"""Access control: what each mode and role may do through the API, the stream and downloads.

Role matrices run on SQLite (the rules do not depend on the database); accounts and
throttling, whose state is in the database, run on all three.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys

import httpx
import pytest
from werkzeug.http import parse_cookie

from noticeboard import accounts, auth, cli, openapi, settings
from noticeboard.app import create_app

from helpers import CSRF, WAIT, Server, base_env, run_cli

ADMIN_PW = "Admin-pass-0f-the-board"
MEMBER_PW = "Member-pass-0f-the-board"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def board(app, shared_url, tmp_path):
    """Apps on the test database (``app`` has emptied it) with settings of the test's choice."""
    made = []

    def make(**extra: str):
        application = create_app(settings.load(base_env(shared_url, tmp_path / "data", **extra)))
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["noticeboard.db"].dispose()


def people(application) -> None:
    database = application.extensions["noticeboard.db"]
    accounts.create(database, "ada", ADMIN_PW, "admin")
    accounts.create(database, "max", MEMBER_PW, "member")


def signed_in(application, username: str, password: str):
    client = application.test_client()
    answer = client.post(
        "/api/session", json={"username": username, "password": password}, headers=CSRF
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return client


def note_with_attachment(client) -> int:
    answer = client.post(
        "/api/notes",
        data={"body": "Minutes", "attachment": (io.BytesIO(b"minutes"), "m.txt")},
        headers=CSRF,
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["id"]


def can(client, note_id: int) -> dict[str, int]:
    """The status of each thing a person may try, on note ``note_id``."""
    stream = client.get("/events", buffered=False)
    stream.close()
    return {
        "list": client.get("/api/notes").status_code,
        "get": client.get(f"/api/notes/{note_id}").status_code,
        "download": client.get(f"/api/notes/{note_id}/attachment").status_code,
        "events": stream.status_code,
        "post": client.post("/api/notes", json={"body": "x"}, headers=CSRF).status_code,
        "users": client.get("/api/users").status_code,
    }


def test_every_route_is_classified_and_protected_operations_name_a_scheme(app):
    for rule in app.url_map.iter_rules():
        assert rule.endpoint in auth.PUBLIC or rule.endpoint in auth.NEEDS, rule.endpoint
    document = openapi.document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["session"] == {**schemes["session"], "in": "cookie", "name": auth.COOKIE_NAME}
    assert schemes["proxyUser"]["in"] == "header"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            endpoint = app.url_map.bind("x").match(
                re.sub(r"{\w+}", "1", path), method=method.upper()
            )[0]
            assert ("security" in operation) == (endpoint in auth.NEEDS), (method, path)


@SQLITE_ONLY
def test_open_mode_is_the_board_as_it_was_and_says_so(board):
    application = board()
    client = application.test_client()
    note = note_with_attachment(client)
    assert can(client, note) == {
        **dict.fromkeys(("list", "get", "download", "events"), 200),
        "post": 201,
        "users": 404,
    }
    assert client.get("/api/session").get_json() == {
        "mode": "open",
        "username": None,
        "role": None,
        "permissions": ["delete", "post", "read"],
    }
    page = client.get("/").get_data(as_text=True)
    assert "anyone who can reach it can read, post and delete" in page
    assert 'id="sign-in-form"' not in page
    sign_in = client.post("/api/session", json={"username": "a", "password": "b"}, headers=CSRF)
    assert sign_in.status_code == 404
    assert client.delete(f"/api/notes/{note}", headers=CSRF).status_code == 204


@SQLITE_ONLY
def test_accounts_mode_lets_each_role_do_what_it_may_and_nothing_else(board):
    application = board(AUTH_MODE="accounts")
    people(application)
    admin = signed_in(application, "ada", ADMIN_PW)
    member = signed_in(application, "MAX ", MEMBER_PW)  # names are case-insensitive
    note = note_with_attachment(member)
    anonymous = application.test_client()

    assert can(anonymous, note) == {
        **dict.fromkeys(("list", "get", "download", "events"), 401),
        "post": 401,
        "users": 401,
    }
    assert anonymous.delete(f"/api/notes/{note}", headers=CSRF).status_code == 401
    page = anonymous.get("/")
    assert page.status_code == 200
    assert 'id="sign-in-form"' in page.get_data(as_text=True)
    assert "Minutes" not in page.get_data(as_text=True)
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code == 200

    assert can(member, note) == {
        **dict.fromkeys(("list", "get", "download", "events"), 200),
        "post": 201,
        "users": 403,
    }
    assert member.delete(f"/api/notes/{note}", headers=CSRF).status_code == 403
    assert (
        member.post(
            "/api/users", json={"username": "eve", "password": "x" * 20}, headers=CSRF
        ).status_code
        == 403
    )
    member_page = member.get("/").get_data(as_text=True)
    assert "Minutes" in member_page and "Delete note" not in member_page

    assert can(admin, note)["users"] == 200
    assert admin.delete(f"/api/notes/{note}", headers=CSRF).status_code == 204
    created = admin.post(
        "/api/users",
        json={"username": "Bea", "password": "Brisk-harbour-0f-2026"},
        headers=CSRF,
    )
    assert created.status_code == 201 and created.get_json()["role"] == "member"
    assert (
        admin.post(
            "/api/users", json={"username": "bea", "password": "Other-pass-0f-it"}, headers=CSRF
        ).status_code
        == 409
    )
    assert (
        admin.post(
            "/api/users", json={"username": "cy", "password": "short"}, headers=CSRF
        ).get_json()["field"]
        == "password"
    )
    # A role change ends the member's sessions; the last admin stays an admin.
    assert admin.patch("/api/users/max", json={"role": "admin"}, headers=CSRF).status_code == 200
    assert member.get("/api/notes").status_code == 401
    assert admin.delete("/api/users/max", headers=CSRF).status_code == 204
    assert admin.patch("/api/users/ada", json={"role": "member"}, headers=CSRF).status_code == 409
    assert admin.delete("/api/users/ada", headers=CSRF).status_code == 409
    assert admin.delete("/api/users/nobody", headers=CSRF).status_code == 404
    names = [u["username"] for u in admin.get("/api/users").get_json()["users"]]
    assert names == ["ada", "bea"]


@SQLITE_ONLY
def test_sign_in_issues_a_new_cookie_with_safe_flags_and_sign_out_ends_it(board):
    application = board(AUTH_MODE="accounts", TRUSTED_PROXY_COUNT="1")
    people(application)
    client = application.test_client()
    # A valid anonymous session, planted before sign-in by someone who hopes to share it.
    serializer = application.session_interface.get_signing_serializer(application)
    planted = serializer.dumps({"sid": "planted-by-someone"})
    client.set_cookie(auth.COOKIE_NAME, planted)
    answer = client.post(
        "/api/session", json={"username": "ada", "password": ADMIN_PW}, headers=CSRF
    )
    assert answer.status_code == 200
    header = answer.headers["Set-Cookie"]
    value = parse_cookie(header)[auth.COOKIE_NAME]
    assert serializer.loads(value)["sid"] != "planted-by-someone"
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header
    stranger = application.test_client()
    stranger.set_cookie(auth.COOKIE_NAME, planted)
    assert stranger.get("/api/session").get_json()["username"] is None

    # HTTPS as a trusted proxy reports it: Secure; the same header from a client
    # without a trusted proxy in front is not believed.
    https = application.test_client().post(
        "/api/session",
        json={"username": "ada", "password": ADMIN_PW},
        headers={**CSRF, "X-Forwarded-Proto": "https"},
    )
    assert "Secure" in https.headers["Set-Cookie"]
    direct = (
        board(AUTH_MODE="accounts")
        .test_client()
        .post(
            "/api/session",
            json={"username": "ada", "password": ADMIN_PW},
            headers={**CSRF, "X-Forwarded-Proto": "https"},
        )
    )
    assert "Secure" not in direct.headers["Set-Cookie"]

    # CSRF: without X-Requested-With nothing changes, sign-in included.
    refused = application.test_client().post(
        "/api/session", json={"username": "ada", "password": ADMIN_PW}
    )
    assert refused.status_code == 403 and "Set-Cookie" not in refused.headers
    assert client.post("/api/notes", json={"body": "x"}).status_code == 403

    # Signing out ends the session everywhere: the copied cookie no longer works.
    copy = application.test_client()
    copy.set_cookie(auth.COOKIE_NAME, value)
    assert copy.get("/api/notes").status_code == 200
    assert client.delete("/api/session", headers=CSRF).status_code == 204
    assert copy.get("/api/notes").status_code == 401


@pytest.mark.parametrize("backend", ["mariadb"], indirect=True)
def test_accounts_and_throttling_hold_across_two_servers(board, shared_url, tmp_path):
    """Failures on one server count on the other, per account and per client address.

    Two Gunicorn masters on one database, as two hosts of the cluster are; the other
    backends count failures with the same queries (the test below runs on each).
    """
    application = board()
    people(application)
    chosen = {
        "AUTH_MODE": "accounts",
        "AUTH_THROTTLE_MAX_FAILURES": "3",
        "TRUSTED_PROXY_COUNT": "1",
    }
    servers = [Server(shared_url, tmp_path / f"s{i}", workers=1, **chosen).launch() for i in (1, 2)]
    try:
        one, two = (server.wait_ready().url for server in servers)

        def sign_in(base: str, name: str, password: str, address: str) -> httpx.Response:
            return httpx.post(
                base + "/api/session",
                json={"username": name, "password": password},
                headers={**CSRF, "X-Forwarded-For": address},
                timeout=WAIT,
            )

        # One account, from three addresses, on both servers.
        for base, address in ((one, "10.0.0.1"), (two, "10.0.0.2"), (one, "10.0.0.3")):
            assert sign_in(base, "max", "wrong-password", address).status_code == 401
        refused = sign_in(two, "max", MEMBER_PW, "10.0.0.4")
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 900
        # One address, trying three names on both servers; another address is not held up.
        for base, name in ((one, "u1"), (two, "u2"), (one, "ada")):
            assert sign_in(base, name, "wrong-password", "10.0.1.1").status_code == 401
        assert sign_in(two, "ada", ADMIN_PW, "10.0.1.1").status_code == 429
        assert sign_in(one, "ada", ADMIN_PW, "10.0.1.2").status_code == 200
    finally:
        for server in servers:
            server.terminate()


def test_success_clears_the_account_failures_and_accounts_live_in_each_database(board):
    application = board(AUTH_MODE="accounts", AUTH_THROTTLE_MAX_FAILURES="3")
    people(application)
    client = application.test_client()

    def attempt(password: str) -> int:
        return client.post(
            "/api/session", json={"username": "max", "password": password}, headers=CSRF
        ).status_code

    # Limit 3: the success wipes the first failure, so three more are answered 401
    # (without the wipe the third would already be refused), and only then 429.
    assert [attempt("wrong-1"), attempt(MEMBER_PW)] == [401, 200]
    assert [attempt("wrong-2"), attempt("wrong-3"), attempt("wrong-4")] == [401, 401, 401]
    assert attempt(MEMBER_PW) == 429
    database = application.extensions["noticeboard.db"]
    stored = accounts.find(database, "max")
    assert stored.password_hash.startswith("scrypt:") and MEMBER_PW not in stored.password_hash
    assert [u.username for u in accounts.list_users(database)] == ["ada", "max"]


@SQLITE_ONLY
def test_proxy_mode_believes_the_header_only_from_the_trusted_proxy(board):
    application = board(
        AUTH_MODE="proxy", AUTH_PROXY_TRUSTED="10.1.0.0/24", TRUSTED_PROXY_COUNT="1"
    )
    member = {"Remote-User": "max", "Remote-Groups": "staff"}
    admin = {"Remote-User": "ada", "Remote-Groups": "staff, noticeboard-admins"}

    def client(peer: str, headers: dict):
        c = application.test_client()
        c.environ_base.update(
            REMOTE_ADDR=peer,
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        )
        return c

    writer = client("10.1.0.7", member)
    note = note_with_attachment(writer)
    assert can(writer, note) == {
        **dict.fromkeys(("list", "get", "download", "events"), 200),
        "post": 201,
        "users": 404,
    }
    assert writer.delete(f"/api/notes/{note}", headers=CSRF).status_code == 403
    assert writer.get("/api/session").get_json()["username"] == "max"
    # From anywhere else the same headers are ignored, even with X-Forwarded-For naming
    # the proxy (which ProxyFix believes for the client address, not for the peer).
    for peer, extra in (("10.2.0.7", {}), ("10.2.0.7", {"X-Forwarded-For": "10.1.0.7"})):
        forger = client(peer, {**admin, **extra})
        assert can(forger, note) == {
            **dict.fromkeys(("list", "get", "download", "events"), 401),
            "post": 401,
            "users": 404,
        }
        assert forger.delete(f"/api/notes/{note}", headers=CSRF).status_code == 401
    assert client("10.1.0.8", admin).delete(f"/api/notes/{note}", headers=CSRF).status_code == 204

    gated = board(AUTH_MODE="proxy", AUTH_PROXY_TRUSTED="10.1.0.7", AUTH_PROXY_MEMBER_GROUP="board")
    outsider = gated.test_client()
    outsider.environ_base.update(REMOTE_ADDR="10.1.0.7", HTTP_REMOTE_USER="max")
    assert outsider.get("/api/notes").status_code == 403


def varies_by(response) -> set[str]:
    return {name.lower() for name in response.vary}


@SQLITE_ONLY
def test_answers_that_depend_on_who_asks_tell_caches_so(board):
    """A shared cache must key what it keeps by the cookie or the proxy's headers.

    Otherwise it could hand a signed-in reader's notes, page or attachment to the next,
    signed-out, visitor. Refusals vary too: the same URL answers 200 once signed in.
    """
    opened = board()
    note = note_with_attachment(opened.test_client())

    def answers(client) -> dict[str, object]:
        stream = client.get("/events", buffered=False)
        stream.close()
        return {
            "page": client.get("/"),
            "list": client.get("/api/notes"),
            "get": client.get(f"/api/notes/{note}"),
            "download": client.get(f"/api/notes/{note}/attachment"),
            "events": stream,
            "session": client.get("/api/session"),
        }

    def same_for_everyone(client) -> list:
        return [client.get(path) for path in ("/healthz", "/readyz", "/api/openapi.json")]

    accounts_board = board(AUTH_MODE="accounts")
    people(accounts_board)
    anonymous = accounts_board.test_client()
    for client in (anonymous, signed_in(accounts_board, "max", MEMBER_PW)):
        for name, response in answers(client).items():
            assert "cookie" in varies_by(response), (name, response.status_code)
    # (Signed in, every answer renews the cookie, and Flask adds Vary with Set-Cookie.)
    for response in same_for_everyone(anonymous):
        assert "cookie" not in varies_by(response), response.request.path

    proxy_board = board(
        AUTH_MODE="proxy",
        AUTH_PROXY_TRUSTED="10.1.0.7",
        AUTH_PROXY_USER_HEADER="X-Auth-User",
        AUTH_PROXY_GROUPS_HEADER="X-Auth-Groups",
    )
    via_proxy = proxy_board.test_client()
    via_proxy.environ_base.update(REMOTE_ADDR="10.1.0.7", HTTP_X_AUTH_USER="max")
    for client in (proxy_board.test_client(), via_proxy):
        for name, response in answers(client).items():
            assert {"x-auth-user", "x-auth-groups"} <= varies_by(response), name
        for response in same_for_everyone(client):
            assert not varies_by(response) & {"x-auth-user", "x-auth-groups", "cookie"}

    # Open mode answers everyone alike; nothing to key a cache by.
    for name, response in answers(opened.test_client()).items():
        assert not varies_by(response), (name, response.headers.get("Vary"))


@SQLITE_ONLY
def test_accounts_mode_without_an_admin_starts_and_says_how_to_make_one(fresh_url, tmp_path):
    """The default mode on a new board: it serves, and its page and log name the fix."""
    env = base_env(fresh_url, tmp_path / "data", AUTH_MODE="accounts")
    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert accounts.NO_ADMIN_WARNING in upgraded.stderr
    server = Server(fresh_url, tmp_path / "data", workers=2, AUTH_MODE="accounts")
    with server:
        page = httpx.get(server.url + "/", timeout=WAIT)
        assert page.status_code == 200
        assert 'id="no-admin"' in page.text and 'id="sign-in-form"' in page.text
        assert "noticeboard users create NAME --role admin" in page.text
        assert httpx.get(server.url + "/api/notes", timeout=WAIT).status_code == 401
        # Once per start, not once per worker or per visit.
        httpx.get(server.url + "/", timeout=WAIT)
        assert server.log().count(accounts.NO_ADMIN_WARNING) == 1, server.log()

        made = subprocess.run(
            [sys.executable, "-m", "noticeboard", "users", "create", "Root", "--role", "admin"],
            env=env,
            input="First-admin-pass-9\n",
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert made.returncode == 0, made.stderr
        page = httpx.get(server.url + "/", timeout=WAIT)
        assert 'id="no-admin"' not in page.text and 'id="sign-in-form"' in page.text
    assert accounts.NO_ADMIN_WARNING not in run_cli("db", "upgrade", env=env).stderr


@SQLITE_ONLY
def test_audit_lines_say_who_from_where_and_never_a_secret(board):
    application = board(AUTH_MODE="accounts", TRUSTED_PROXY_COUNT="1")
    people(application)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(f"{record.name}: {record.getMessage()}")
    logging.getLogger().addHandler(handler)
    try:
        client = application.test_client()
        client.environ_base["HTTP_X_FORWARDED_FOR"] = "192.0.2.9"
        wrong = client.post(
            "/api/session",
            json={"username": "ada", "password": "Wrong-pass-of-ada"},
            headers=CSRF,
        )
        assert wrong.status_code == 401
        answer = client.post(
            "/api/session", json={"username": "ada", "password": ADMIN_PW}, headers=CSRF
        )
        cookie = parse_cookie(answer.headers["Set-Cookie"])[auth.COOKIE_NAME]
        note = note_with_attachment(client)
        client.delete(f"/api/notes/{note}", headers=CSRF)
        client.post(
            "/api/users",
            json={"username": "bea", "password": "Brisk-harbour-0f-2026"},
            headers=CSRF,
        )
        client.delete("/api/session", headers=CSRF)
    finally:
        logging.getLogger().removeHandler(handler)
    audit = [line for line in lines if line.startswith("noticeboard.audit: ")]
    for expected in (
        "sign-in-failed by=ada from=192.0.2.9",
        "sign-in by=ada from=192.0.2.9",
        f"note-deleted by=ada from=192.0.2.9 note={note}",
        f"attachment-deleted by=ada from=192.0.2.9 note={note}",
        "account-created by=ada from=192.0.2.9 account=bea role=member",
        "sign-out by=ada from=192.0.2.9",
    ):
        assert any(expected in line for line in audit), (expected, audit)
    text = "\n".join(lines)
    for secret in (ADMIN_PW, "Wrong-pass-of-ada", "Brisk-harbour-0f-2026", cookie, "scrypt:"):
        assert secret not in text


@SQLITE_ONLY
def test_the_first_admin_comes_from_settings_and_accounts_from_the_cli(
    fresh_url, tmp_path, monkeypatch, capsys
):
    secret = tmp_path / "admin-password"
    secret.write_text("First-admin-pass-9\n")
    for name, value in base_env(fresh_url, tmp_path / "data").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ADMIN_USERNAME", "root")
    monkeypatch.setenv("ADMIN_PASSWORD_FILE", str(secret))

    def run(*args: str, password: str = "") -> tuple[int, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        status = cli.main(list(args))
        out, err = capsys.readouterr()
        assert not password or password not in out + err
        return status, out + err

    status, out = run("db", "upgrade")
    assert status == 0 and "first admin root created" in out, out
    assert "an admin exists already" in run("db", "upgrade")[1]
    monkeypatch.delenv("ADMIN_USERNAME")
    monkeypatch.delenv("ADMIN_PASSWORD_FILE")

    assert (
        run("users", "create", "Bea", "--role", "member", password="Brisk-harbour-0f-2026")[0] == 0
    )
    assert run("users", "create", "bea", password="Brisk-harbour-0f-2026")[0] == 7
    assert run("users", "set-password", "bea", password="too-short")[0] == 7
    assert run("users", "delete", "nobody")[0] == 6
    assert run("users", "delete", "root", "--json")[0] == 7  # the last admin
    status, out = run("users", "list", "--json")
    assert status == 0
    assert [(u["username"], u["role"]) for u in json.loads(out)["users"]] == [
        ("bea", "member"),
        ("root", "admin"),
    ]
    # What the CLI wrote is what the app signs in with.
    application = create_app(settings.load({**os.environ, "AUTH_MODE": "accounts"}))
    try:
        signed_in(application, "root", "First-admin-pass-9")
        signed_in(application, "bea", "Brisk-harbour-0f-2026")
    finally:
        application.extensions["noticeboard.db"].dispose()


@SQLITE_ONLY
def test_an_open_event_stream_ends_when_its_session_does(board, monkeypatch):
    from noticeboard import events

    monkeypatch.setattr(events, "RECHECK_SECONDS", 0.0)
    application = board(AUTH_MODE="accounts", SSE_HEARTBEAT_SECONDS="1")
    people(application)
    reader = signed_in(application, "max", MEMBER_PW)
    stream = reader.get("/events", buffered=False)
    chunks = iter(stream.response)
    assert next(chunks).startswith(b"retry:")
    assert next(chunks) == b": keep-alive\n\n"  # still signed in: the stream goes on
    assert reader.delete("/api/session", headers=CSRF).status_code == 204
    rest = [chunk for _, chunk in zip(range(4), chunks, strict=False)]
    stream.close()
    assert len(rest) < 3, rest

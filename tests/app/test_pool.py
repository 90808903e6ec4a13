"""How a worker uses its database connections.

A worker keeps the connections it has used, up to db.POOL_SIZE: POOL_SIZE connections
are checked out at once (as many requests in flight), given back, and checked out again;
the second round must open no connection. SQLAlchemy's default pool kept five and closed
the other ten, so the second round opened ten again; in a worker that is a connection
set-up on every busy moment.

A request takes one connection from the pool, whatever it reads and writes, and gives
it back before its answer is sent, also an event stream's. Each checkout costs a
liveness ping and a rollback; the session check and the query of one request each took
their own (bench/README.md, "API").
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from conftest import ensure_backend, new_database

from noticeboard import accounts, db, settings
from noticeboard.app import create_app

from helpers import CSRF, base_env


@pytest.mark.parametrize("backend_name", ["mariadb", "postgresql"])
def test_connections_in_use_stay_open_and_no_more_are_opened(backend_name, tmp_path):
    ensure_backend(backend_name)
    with new_database(backend_name, tmp_path) as url:
        engine = db.make_engine(url)
        opened = []
        sa.event.listen(engine, "connect", lambda *_: opened.append(1))
        try:
            for _ in range(2):
                held = [engine.connect() for _ in range(db.POOL_SIZE)]
                for conn in held:
                    conn.execute(sa.text("SELECT 1"))
                for conn in held:
                    conn.close()
            assert len(opened) == db.POOL_SIZE
        finally:
            engine.dispose()


def test_a_request_takes_one_connection_and_gives_it_back_before_answering(
    app, shared_url, tmp_path
):
    application = create_app(
        settings.load(base_env(shared_url, tmp_path / "data", AUTH_MODE="accounts"))
    )
    database = application.extensions["noticeboard.db"]
    try:
        accounts.create(database, "max", "Member-pass-0f-the-board", "member")
        client = application.test_client()
        signed = client.post(
            "/api/session",
            json={"username": "max", "password": "Member-pass-0f-the-board"},
            headers=CSRF,
        )
        assert signed.status_code == 200, signed.get_data(as_text=True)
        # Counted for this thread only: the event poller reads from a thread of its own.
        here, checkouts, held = threading.get_ident(), [], set()

        def out(dbapi_conn, *_):
            if threading.get_ident() == here:
                checkouts.append(1)
                held.add(id(dbapi_conn))

        sa.event.listen(database.engine, "checkout", out)
        sa.event.listen(database.engine, "checkin", lambda conn, *_: held.discard(id(conn)))

        def taken(method: str, path: str, **kwargs) -> int:
            checkouts.clear()
            answer = client.open(path, method=method, **kwargs)
            assert answer.status_code < 300, answer.get_data(as_text=True)
            assert not held
            return len(checkouts)

        # Who is asking, then the notes: one connection.
        assert taken("GET", "/api/notes") == 1
        # Who is asking, then the write with its event: one connection.
        assert taken("POST", "/api/notes", json={"body": "Fire drill"}, headers=CSRF) == 1
        # The write is seen by the next request.
        assert client.get("/api/notes").get_json()["notes"][0]["body"] == "Fire drill"

        # An open stream holds no connection between its reads.
        checkouts.clear()
        stream = client.get("/events", buffered=False)
        chunks = iter(stream.response)
        assert next(chunks).startswith(b"retry:")
        assert checkouts
        assert not held
        stream.close()
    finally:
        database.dispose()

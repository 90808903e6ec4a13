"""SIGTERM: in-flight requests finish, event streams end cleanly, the process exits 0."""

from __future__ import annotations

import json
import socket

import pytest
import sqlalchemy as sa

from noticeboard import migrate

from helpers import WAIT, Server, SseClient


@pytest.mark.parametrize("worker_class", ["eventlet", "gevent"])
def test_sigterm_finishes_requests_and_closes_streams(worker_class, tmp_path):
    url = f"sqlite:///{tmp_path / 'shutdown.db'}"
    migrate.upgrade(url)
    srv = Server(url, tmp_path / "data", worker_class=worker_class, workers=1).start()
    try:
        stream = SseClient(srv.url + "/events").start()

        body = json.dumps({"body": "sent across a shutdown"}).encode()
        half = len(body) // 2
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT)
        sock.sendall(
            b"POST /api/notes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nX-Requested-With: tests\r\n"
            b"Connection: close\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:half]
        )
        srv.proc.send_signal(15)
        assert stream.ended.wait(WAIT), "the event stream stayed open after SIGTERM"
        assert stream.error is None, f"the stream broke instead of ending: {stream.error!r}"

        sock.sendall(body[half:])
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.1 201"), reply[:200]

        assert srv.proc.wait(timeout=WAIT * 2) == 0
        assert "closed 1 event streams for shutdown" in srv.log()
    finally:
        srv.terminate()

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT body FROM notes")).scalars().all() == [
            "sent across a shutdown"
        ]
    engine.dispose()

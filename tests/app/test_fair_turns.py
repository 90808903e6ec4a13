"""One busy kept-alive connection must not keep a green worker from the others.

A client pipelines many requests on one connection, so that the worker always finds
that connection's next request already read; once the first of them is answered, a
second connection, idle in the same worker, sends one request. Gunicorn's access log,
written as each request is answered, gives the order: the second connection's request
must come after only a few more of the busy connection's, not after all of them (before
the worker gave every connection a turn per request, it came last, behind all 500, with
eventlet and with gevent). Order, not time, is asserted: the result does not depend on
how fast this machine is.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from helpers import Server

BURST = 500
# Answers the worker may give the busy connection while the quiet one's request travels.
SLACK = 25
OK = b"HTTP/1.1 200"


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: tests\r\n\r\n".encode()


def _read_answers(sock: socket.socket, count: int, data: bytes = b"") -> bytes:
    """DATA plus what arrives until it holds COUNT whole answers (/healthz's JSON)."""
    sock.settimeout(60)
    while data.count(OK) < count or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _answered(log: str) -> list[str]:
    """The tagged requests in the order the worker answered them."""
    return re.findall(r'"GET /healthz\?(\w+=\d+) HTTP/1.1" 200', log)


@pytest.mark.parametrize("worker_class", ["eventlet", "gevent"])
def test_a_busy_connection_does_not_starve_another(worker_class, tmp_path):
    database = f"sqlite:///{tmp_path / 'board.db'}"
    with Server(database, tmp_path / "data", worker_class, workers=1) as server:
        address = ("127.0.0.1", server.port)
        with socket.create_connection(address) as quiet, socket.create_connection(address) as busy:
            # Both connections are open and kept alive by their green threads.
            for sock, tag in ((quiet, "quiet=0"), (busy, "busy=0")):
                sock.sendall(_request(f"/healthz?{tag}"))
                _read_answers(sock, 1)
            busy.sendall(b"".join(_request(f"/healthz?busy={i}") for i in range(1, BURST + 1)))
            # The worker is in the middle of the burst when the other request arrives.
            seen = _read_answers(busy, 1)
            read_first = seen.count(OK)
            quiet.sendall(_request("/healthz?quiet=1"))
            assert OK in _read_answers(quiet, 1)
            assert _read_answers(busy, BURST, seen).count(OK) == BURST
        deadline = time.monotonic() + 30
        while len(_answered(server.log())) < BURST + 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        order = _answered(server.log())
    assert len(order) == BURST + 3, order
    ahead = sum(1 for tag in order[: order.index("quiet=1")] if tag.startswith("busy=")) - 1
    assert ahead <= read_first + SLACK, (
        f"{ahead} of the {BURST} pipelined requests were answered before the other "
        f"connection's, {read_first} of them before it was sent"
    )

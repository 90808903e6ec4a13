"""`docker stop` is a graceful stop: a request in flight finishes, event streams end."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest
from imagetools import admin_settings, host_port, new_secret_key, signed_in, wait_http

WAIT = 60


class EventStream(threading.Thread):
    """Reads /events until the server ends the stream; records how it ended."""

    def __init__(self, url: str, cookies: httpx.Cookies):
        super().__init__(daemon=True)
        self.url = url
        self.cookies = cookies
        self.connected = threading.Event()
        self.ended = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            timeout = httpx.Timeout(10, read=WAIT * 2)
            with httpx.stream("GET", self.url, cookies=self.cookies, timeout=timeout) as r:
                r.raise_for_status()
                for _ in r.iter_lines():
                    self.connected.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended.set()


@pytest.mark.parametrize("worker_class", ["eventlet", "gevent"])
def test_docker_stop_lets_a_slow_request_finish_and_ends_streams(containers, image, worker_class):
    container = containers.run(
        image,
        environment={
            "SECRET_KEY": new_secret_key(),
            "GUNICORN_WORKERS": "1",
            "GUNICORN_WORKER_CLASS": worker_class,
            **admin_settings(),
        },
        ports={"8000/tcp": ("127.0.0.1", None)},
        read_only=True,
        tmpfs={"/tmp": "size=64m"},
    )
    port = host_port(container)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/readyz")
    with signed_in(base) as client:
        cookies = client.cookies
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())

    stream = EventStream(f"{base}/events", cookies)
    stream.start()
    assert stream.connected.wait(WAIT), "the event stream did not open"

    # A slow client: half of the body now, the rest after the stop has begun.
    body = json.dumps({"body": "written while the container stops"}).encode()
    half = len(body) // 2
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(
        b"POST /api/notes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Requested-With: test\r\nConnection: close\r\n"
        + f"Cookie: {cookie}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body[:half]
    )

    stopper = threading.Thread(target=container.stop, kwargs={"timeout": WAIT}, daemon=True)
    stopper.start()
    # The stream ending is the sign that the worker received SIGTERM.
    assert stream.ended.wait(WAIT), "the event stream stayed open after docker stop"
    assert stream.error is None, f"the stream broke instead of ending: {stream.error!r}"

    sock.sendall(body[half:])
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 201"), reply[:300]

    stopper.join(WAIT * 2)
    container.reload()
    state = container.attrs["State"]
    logs = container.logs().decode(errors="replace")
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0, logs[-3000:]
    assert "closed 1 event streams for shutdown" in logs

"""A database outage: not ready and logged while it lasts, recovered without a restart."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import ensure_backend, new_database

from noticeboard import migrate

import services
from helpers import CSRF, WAIT, Server, SseClient, post_note


def wait_status(url: str, status: int, timeout: float = WAIT * 3) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=WAIT)
            if last.status_code == status:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} never answered {status}; last: {last!r}")


@pytest.mark.parametrize(
    ("backend_name", "worker_class"), [("mariadb", "gevent"), ("postgresql", "eventlet")]
)
def test_database_outage_and_recovery(backend_name, worker_class, tmp_path):
    ensure_backend(backend_name)
    name, port, _ = services.SERVICES[backend_name]
    with new_database(backend_name, tmp_path) as url:
        migrate.upgrade(url)
        with Server(url, tmp_path / "data", worker_class=worker_class, workers=1) as srv:
            assert httpx.get(srv.url + "/readyz", timeout=WAIT).status_code == 200
            stream = SseClient(srv.url + "/events").start()
            try:
                services.stop_service(name, port)

                down = wait_status(srv.url + "/readyz", 503)
                assert down.json()["reason"].startswith("database unreachable")
                refused = httpx.post(
                    srv.url + "/api/notes", json={"body": "lost?"}, headers=CSRF, timeout=WAIT
                )
                assert refused.status_code == 503
                assert "database is unavailable" in refused.json()["error"]
                assert httpx.get(srv.url + "/healthz", timeout=WAIT).status_code == 200
            finally:
                services.start_service(name, port)

            wait_status(srv.url + "/readyz", 200)
            note = post_note(srv.url, "after the outage")
            (event,) = stream.take(1)
            assert f'"id":{note["id"]}' in event.data
            assert stream.error is None

            log = srv.log()
            assert "not ready: database unreachable" in log
            assert "database error:" in log
            assert "event poller cannot read the database" in log
            assert "event poller reads the database again" in log

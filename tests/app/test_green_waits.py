"""Database waits under green threads: a request stuck on the database must yield.

Each case runs a one-worker Gunicorn. A transaction in the test holds the row every
writer locks, so a POST waits on the database; meanwhile the same worker must still
answer other requests. This fails if the driver waits for the server without
yielding to other green threads, as psycopg's C wait function would under eventlet.
"""

from __future__ import annotations

import threading

import httpx
import pytest
import sqlalchemy as sa
from conftest import ensure_backend, new_database

from noticeboard import migrate

from helpers import CSRF, WAIT, Server


def _lock_waiters(conn, backend: str) -> int:
    if backend == "postgresql":
        query = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    else:
        query = "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"
    return conn.execute(sa.text(query)).scalar()


@pytest.mark.parametrize("backend_name", ["mariadb", "postgresql"])
@pytest.mark.parametrize("worker_class", ["eventlet", "gevent"])
def test_a_request_waiting_on_the_database_does_not_block_its_worker(
    worker_class, backend_name, tmp_path
):
    ensure_backend(backend_name)
    with new_database(backend_name, tmp_path) as url:
        migrate.upgrade(url)
        engine = sa.create_engine(url)
        try:
            with Server(url, tmp_path / "data", worker_class=worker_class, workers=1) as srv:
                result: dict = {}
                with engine.connect() as holder, engine.connect() as observer:
                    holder.begin()
                    holder.execute(sa.text("SELECT id FROM event_lock WHERE id = 1 FOR UPDATE"))

                    def blocked_post():
                        result["response"] = httpx.post(
                            srv.url + "/api/notes",
                            json={"body": "waits"},
                            headers=CSRF,
                            timeout=WAIT * 2,
                        )

                    thread = threading.Thread(target=blocked_post)
                    thread.start()
                    for _ in range(int(WAIT * 10)):
                        observer.rollback()
                        if _lock_waiters(observer, backend_name):
                            break
                        thread.join(0.1)
                    else:
                        pytest.fail("the POST never waited on the event lock")
                    assert httpx.get(srv.url + "/healthz", timeout=WAIT).status_code == 200
                    assert httpx.get(srv.url + "/api/notes", timeout=WAIT).status_code == 200
                    assert "response" not in result
                    holder.rollback()
                thread.join(WAIT * 2)
                assert result["response"].status_code == 201
        finally:
            engine.dispose()

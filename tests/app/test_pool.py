"""A worker keeps the database connections it has used, up to db.POOL_SIZE.

POOL_SIZE connections are checked out at once (as many requests in flight), given
back, and checked out again: the second round must open no connection. SQLAlchemy's
default pool kept five and closed the other ten, so the second round opened ten again;
in a worker that is a connection set-up on every busy moment.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import ensure_backend, new_database

from noticeboard import db


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

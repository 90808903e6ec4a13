"""Alembic environment: the URL comes from noticeboard.settings, never from alembic.ini.

Callers inside the application pass the URL (and optionally an open connection) in
``config.attributes``; a bare ``alembic`` run falls back to ``DATABASE_URL``.
"""

from alembic import context

from noticeboard.db import make_engine
from noticeboard.models import Base

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    from noticeboard.settings import load

    return load().database_url


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


def _migrate(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table, rows included.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `noticeboard db upgrade`")
run()

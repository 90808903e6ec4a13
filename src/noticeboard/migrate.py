"""Alembic driven from the application's settings: upgrade, current, head, wait."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from noticeboard.db import make_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not an ini option: a password may hold "%", which
    # ConfigParser would try to interpolate.
    config.attributes["database_url"] = url
    return config


@functools.cache
def _script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("unused"))


@functools.cache
def head_revision() -> str:
    head = _script_directory().get_current_head()
    if head is None:
        raise RuntimeError("no Alembic revisions found")
    return head


def is_known_revision(revision: str) -> bool:
    """Whether this release ships ``revision``; a revision it lacks was written by a newer one."""
    try:
        return _script_directory().get_revision(revision) is not None
    except Exception:  # alembic raises CommandError/ResolutionError for unknown ids
        return False


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def describe_error(exc: BaseException) -> str:
    """One line about a database error, without the SQL or the password."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first}"[:300]


def wait_for_database(url: str, timeout: float, interval: float = 1.0) -> None:
    """Retry a trivial query until it works or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    engine = make_engine(url)
    try:
        attempt = 0
        while True:
            attempt += 1
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except Exception as exc:
                reason = describe_error(exc)
                if time.monotonic() + interval > deadline:
                    raise TimeoutError(
                        f"database did not answer within {timeout:g} s ({attempt} attempts); "
                        f"last error: {reason}; check DATABASE_URL and that the server runs, "
                        "or raise DB_WAIT_TIMEOUT"
                    ) from exc
                log.info("waiting for the database (attempt %d): %s", attempt, reason)
                time.sleep(interval)
    finally:
        engine.dispose()

"""Alembic driven from the application's settings: upgrade, current, head, plan, wait."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class SchemaPlan:
    """Where a database's schema stands against this release, and what ``upgrade`` would do.

    ``state`` is ``head`` (nothing to do), ``empty`` (no revision yet: a new database),
    ``behind`` (revisions to apply) or ``ahead`` (a revision this release does not ship,
    written by a newer one; nothing can be planned). ``pending`` lists the revisions an
    upgrade applies, oldest first; a revision is ``contracting`` when its module says it
    removes or renames what the release before it reads.
    """

    current: str | None
    head: str
    state: str
    pending: list[dict[str, object]] = field(default_factory=list)

    @property
    def contracting(self) -> list[str]:
        return [str(step["revision"]) for step in self.pending if step["contracting"]]

    def as_dict(self) -> dict[str, object]:
        return {
            "current": self.current,
            "head": self.head,
            "state": self.state,
            "at_head": self.state == "head",
            "migrate": bool(self.pending),
            "pending": self.pending,
            "contracting": self.contracting,
            # The release running now keeps working on the upgraded schema.
            "backward_compatible": not self.contracting,
        }


def schema_plan(current: str | None) -> SchemaPlan:
    """The plan from the revision ``current`` (``None``: no schema yet) to this release's head."""
    head = head_revision()
    if current is not None and not is_known_revision(current):
        return SchemaPlan(current, head, "ahead")
    pending = [
        {"revision": step.revision, "contracting": bool(getattr(step.module, "contracting", False))}
        for step in _script_directory().iterate_revisions("head", current)
    ]
    pending.reverse()
    state = "empty" if current is None else "behind" if pending else "head"
    return SchemaPlan(current, head, state, pending)


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

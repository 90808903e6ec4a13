"""Engine and session handling shared by the web app, the CLI and the migrations.

The same code serves SQLite, MariaDB (PyMySQL) and PostgreSQL (psycopg 3). Under the
green-thread workers every driver must wait for the network cooperatively:

* PyMySQL is pure Python and uses the patched ``socket`` module.
* psycopg 3 drives libpq in non-blocking mode and waits for the socket with a
  "wait function". Its default, written in C, blocks the whole worker. psycopg
  notices gevent's patching by itself and switches to ``select``; it does not
  notice eventlet's, so ``prefer_green_psycopg()`` selects ``wait_select`` (which
  calls the patched ``select.select``) before psycopg is imported. A remaining
  limit: libpq resolves host names with a blocking ``getaddrinfo`` while it
  connects; the pool keeps connections open, so this happens rarely.
* SQLite calls do not yield at all. Readers never block under WAL, and writers of
  one process take a green lock in ``Database.writing()`` so that a transaction
  left open by one green thread cannot stall another in SQLite's busy handler.

Each engine for a database server keeps up to ``POOL_SIZE`` connections open and opens
no more: a request beyond them waits for one to come free. SQLAlchemy's default (5 kept,
10 more opened and closed again as needed) made a worker with more than five requests
in flight connect and disconnect all the time, which put a connection set-up, and for
PostgreSQL a blocking host-name lookup, in the way of many requests (bench/README.md,
"API").
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from noticeboard.maintenance import Maintenance
from noticeboard.models import Event, EventLock

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5


def eventlet_patched() -> bool:
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher and patcher.is_monkey_patched("select"))


def prefer_green_psycopg() -> None:
    """Make psycopg wait through the patched ``select`` when eventlet is in charge."""
    if not eventlet_patched():
        return
    if "psycopg" not in sys.modules:
        os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
        return
    waiting = sys.modules.get("psycopg.waiting")
    if waiting is not None and waiting.wait is getattr(waiting, "wait_c", None):
        log.warning(
            "psycopg was imported before eventlet patching; its queries will block the "
            "worker. Set PSYCOPG_WAIT_FUNC=wait_select in the environment."
        )


#: Connections one process keeps open to a database server, at most (see above). Two
#: app hosts of two workers each hold up to 64, inside MariaDB's and PostgreSQL's
#: default limits (151 and 100).
POOL_SIZE = 16


class _RequestSession:
    """The session of one web request, opened when it first needs the database."""

    __slots__ = ("database", "session")

    def __init__(self, database: Database):
        self.database = database
        self.session: Session | None = None

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


# Per green thread: gevent and eventlet run each connection in its own greenlet, and
# every greenlet has its own context.
_request_session: ContextVar[_RequestSession | None] = ContextVar(
    "noticeboard_request_session", default=None
)


def make_engine(url: str) -> Engine:
    """An engine with the options each database needs for this application."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        prefer_green_psycopg()
        return create_engine(
            url,
            pool_size=POOL_SIZE,
            max_overflow=0,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
        )
    return create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
        # REPEATABLE READ, MariaDB's default, would hide new events from a long-lived
        # connection; every other database reads committed rows by default.
        isolation_level="READ COMMITTED",
        connect_args={"connect_timeout": CONNECT_TIMEOUT},
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """The engine, a session factory and the rule for write transactions."""

    def __init__(self, url: str, maintenance: Maintenance | None = None):
        self.url = url
        self.maintenance = maintenance
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Created here, inside the worker after monkey-patching, so it is a green lock.
        self._sqlite_write_lock = threading.Lock() if url.startswith("sqlite") else None
        #: Called after each committed write (the app wakes its event poller with it).
        self.after_write: Callable[[], None] | None = None

    def begin_request(self) -> None:
        """From here until ``end_request``, the request's reads and writes share a session.

        A request that checks who is asking, reads notes or writes one then takes one
        connection from the pool, with one liveness ping, instead of one of each per
        statement group (bench/README.md, "API"), and never holds two, so a full pool
        cannot stall on itself. A write continues the request's read transaction: under
        READ COMMITTED (every database here) it holds no locks. ``end_request`` must
        come before a long-lived response starts (Flask's teardown does), or a stream
        would keep a connection and an open transaction.
        """
        _request_session.set(_RequestSession(self))

    def end_request(self) -> None:
        shared = _request_session.get()
        _request_session.set(None)
        if shared is not None:
            shared.close()

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """The request's shared session when there is one, else a new one."""
        shared = _request_session.get()
        if shared is None or shared.database is not self:
            with self.sessions() as session:
                yield session
            return
        if shared.session is None:
            shared.session = self.sessions()
        try:
            yield shared.session
        except BaseException:
            # Rolled back, and a failed statement leaves nothing usable: start anew.
            shared.close()
            raise

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        with self._session() as session:
            yield session

    @contextlib.contextmanager
    def writing(self, lock_last: bool = False) -> Iterator[Session]:
        """A transaction that holds the event lock, committed on success.

        In maintenance mode it raises ``ReadOnlyError``; the last look is taken after
        the flush, while the transaction holds the database's write lock (see
        ``noticeboard.maintenance``). ``lock_last`` takes that lock only after the
        caller's statements, for a write that sends a lot of data and needs no event
        id (an attachment's bytes).
        """
        lock = self._sqlite_write_lock or contextlib.nullcontext()
        take_event_lock = select(EventLock.id).where(EventLock.id == 1).with_for_update()
        with lock, self._session() as session:
            if self.maintenance:
                self.maintenance.refuse_writes()
            if not lock_last:
                session.execute(take_event_lock)
            yield session
            if lock_last:
                session.flush()
                session.execute(take_event_lock)
            if self.maintenance:
                session.flush()
                self.maintenance.refuse_writes()
            session.commit()
        if self.after_write is not None:
            self.after_write()

    def max_event_id(self) -> int:
        with self.reading() as session:
            return session.scalar(select(func.max(Event.id))) or 0

    def events_after(self, last_id: int, limit: int) -> list[Event]:
        with self.reading() as session:
            rows = session.scalars(
                select(Event).where(Event.id > last_id).order_by(Event.id).limit(limit)
            )
            return list(rows)

    def dispose(self) -> None:
        self.engine.dispose()

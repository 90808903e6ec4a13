"""Server-Sent Events: every change reaches every open page, on every node.

Design
------
Every write (note created or deleted) inserts a row into the ``events`` table in the
same transaction. The row's auto-incremented id is the SSE event id. Writers first
lock the single ``event_lock`` row, so ids become visible in increasing order and a
reader that has seen id N will never later find a smaller one.

Each worker process runs one poller, a green thread started with the first
subscriber and ended when the last one leaves. Every ``SSE_POLL_SECONDS`` it reads
the rows after the last id it saw and puts them on the queue of each of that
worker's subscribers. A write committed by the same worker wakes its poller at once,
so a change reaches that worker's pages without waiting for the next poll; other
workers and nodes see it at theirs. So every worker of every node sees every event
through the shared database alone, with no broker to run, and the database serves one
small indexed query per worker per poll instead of one per client. While writes keep
coming, the poller reads at most once every ``FAN_OUT_GAP`` (0.1 s) and hands each
stream everything since at once, so a busy board costs each stream one wake-up and one
write per fan-out, not per event.

A client connecting with ``Last-Event-ID: N`` (or ``?last_event_id=N``) is first
registered as a subscriber and then reads the rows after N from the database
itself; afterwards it takes events from its queue, skipping ids it already sent.
Registering before reading is what leaves no gap, and skipping is what leaves no
duplicate. A client without an id starts at the newest event.

Idle streams get a comment line every ``SSE_HEARTBEAT_SECONDS`` so that proxies keep
them open. A subscriber that falls too far behind is dropped; its stream ends and
the browser reconnects with its last id, catching up from the table. When the
worker is told to stop (SIGTERM), the poller ends every stream, so browsers
reconnect, through the load balancer, to a worker that is still serving.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, request

from noticeboard import auth
from noticeboard.db import Database
from noticeboard.errors import ApiError, whole_number
from noticeboard.migrate import describe_error
from noticeboard.openapi import EVENT_ID_DIGITS

log = logging.getLogger(__name__)

bp = Blueprint("events", __name__)

BATCH = 500
QUEUE_SIZE = 1000
RECONNECT_MS = 2000
#: Seconds between two fan-outs while writes keep coming (see ``Broker._run``).
FAN_OUT_GAP = 0.1
#: How often an open stream asks whether its session still stands (AUTH_MODE=accounts).
RECHECK_SECONDS = 30.0


def _always_alive() -> bool:
    return True


#: Replaced by the Gunicorn config with a check of ``worker.alive``.
worker_alive: Callable[[], bool] = _always_alive


@dataclass(frozen=True)
class Message:
    id: int
    kind: str
    data: str

    @functools.cached_property
    def text(self) -> str:
        """The event as the stream sends it: made once, however many streams send it."""
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data}\n\n"


_CLOSE = object()


@dataclass(eq=False)
class Subscriber:
    queue: queue.Queue = field(default_factory=lambda: queue.Queue(QUEUE_SIZE))
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(_CLOSE)


class Broker:
    """One per application (so one per worker): the poller and its subscribers."""

    def __init__(self, db: Database, poll_seconds: float):
        self.db = db
        self.poll_seconds = poll_seconds
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self._wake = threading.Event()
        self.stopping = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        with self._lock:
            if self.stopping:
                sub.close()
                return sub
            self._subscribers.add(sub)
            if self._poller is None:
                # A new poller starts at the newest id as of now, before this subscriber
                # reads its backlog: started later, it would begin past events that
                # were committed after the backlog was read, and never deliver them.
                self._poller = threading.Thread(
                    target=self._run,
                    args=(self._newest_id(),),
                    name="noticeboard-sse-poller",
                    daemon=True,
                )
                self._poller.start()
        return sub

    def _newest_id(self) -> int | None:
        try:
            return self.db.max_event_id()
        except Exception:  # the poller reads it itself and reports the failure
            return None

    def nudge(self) -> None:
        """A write was committed here: poll now rather than at the end of the wait."""
        self._wake.set()

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def close_all(self) -> None:
        with self._lock:
            self.stopping = True
            subs, self._subscribers = self._subscribers, set()
        for sub in subs:
            sub.close()
        log.info("closed %d event streams for shutdown", len(subs))

    def _run(self, last_id: int | None) -> None:
        failing = False
        while True:
            if not worker_alive():
                self.close_all()
                break
            with self._lock:
                if not self._subscribers:
                    self._poller = None
                    return
            rows = []
            # Cleared before reading: a write committed after this point sets it again,
            # and the next wait returns at once.
            self._wake.clear()
            try:
                if last_id is None:
                    last_id = self.db.max_event_id()
                rows = self.db.events_after(last_id, BATCH)
                if failing:
                    log.info("event poller reads the database again")
                    failing = False
            except Exception as exc:
                if not failing:
                    log.error("event poller cannot read the database: %s", describe_error(exc))
                failing = True
            if rows:
                self._fan_out([Message(row.id, row.kind, row.payload) for row in rows])
                fanned_out = time.monotonic()
                last_id = rows[-1].id
            if len(rows) < BATCH:
                self._wake.wait(self.poll_seconds)
                if rows:
                    # A burst of writes: what they commit within FAN_OUT_GAP of this fan-out
                    # goes out together, so each stream wakes once for all of it. Counted
                    # from the fan-out, not from the read before it, whose time varies with
                    # the database's load. The first write after a quiet spell still goes
                    # out at once.
                    time.sleep(max(0.0, fanned_out + FAN_OUT_GAP - time.monotonic()))
        with self._lock:
            self._poller = None

    def _fan_out(self, messages: list[Message]) -> None:
        with self._lock:
            subs = list(self._subscribers)
        behind = []
        for sub in subs:
            try:
                for message in messages:
                    sub.queue.put_nowait(message)
            except queue.Full:
                behind.append(sub)
        if behind:
            # Their streams end once they have sent what is queued; each browser then
            # reconnects with its last id and catches up from the table. One lock and
            # one line for all of them, however many fell behind at once.
            with self._lock:
                self._subscribers.difference_update(behind)
            for sub in behind:
                sub.closed = True
            log.warning(
                "dropping %d subscriber(s) that fell %d events behind", len(behind), QUEUE_SIZE
            )


def broker() -> Broker:
    return current_app.extensions["noticeboard.broker"]


def _requested_last_id() -> int | None:
    text = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if text is None or text == "":
        return None
    number = whole_number(text, 0, 10**EVENT_ID_DIGITS - 1)
    if number is None:
        raise ApiError(400, "Last-Event-ID must be a non-negative whole number", "Last-Event-ID")
    return number


@bp.get("/events")
def events() -> Response:
    b = broker()
    last_id = _requested_last_id()
    heartbeat = current_app.config["SSE_HEARTBEAT_SECONDS"]
    allowed = auth.still_signed_in()
    sub = b.subscribe()
    try:
        if last_id is None:
            last_id = b.db.max_event_id()
        first = b.db.events_after(last_id, BATCH)
    except Exception:
        b.unsubscribe(sub)
        raise
    response = Response(
        _stream(b, sub, last_id, first, heartbeat, allowed), mimetype="text/event-stream"
    )
    response.headers["Cache-Control"] = "no-cache"
    # nginx buffers responses unless told otherwise; SSE must pass through at once.
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _stream(
    b: Broker,
    sub: Subscriber,
    last_id: int,
    first: list,
    heartbeat: float,
    allowed: Callable[[], bool] | None = None,
) -> Iterator[str]:
    recheck = time.monotonic() + RECHECK_SECONDS
    try:
        yield f"retry: {RECONNECT_MS}\n\n"
        backlog = first
        while backlog:
            yield "".join(Message(row.id, row.kind, row.payload).text for row in backlog)
            last_id = backlog[-1].id
            if len(backlog) < BATCH:
                break
            backlog = b.db.events_after(last_id, BATCH)
        while True:
            if sub.closed and sub.queue.empty():
                return
            if allowed is not None and time.monotonic() >= recheck:
                # Signed out (or changed) since the stream began: end it; the browser's
                # reconnect is then refused like any signed-out request.
                if not allowed():
                    return
                recheck = time.monotonic() + RECHECK_SECONDS
            try:
                item = sub.queue.get(timeout=heartbeat)
            except queue.Empty:
                yield ": keep-alive\n\n"
                continue
            # Whatever else is queued goes out in the same write: a stream that fell
            # behind catches up with one send instead of one per event.
            batch = []
            while item is not _CLOSE:
                if item.id > last_id:
                    batch.append(item.text)
                    last_id = item.id
                try:
                    item = sub.queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yield "".join(batch)
            if item is _CLOSE:
                return
    finally:
        b.unsubscribe(sub)


def payload(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

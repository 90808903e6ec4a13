"""Gunicorn configuration, loaded as ``python:noticeboard.gunicorn_conf``.

Everything comes from ``noticeboard.settings`` so that one set of environment variables
configures both the server and the application. Only the standard library and the
settings module are imported here: this runs in the master before workers fork and
patch themselves.

Shutdown: on SIGTERM the master asks each worker to stop; a worker stops accepting,
lets in-flight requests finish for up to ``GUNICORN_GRACEFUL_TIMEOUT`` seconds and
exits. Event streams never finish by themselves, so ``post_worker_init`` hands the
event poller a look at ``worker.alive``: once it turns false the poller ends every
stream cleanly and the browsers reconnect elsewhere.

Fair turns: a green worker serves each connection in its own green thread, and
Gunicorn's keep-alive loop reads that connection's next request as soon as it has
answered the last one. A read that finds the request already there does not pass
through the hub, and neither does a query on SQLite (the database is in the process),
so a busy client on a kept-alive connection could be served hundreds of times in a row
while every other connection waited, for seconds (bench/README.md, "API"). Before each
request ``pre_request`` therefore gives the other green threads their turn.
"""

from __future__ import annotations

from noticeboard import settings as _settings

_config = _settings.load()

if _config.gunicorn_worker_class == "eventlet":
    import os as _os

    # psycopg does not detect eventlet's patching; make it wait through select().
    _os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

bind = [_config.gunicorn_bind]
workers = _config.gunicorn_workers
worker_class = _config.gunicorn_worker_class
worker_connections = _config.gunicorn_worker_connections
timeout = _config.gunicorn_timeout
graceful_timeout = _config.gunicorn_graceful_timeout
keepalive = 5
loglevel = _config.log_level.lower()
accesslog = "-"
errorlog = "-"
# The app resolves X-Forwarded-* itself with ProxyFix and TRUSTED_PROXY_COUNT;
# Gunicorn must not decide the scheme from headers on its own.
secure_scheme_headers: dict[str, str] = {}
# Each worker loads the app after its monkey-patching; never import it in the master.
preload_app = False
proc_name = "noticeboard"


# The worker's way to let its other green threads run; None for a sync worker.
_take_turns = None


def _turn_taker(worker):
    """A function that sends the calling green thread to the back of the hub's queue,
    behind every connection whose request has arrived; None for a worker without a hub.

    eventlet's ``sleep(0)`` passes through the hub, which looks at the sockets. gevent's
    runs queued callbacks only, up to 50 before the loop polls again, so a busy
    connection would still go 50 times in a row; the shortest timer waits for the loop's
    next turn, which polls first (tests/app/test_fair_turns.py tells the two apart)."""
    modules = {cls.__module__ for cls in type(worker).__mro__}
    if "gunicorn.workers.geventlet" in modules:
        import eventlet

        return lambda: eventlet.sleep(0)
    if "gunicorn.workers.ggevent" in modules:
        import gevent

        return lambda: gevent.sleep(0.000001)
    return None


def post_worker_init(worker) -> None:
    from noticeboard import events

    global _take_turns
    events.worker_alive = lambda: worker.alive
    _take_turns = _turn_taker(worker)


def pre_request(worker, req) -> None:
    # What Gunicorn's own hook does, then the turn of every other connection.
    worker.log.debug("%s %s", req.method, req.path)
    if _take_turns is not None:
        _take_turns()

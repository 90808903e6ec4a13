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


def post_worker_init(worker) -> None:
    from noticeboard import events

    events.worker_alive = lambda: worker.alive

"""The application factory.

Cross-site request forgery: the app keeps no session or cookie that grants
anything, and every state-changing request under ``/api/`` must carry the header
``X-Requested-With`` (the page's script sends it). A browser only adds a custom
header to a cross-origin request after a CORS preflight, which this app never
approves, so a form or script on another site cannot create or delete notes. A
request whose ``Origin`` names another host is refused as well.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from noticeboard import errors, settings
from noticeboard.db import Database
from noticeboard.errors import ApiError
from noticeboard.events import Broker
from noticeboard.storage import Storage

log = logging.getLogger(__name__)

CSRF_HEADER = "X-Requested-With"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def create_app(config: settings.Settings | None = None) -> Flask:
    config = config or settings.load()
    settings.configure_logging(config.log_level)
    if config.secret_key_generated:
        log.warning("SECRET_KEY is not set; using a random key for this development process")

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        MAX_UPLOAD_MB=config.max_upload_mb,
        SSE_HEARTBEAT_SECONDS=config.sse_heartbeat_seconds,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=config.env == settings.PRODUCTION,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.extensions["noticeboard.settings"] = config

    storage = Storage(config.upload_dir)
    storage.check_writable()
    database = Database(config.database_url)
    app.extensions["noticeboard.storage"] = storage
    app.extensions["noticeboard.db"] = database
    app.extensions["noticeboard.broker"] = Broker(database, config.sse_poll_seconds)

    if config.trusted_proxy_count:
        n = config.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)

    from noticeboard import api, events, web

    app.register_blueprint(api.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(web.bp)
    errors.register(app)
    app.before_request(_refuse_cross_site)
    app.after_request(_security_headers)
    return app


def _refuse_cross_site() -> None:
    if request.method in SAFE_METHODS or not request.path.startswith("/api/"):
        return
    if not request.headers.get(CSRF_HEADER):
        raise ApiError(
            403, f"state-changing API requests need the {CSRF_HEADER} header", CSRF_HEADER
        )
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise ApiError(403, "cross-origin requests are not accepted", "Origin")


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response

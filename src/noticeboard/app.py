"""The application factory.

Cross-site request forgery: with ``AUTH_MODE=accounts`` a session cookie grants what
its account may do, so the cookie alone must never be enough to change anything. Every
state-changing request under ``/api/``, signing in included, must carry the header
``X-Requested-With`` (the page's script sends it). A browser only adds a custom
header to a cross-origin request after a CORS preflight, which this app never
approves, so a form or script on another site cannot create or delete notes. A
request whose ``Origin`` names another host is refused as well.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Request, current_app, jsonify, request
from markupsafe import escape
from werkzeug.middleware.proxy_fix import ProxyFix

from noticeboard import auth, errors, settings
from noticeboard.db import Database
from noticeboard.errors import ApiError
from noticeboard.events import Broker
from noticeboard.maintenance import Maintenance, ReadOnlyError
from noticeboard.storage import DatabaseStorage, Storage

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


class StrictFormRequest(Request):
    """A request whose form, if it cannot be parsed whole, raises ``ValueError``.

    Werkzeug's default swallows the error and hands the view an empty form, which the
    API then refused with "body is required" to a client that had sent one; raising
    lets it say what it could not read.
    """

    def make_form_data_parser(self):
        parser = super().make_form_data_parser()
        parser.silent = False
        return parser


def create_app(config: settings.Settings | None = None) -> Flask:
    config = config or settings.load()
    settings.configure_logging(config.log_level)
    if config.secret_key_generated:
        log.warning("SECRET_KEY is not set; using a random key for this development process")

    app = Flask(__name__)
    app.request_class = StrictFormRequest
    # An empty path segment (a note id left out) is a 404 naming the path, not a redirect
    # to another URL that the client did not ask for.
    app.url_map.merge_slashes = False
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        MAX_UPLOAD_MB=config.max_upload_mb,
        SSE_HEARTBEAT_SECONDS=config.sse_heartbeat_seconds,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.extensions["noticeboard.settings"] = config

    files = Storage(config.upload_dir)
    maintenance = Maintenance(config.maintenance_file)
    database = Database(config.database_url, maintenance)
    if config.attachments_in_database:
        # UPLOAD_DIR is only read (files from before the switch), so it may be read-only.
        storage = DatabaseStorage(database, files, config.max_upload_bytes)
    else:
        files.check_writable()
        storage = files
    app.extensions["noticeboard.maintenance"] = maintenance
    app.extensions["noticeboard.storage"] = storage
    app.extensions["noticeboard.db"] = database
    app.extensions["noticeboard.broker"] = broker = Broker(database, config.sse_poll_seconds)
    database.after_write = broker.nudge
    app.before_request(database.begin_request)
    app.teardown_request(lambda _exc: database.end_request())

    if config.trusted_proxy_count:
        n = config.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)

    from noticeboard import api, events, web

    app.register_blueprint(api.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(web.bp)
    auth.init_app(app)
    errors.register(app)
    app.register_error_handler(ReadOnlyError, _read_only)
    app.before_request(_refuse_cross_site)
    app.before_request(auth.guard)
    app.before_request(_refuse_writes_in_maintenance)
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
    if not origin:
        return
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # such as an unclosed "[" of an IPv6 address
        netloc = None
    if netloc != request.host:
        raise ApiError(403, "cross-origin requests are not accepted", "Origin")


def _refuse_writes_in_maintenance() -> None:
    """Before the body is read; ``Database.writing`` looks again before committing."""
    if request.method not in SAFE_METHODS:
        current_app.extensions["noticeboard.maintenance"].refuse_writes()


def _read_only(exc: ReadOnlyError):
    accept = request.accept_mimetypes
    if (
        accept.best_match(["application/json", "text/html"]) == "text/html"
        and accept["text/html"] > accept["application/json"]
    ):
        response = current_app.response_class(
            "<!doctype html><title>Read-only for maintenance</title>"
            f"<h1>Read-only for maintenance</h1><p>{escape(exc.args[0])}.</p>",
            mimetype="text/html",
        )
    else:
        response = jsonify({"error": exc.args[0], "maintenance": True})
    response.status_code = 503
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _security_headers(response):
    # No Strict-Transport-Security here: whether browsers must refuse plain HTTP for a
    # year is the front door's decision, made once its certificate is trusted
    # (noticeboard_lb_hsts, docs/https.rst), not something every HTTPS answer imposes.
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response

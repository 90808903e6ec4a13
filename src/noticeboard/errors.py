"""Errors as JSON: a status, a message a person can act on and, for bad input, the field."""

from __future__ import annotations

import logging
import re

from flask import Flask, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from noticeboard.migrate import describe_error

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        #: Seconds for the ``Retry-After`` header of a refusal that ends by itself (429).
        self.retry_after = retry_after


#: ASCII digits only: ``str.isdigit`` also accepts "²", which ``int`` refuses, and
#: ``int`` refuses more than 4300 digits; twenty cover every id any database holds.
_WHOLE_NUMBER = re.compile(r"\A[0-9]{1,20}\Z")


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` as a whole number from ``low`` to ``high``, or None for anything else."""
    if not _WHOLE_NUMBER.match(text):
        return None
    number = int(text)
    return number if low <= number <= high else None


def _body(status: int, message: str, field: str | None = None):
    data: dict = {"error": message}
    if field:
        data["field"] = field
    return jsonify(data), status


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        body, status = _body(exc.status, exc.message, exc.field)
        if exc.retry_after is not None:
            body.headers["Retry-After"] = str(exc.retry_after)
        return body, status

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        limit = app.config["MAX_UPLOAD_MB"]
        field = "attachment" if request.mimetype == "multipart/form-data" else "body"
        return _body(413, f"the request is larger than the limit of {limit} MiB", field)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Raised by Werkzeug, not by a view: name what it refused (path, method, Range).
        field = {404: "path", 405: "method", 416: "Range"}.get(exc.code or 500)
        response = exc.get_response()
        body, status = _body(exc.code or 500, exc.description or exc.name, field)
        # Keep what Werkzeug adds for the client, such as Allow on a 405.
        for name in ("Allow", "Content-Range"):
            if name in response.headers:
                body.headers[name] = response.headers[name]
        return body, status

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        log.error("database error: %s", describe_error(exc))
        return _body(503, "the database is unavailable; try again shortly")

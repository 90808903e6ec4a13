"""Errors as JSON: a status, a message a person can act on and, for bad input, the field."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from noticeboard.migrate import describe_error

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _body(status: int, message: str, field: str | None = None):
    data: dict = {"error": message}
    if field:
        data["field"] = field
    return jsonify(data), status


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return _body(exc.status, exc.message, exc.field)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        limit = app.config["MAX_UPLOAD_MB"]
        return _body(413, f"the request is larger than the limit of {limit} MiB", "attachment")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _body(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        log.error("database error: %s", describe_error(exc))
        return _body(503, "the database is unavailable; try again shortly")

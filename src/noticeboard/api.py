"""The JSON API under ``/api/``: notes and their attachments."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import FileStorage, MultiDict

from noticeboard import auth, openapi
from noticeboard.accounts import audit_line
from noticeboard.db import Database
from noticeboard.errors import ApiError, whole_number
from noticeboard.events import payload
from noticeboard.maintenance import ReadOnlyError
from noticeboard.models import BODY_MAX, NOTE_ID_MAX, TITLE_MAX, Event, Note, utcnow
from noticeboard.openapi import ATTACHMENT_FIELD, BEFORE_MAX, NOTE_FIELDS, PAGE_DEFAULT, PAGE_MAX
from noticeboard.storage import (
    AttachmentTooLargeError,
    DatabaseStorage,
    Storage,
    content_disposition,
    sanitise_filename,
)

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def db() -> Database:
    return current_app.extensions["noticeboard.db"]


def storage() -> Storage | DatabaseStorage:
    return current_app.extensions["noticeboard.storage"]


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    number = whole_number(text, low, high)
    if number is None:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}", name)
    return number


def _note_id(text: str) -> int:
    """The id in a note's URL; anything that is not one names no note."""
    number = whole_number(text, 1, NOTE_ID_MAX)
    if number is None:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ApiError(404, f"note {shown} does not exist (ids are 1 to {NOTE_ID_MAX})", "id")
    return number


def _storable(value: str) -> bool:
    """True unless a database would refuse the text: NUL (PostgreSQL) or lone surrogates."""
    if "\0" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_field(data, name: str, limit: int, required: bool) -> str | None:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise ApiError(400, f"{name} is required", name)
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string", name)
    if not _storable(value):
        raise ApiError(
            400, f"{name} must not contain NUL characters or unpaired surrogates (\\ud800)", name
        )
    value = value.strip()
    if not value:
        raise ApiError(400, f"{name} must not be empty", name)
    if len(value) > limit:
        raise ApiError(400, f"{name} must be at most {limit} characters", name)
    return value


def _title_from(body: str) -> str:
    first = next((line.strip() for line in body.splitlines() if line.strip()), "Untitled")
    return first[:TITLE_MAX]


@bp.get("/notes")
def list_notes():
    limit = _int_arg("limit", PAGE_DEFAULT, 1, PAGE_MAX)
    before = _int_arg("before", None, 1, BEFORE_MAX)
    query = select(Note).order_by(Note.id.desc()).limit(limit + 1)
    # A bound above the id column's range is above every note: no filter, and no
    # comparison PostgreSQL would refuse as "integer out of range".
    if before is not None and before <= NOTE_ID_MAX:
        query = query.where(Note.id < before)
    with db().reading() as session:
        notes = list(session.scalars(query))
    more = len(notes) > limit
    notes = notes[:limit]
    next_url = url_for(".list_notes", before=notes[-1].id, limit=limit) if more else None
    return jsonify({"notes": [n.to_json() for n in notes], "next": next_url})


@bp.post("/notes")
def create_note():
    upload = None
    if request.mimetype == "application/json":
        data = _json_object()
    elif request.mimetype in FORM_TYPES:
        data, upload = _form()
    else:
        raise ApiError(
            415, "send application/json, or multipart/form-data with an attachment", "body"
        )
    body = _text_field(data, "body", BODY_MAX, required=True)
    title = _text_field(data, "title", TITLE_MAX, required=False) or _title_from(body)

    key = size = name = None
    if upload is not None:
        name = sanitise_filename(upload.filename)
        try:
            key, size = storage().save(upload.stream)
        except AttachmentTooLargeError as exc:
            raise ApiError(413, str(exc), "attachment") from None
    try:
        with db().writing() as session:
            note = Note(
                title=title,
                body=body,
                created_at=utcnow(),
                attachment_name=name,
                attachment_key=key,
                attachment_size=size,
            )
            session.add(note)
            session.flush()
            session.add(
                Event(
                    kind="note-created",
                    note_id=note.id,
                    payload=payload(note.to_json()),
                    created_at=utcnow(),
                )
            )
    except BaseException:
        if key:
            _discard(key, "its note was not saved")
        raise
    log.info("note %d created%s", note.id, " with an attachment" if key else "")
    response = jsonify(note.to_json())
    response.status_code = 201
    response.headers["Location"] = url_for(".get_note", note_id=note.id)
    return response


def _json_object() -> dict:
    try:
        data = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than the parser goes, which Flask's get_json misses.
        raise ApiError(400, "the body is not valid JSON in UTF-8", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object with a 'body' string", "body")
    for name in data:
        if name not in NOTE_FIELDS:
            raise _unknown(name)
    return data


def _unknown(name: str | None) -> ApiError:
    """Refuse a field this API does not know, rather than drop what it holds."""
    if name is None:  # a form part whose header gives it no name
        return ApiError(400, "a part of the form has no name", "body")
    shown = name if len(name) <= 40 else name[:40] + "…"
    known = f"a note has {', '.join(NOTE_FIELDS)} and {ATTACHMENT_FIELD}"
    # A name that cannot be shown back (empty, or not text) is blamed on the body.
    field = name if name.strip() and _storable(name) else "body"
    return ApiError(400, f"unknown field {shown!r}; {known}", field)


def _form() -> tuple[MultiDict, FileStorage | None]:
    """The form's fields and its attachment, or a 400: nothing a client sent is dropped.

    The request class makes a form that cannot be parsed whole raise instead of coming
    back empty (see ``noticeboard.app``), and a part under a name this API does not know
    is refused: a mangled part header turns ``attachment`` into such a name, and the
    note would otherwise be stored without its file.
    """
    try:
        form, files = request.form, request.files
    except ValueError as exc:
        raise ApiError(400, f"the form could not be read whole: {exc}", "body") from None
    for name in {*form, *files}:
        if name not in (*NOTE_FIELDS, ATTACHMENT_FIELD):
            raise _unknown(name)
        if len(form.getlist(name)) + len(files.getlist(name)) > 1:
            raise ApiError(400, f"{name} must be sent once", name)
        if name == ATTACHMENT_FIELD and name in form:
            raise ApiError(400, f"{name} must be a file part with a filename", name)
        if name != ATTACHMENT_FIELD and name in files:
            raise ApiError(400, f"{name} must be a text field, not a file", name)
    upload = files.get(ATTACHMENT_FIELD)
    if upload is not None and not upload.filename:
        # What a form sends when no file is chosen: an empty part with an empty name.
        if upload.stream.read(1):
            raise ApiError(400, f"{ATTACHMENT_FIELD} has content but no filename", ATTACHMENT_FIELD)
        upload = None
    return form, upload


def _discard(key: str, why: str) -> None:
    """Delete a stored attachment no note refers to; a failure leaves an orphan behind."""
    try:
        storage().delete(key)
    except (OSError, SQLAlchemyError, ReadOnlyError) as exc:
        log.warning("attachment %s is left behind (%s): %s", key, why, exc)


def _load(session, note_id: int) -> Note:
    note = session.get(Note, note_id)
    if note is None:
        raise ApiError(404, f"note {note_id} does not exist", "id")
    return note


@bp.get("/notes/<note_id>")
def get_note(note_id: str):
    note_id = _note_id(note_id)
    with db().reading() as session:
        return jsonify(_load(session, note_id).to_json())


@bp.delete("/notes/<note_id>")
def delete_note(note_id: str):
    note_id = _note_id(note_id)
    with db().writing() as session:
        note = _load(session, note_id)
        key = note.attachment_key
        session.delete(note)
        session.add(
            Event(
                kind="note-deleted",
                note_id=note_id,
                payload=payload({"id": note_id}),
                created_at=utcnow(),
            )
        )
    who, address = auth.identity().username, auth.client_address()
    audit_line("note-deleted", who, address, note=note_id)
    if key:
        # After the commit: a failed delete leaves an orphan file or row, never a dead link.
        _discard(key, f"note {note_id} was deleted")
        audit_line("attachment-deleted", who, address, note=note_id)
    log.info("note %d deleted", note_id)
    return Response(status=204)


@bp.get("/notes/<note_id>/attachment")
def download(note_id: str):
    note_id = _note_id(note_id)
    with db().reading() as session:
        note = _load(session, note_id)
    if not note.attachment_key:
        raise ApiError(404, f"note {note_id} has no attachment", "attachment")
    stored = storage().open(note.attachment_key)
    if stored is None:
        log.error("attachment of note %d is missing", note_id)
        raise ApiError(404, f"the attachment of note {note_id} is missing", "attachment")
    response = send_file(
        stored.source,
        mimetype="application/octet-stream",
        conditional=True,
        etag=stored.etag or True,
        last_modified=stored.modified,
    )
    response.headers["Content-Disposition"] = content_disposition(note.attachment_name or "")
    # Downloads never run as a page, even if a browser were to sniff them as one.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document())

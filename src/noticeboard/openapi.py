"""The OpenAPI document served at ``/api/openapi.json``.

Built from the same constants the views check (lengths, page sizes, id range), so a
limit changed in the code changes the document too. ``tests/app/test_openapi.py``
holds the rest together: every route the app has is documented, and the property
tests check every answer's status and body against this document.
"""

from __future__ import annotations

from typing import Any

from noticeboard import __version__
from noticeboard.models import BODY_MAX, NOTE_ID_MAX, TITLE_MAX, USERNAME_MAX

PAGE_DEFAULT = 20
PAGE_MAX = 100
#: ``before`` stays within the integers JavaScript's numbers hold exactly.
BEFORE_MAX = 2**53
#: Event ids are 64-bit; 18 decimal digits always fit.
EVENT_ID_DIGITS = 18
#: Form and JSON fields of a new note; anything else is refused, never ignored.
NOTE_FIELDS = ("body", "title")
ATTACHMENT_FIELD = "attachment"
CSRF_HEADER = "X-Requested-With"

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_EVENT_ID = {"type": "string", "pattern": f"^[0-9]{{0,{EVENT_ID_DIGITS}}}$"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _json_body(schema_name: str) -> dict[str, Any]:
    """A required JSON request body of one of the document's schemas."""
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR_REF, description)


_MAINTENANCE = {
    "description": "Read-only for maintenance; try again after Retry-After seconds.",
    "headers": {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Maintenance"}},
        "text/html": {"schema": {"type": "string"}},
    },
}
_UNAVAILABLE = _error("The database is unavailable; try again shortly.")

_NOTE_ID = {
    "name": "note_id",
    "in": "path",
    "required": True,
    "description": "A note's id; anything else, or an id out of range, is a 404.",
    "schema": {"type": "integer", "minimum": 1, "maximum": NOTE_ID_MAX},
}
_CSRF = {
    "name": CSRF_HEADER,
    "in": "header",
    "required": True,
    "description": (
        "Any non-empty value. Browsers only send a custom header cross-origin after a "
        "CORS preflight, which this API never approves."
    ),
    "schema": {"type": "string", "minLength": 1},
}
_ORIGIN = {
    "name": "Origin",
    "in": "header",
    "required": False,
    "description": "If present, must name this host.",
    "schema": {"type": "string"},
}
COOKIE_NAME = "noticeboard_session"
#: Accounts mode's cookie, or proxy mode's header from a trusted proxy; open mode needs neither.
_SIGNED_IN = [{"session": []}, {"proxyUser": []}]
_ADMIN_ONLY = [{"session": []}]
_UNAUTHORISED = {
    "401": _error("Not signed in (AUTH_MODE accounts or proxy)."),
    "403": _error("Signed in, but the role may not do this; or a write without X-Requested-With."),
}
_ACCOUNTS_ONLY = _error("AUTH_MODE is not accounts: sign-in and accounts are not handled here.")
_USERNAME = {
    "name": "username",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": USERNAME_MAX},
}

_WRITE_REFUSED = {
    "403": _error(f"The {CSRF_HEADER} header is missing, or Origin names another host."),
    "503": _MAINTENANCE,
}


def _schemas() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "minLength": 1},
                "field": {
                    "type": "string",
                    "description": "The field, parameter, header or part of the request at fault.",
                },
            },
        },
        "Maintenance": {
            "type": "object",
            "required": ["error", "maintenance"],
            "properties": {"error": {"type": "string"}, "maintenance": {"const": True}},
        },
        "Attachment": {
            "type": "object",
            "required": ["name", "size", "url"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "size": {"type": "integer", "minimum": 0},
                "url": {"type": "string", "pattern": "^/api/notes/[0-9]+/attachment$"},
            },
        },
        "Note": {
            "type": "object",
            "required": ["id", "title", "body", "created_at", "attachment"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": 1, "maximum": NOTE_ID_MAX},
                "title": {**text, "maxLength": TITLE_MAX},
                "body": {**text, "maxLength": BODY_MAX},
                "created_at": {
                    "type": "string",
                    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
                },
                "attachment": {
                    "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Attachment"}]
                },
            },
        },
        "NoteList": {
            "type": "object",
            "required": ["notes", "next"],
            "additionalProperties": False,
            "properties": {
                "notes": {
                    "type": "array",
                    "maxItems": PAGE_MAX,
                    "items": {"$ref": "#/components/schemas/Note"},
                },
                "next": {
                    "type": ["string", "null"],
                    "description": "The URL of the next, older page; null on the last.",
                },
            },
        },
        "NewNote": {
            "type": "object",
            "required": ["body"],
            "additionalProperties": False,
            "description": (
                "Text is stripped of surrounding white space. Lone surrogates and NUL "
                "characters are refused: no database stores them."
            ),
            "properties": {
                "body": {**text, "maxLength": BODY_MAX},
                "title": {
                    "type": ["string", "null"],
                    "maxLength": TITLE_MAX,
                    "description": "Defaults to the body's first non-blank line.",
                },
            },
        },
        "Identity": {
            "type": "object",
            "required": ["mode", "username", "role", "permissions"],
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["open", "accounts", "proxy"]},
                "username": {"type": ["string", "null"]},
                "role": {"enum": ["member", "admin", None]},
                "permissions": {
                    "type": "array",
                    "items": {"enum": ["read", "post", "delete", "manage"]},
                },
            },
        },
        "Credentials": {
            "type": "object",
            "required": ["username", "password"],
            "additionalProperties": False,
            "properties": {
                "username": {"type": "string", "minLength": 1},
                "password": {"type": "string", "minLength": 1},
            },
        },
        "User": {
            "type": "object",
            "required": ["username", "role", "created_at", "updated_at"],
            "additionalProperties": False,
            "properties": {
                "username": {"type": "string", "minLength": 1, "maxLength": USERNAME_MAX},
                "role": {"enum": ["member", "admin"]},
                "created_at": {"type": "string"},
                "updated_at": {"type": "string"},
            },
        },
        "UserList": {
            "type": "object",
            "required": ["users"],
            "additionalProperties": False,
            "properties": {
                "users": {"type": "array", "items": {"$ref": "#/components/schemas/User"}}
            },
        },
        "NewUser": {
            "type": "object",
            "required": ["username", "password"],
            "additionalProperties": False,
            "properties": {
                "username": {"type": "string", "minLength": 1, "maxLength": USERNAME_MAX},
                "password": {"type": "string", "minLength": 12},
                "role": {"enum": ["member", "admin"], "default": "member"},
            },
        },
        "UserChange": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "description": "Either change ends the account's sessions.",
            "properties": {
                "password": {"type": "string", "minLength": 12},
                "role": {"enum": ["member", "admin"]},
            },
        },
        "NewNoteForm": {
            "type": "object",
            "required": ["body"],
            "additionalProperties": False,
            "description": (
                "Each field at most once. A body that cannot be parsed whole, or a part "
                "this API does not know, is refused: a note is stored with its "
                "attachment or not at all."
            ),
            "properties": {
                "body": {**text, "maxLength": BODY_MAX},
                "title": {"type": "string", "maxLength": TITLE_MAX},
                ATTACHMENT_FIELD: {
                    "type": "string",
                    "contentMediaType": "application/octet-stream",
                    "description": (
                        "A file part (with a filename). An empty part with an empty "
                        "filename, what a form sends when no file is chosen, means none."
                    ),
                },
            },
        },
    }


def document() -> dict[str, Any]:
    """The whole document; cheap enough to build per request."""
    notes_tag = ["notes"]
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "noticeboard",
            "version": __version__,
            "description": (
                "Notes with attachments. Every refused request is answered with a 4xx "
                "and a JSON body naming the `field` at fault. Who may call what depends "
                "on the board's AUTH_MODE: `open` needs no credentials; `accounts` needs "
                "the session cookie that `POST /api/session` sets (members read and "
                "post, admins also delete and manage accounts); `proxy` needs a single "
                "sign-on proxy that names the user in its header."
            ),
        },
        "paths": {
            "/api/notes": {
                "get": {
                    "operationId": "listNotes",
                    "tags": notes_tag,
                    "summary": "Notes, newest first, a page at a time.",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": PAGE_MAX,
                                "default": PAGE_DEFAULT,
                            },
                        },
                        {
                            "name": "before",
                            "in": "query",
                            "description": "Only notes with a smaller id.",
                            "schema": {"type": "integer", "minimum": 1, "maximum": BEFORE_MAX},
                        },
                    ],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/NoteList"}, "A page."),
                        "400": _error("limit or before is not a whole number in range."),
                        "503": _UNAVAILABLE,
                    },
                },
                "post": {
                    "operationId": "createNote",
                    "tags": notes_tag,
                    "summary": "Post a note, with or without one attachment.",
                    "parameters": [_CSRF, _ORIGIN],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/NewNote"}
                            },
                            "multipart/form-data": {
                                "schema": {"$ref": "#/components/schemas/NewNoteForm"}
                            },
                            "application/x-www-form-urlencoded": {
                                "schema": {"$ref": "#/components/schemas/NewNoteForm"}
                            },
                        },
                    },
                    "responses": {
                        "201": {
                            **_json({"$ref": "#/components/schemas/Note"}, "Stored."),
                            "headers": {"Location": {"schema": {"type": "string"}}},
                        },
                        "400": _error("A field is missing, malformed or unknown."),
                        "413": _error("The request or the attachment is too large."),
                        "415": _error("Neither JSON nor a form."),
                        **_WRITE_REFUSED,
                    },
                },
            },
            "/api/notes/{note_id}": {
                "get": {
                    "operationId": "getNote",
                    "tags": notes_tag,
                    "parameters": [_NOTE_ID],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Note"}, "The note."),
                        "404": _error("No such note."),
                        "503": _UNAVAILABLE,
                    },
                },
                "delete": {
                    "operationId": "deleteNote",
                    "tags": notes_tag,
                    "parameters": [_NOTE_ID, _CSRF, _ORIGIN],
                    "responses": {
                        "204": {"description": "Deleted, with its attachment."},
                        "404": _error("No such note."),
                        **_WRITE_REFUSED,
                    },
                },
            },
            "/api/notes/{note_id}/attachment": {
                "get": {
                    "operationId": "downloadAttachment",
                    "tags": notes_tag,
                    "parameters": [_NOTE_ID],
                    "responses": {
                        "200": {
                            "description": "The bytes as uploaded.",
                            "content": {"application/octet-stream": {"schema": {}}},
                        },
                        "206": {
                            "description": "The bytes a Range header asked for.",
                            "content": {"application/octet-stream": {"schema": {}}},
                        },
                        "304": {"description": "Not modified (If-None-Match, If-Modified-Since)."},
                        "404": _error("No such note, or it has no attachment."),
                        "416": _error("The Range header asks for bytes outside the file."),
                        "503": _UNAVAILABLE,
                    },
                },
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
                },
            },
            "/events": {
                "get": {
                    "operationId": "events",
                    "summary": "Server-Sent Events: note-created and note-deleted.",
                    "parameters": [
                        {
                            "name": "Last-Event-ID",
                            "in": "header",
                            "description": "Resume after this event; preferred over the query.",
                            "schema": _EVENT_ID,
                        },
                        {
                            "name": "last_event_id",
                            "in": "query",
                            "schema": _EVENT_ID,
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "An endless stream of events.",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "400": _error("Last-Event-ID is not a whole number."),
                        "503": _UNAVAILABLE,
                    },
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process answers.",
                    "responses": {"200": _json({"type": "object"}, "Alive.")},
                },
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "The database answers and its schema is usable.",
                    "responses": {
                        "200": _json({"type": "object"}, "Ready."),
                        "503": _json({"type": "object"}, "Not ready, with the reason."),
                    },
                },
            },
            "/": {
                "get": {
                    "operationId": "page",
                    "summary": "The page.",
                    "responses": {
                        "200": {
                            "description": "HTML.",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        "503": _UNAVAILABLE,
                    },
                },
            },
        },
        "components": {"schemas": _schemas(), "securitySchemes": _security_schemes()},
    }
    document["paths"].update(_account_paths())
    for operations in document["paths"].values():
        for operation in operations.values():
            security = _PROTECTED.get(operation["operationId"])
            if security is not None:
                operation["security"] = security
                for status, answer in _UNAUTHORISED.items():
                    operation["responses"].setdefault(status, answer)
    return document


#: Operations that need a signed-in requester in accounts and proxy mode.
_PROTECTED = {
    "listNotes": _SIGNED_IN,
    "createNote": _SIGNED_IN,
    "getNote": _SIGNED_IN,
    "deleteNote": _SIGNED_IN,
    "downloadAttachment": _SIGNED_IN,
    "events": _SIGNED_IN,
    "listUsers": _ADMIN_ONLY,
    "createUser": _ADMIN_ONLY,
    "changeUser": _ADMIN_ONLY,
    "deleteUser": _ADMIN_ONLY,
}


def _security_schemes() -> dict[str, Any]:
    return {
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": COOKIE_NAME,
            "description": (
                "AUTH_MODE=accounts: set by POST /api/session. HttpOnly, SameSite=Lax, "
                "Secure over HTTPS. Signing out, a new password or another role ends it."
            ),
        },
        "proxyUser": {
            "type": "apiKey",
            "in": "header",
            "name": "Remote-User",
            "description": (
                "AUTH_MODE=proxy: set by the single sign-on proxy (the name is "
                "AUTH_PROXY_USER_HEADER, the groups in AUTH_PROXY_GROUPS_HEADER) and "
                "believed only from the addresses in AUTH_PROXY_TRUSTED."
            ),
        },
    }


def _account_paths() -> dict[str, Any]:
    tag = ["access"]
    identity = _json({"$ref": "#/components/schemas/Identity"}, "Who is asking.")
    user = {"$ref": "#/components/schemas/User"}
    return {
        "/api/session": {
            "get": {
                "operationId": "whoAmI",
                "tags": tag,
                "summary": "The mode, and who is signed in (username null when nobody).",
                "responses": {"200": identity, "503": _UNAVAILABLE},
            },
            "post": {
                "operationId": "signIn",
                "tags": tag,
                "summary": "Sign in (AUTH_MODE=accounts); sets a new session cookie.",
                "parameters": [_CSRF, _ORIGIN],
                "requestBody": _json_body("Credentials"),
                "responses": {
                    "200": {
                        **identity,
                        "headers": {"Set-Cookie": {"schema": {"type": "string"}}},
                    },
                    "400": _error("username or password is missing."),
                    "401": _error("The username or the password is wrong."),
                    "404": _ACCOUNTS_ONLY,
                    "429": {
                        **_error("Too many failed sign-ins for the account or the address."),
                        "headers": {
                            "Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}
                        },
                    },
                    **_WRITE_REFUSED,
                },
            },
            "delete": {
                "operationId": "signOut",
                "tags": tag,
                "summary": "Sign out: ends every session of the account.",
                "parameters": [_CSRF, _ORIGIN],
                "responses": {
                    "204": {"description": "Signed out (also when nobody was signed in)."},
                    "404": _ACCOUNTS_ONLY,
                    **_WRITE_REFUSED,
                },
            },
        },
        "/api/users": {
            "get": {
                "operationId": "listUsers",
                "tags": tag,
                "summary": "Every account (admins).",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/UserList"}, "The accounts."),
                    "404": _ACCOUNTS_ONLY,
                    "503": _UNAVAILABLE,
                },
            },
            "post": {
                "operationId": "createUser",
                "tags": tag,
                "summary": "Create an account (admins).",
                "parameters": [_CSRF, _ORIGIN],
                "requestBody": _json_body("NewUser"),
                "responses": {
                    "201": _json(user, "Created."),
                    "400": _error("A field is missing, malformed, or the password is weak."),
                    "404": _ACCOUNTS_ONLY,
                    "409": _error("The account exists already."),
                    **_WRITE_REFUSED,
                },
            },
        },
        "/api/users/{username}": {
            "patch": {
                "operationId": "changeUser",
                "tags": tag,
                "summary": "Change an account's role or password (admins).",
                "parameters": [_USERNAME, _CSRF, _ORIGIN],
                "requestBody": _json_body("UserChange"),
                "responses": {
                    "200": _json(user, "Changed."),
                    "400": _error("A field is malformed, or the password is weak."),
                    "404": _error("No such account, or AUTH_MODE is not accounts."),
                    "409": _error("The last admin cannot be demoted."),
                    **_WRITE_REFUSED,
                },
            },
            "delete": {
                "operationId": "deleteUser",
                "tags": tag,
                "summary": "Delete an account (admins).",
                "parameters": [_USERNAME, _CSRF, _ORIGIN],
                "responses": {
                    "204": {"description": "Deleted."},
                    "404": _error("No such account, or AUTH_MODE is not accounts."),
                    "409": _error("The last admin cannot be deleted."),
                    **_WRITE_REFUSED,
                },
            },
        },
    }

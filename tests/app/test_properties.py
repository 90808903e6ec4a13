"""Whatever a client sends, the API answers as its OpenAPI document says, on every backend.

Hypothesis builds requests to every operation in ``/api/openapi.json``: well-formed
ones, and ones broken in every field, parameter, header and multipart part (numbers
that are not numbers or do not fit 64 bits, lone surrogates and NUL, JSON nested too
deep, unknown fields, part headers cut or garbled). Every answer must be a status the
document lists for the operation with a body its schema accepts, never a 5xx; every
4xx names the field at fault; and a refused request leaves the notes, events, stored
attachments and upload directory exactly as they were.

The default profile ``ci`` is derandomised with a bounded number of examples, so a run
tries the same requests every time and an unrelated change never fails on a new one.
A longer random search (profile ``explore``, see ``conftest.py``)::

    HYPOTHESIS_PROFILE=explore .venv/bin/nox -s tests -- -k test_properties --timeout=0
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from conftest import config_for
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from noticeboard import accounts, openapi
from noticeboard.app import create_app

from helpers import CSRF, Contract

# Every code point, lone surrogates included: a JSON client can send them all.
ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.sampled_from(["\ud800", "a\udfffb", "nul\x00here", "x" * 301, "  ", "שלום עולם"]),
)
# What a person types: any text without surrogates, sometimes too long or only blanks.
NOTE_TEXT = st.one_of(
    st.text(min_size=1, max_size=60), st.sampled_from(["x" * 10_001, "t" * 201, " \t"]), ANY_TEXT
)
# What can travel in an HTTP header: Latin-1 without line breaks.
HEADER_TEXT = st.text(st.characters(codec="latin-1", exclude_characters="\r\n\x00"), max_size=30)
NUMBER_TEXT = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(
        ["", "0", "1", "²", "١٢", "+1", " 1", "1.0", "1e3", "0x10", str(2**31), str(2**63)]
    ),
    st.just("9" * 4301),  # one digit more than int() converts
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)
KNOWN_FIELDS = st.sampled_from(["body", "title", "attachment"])
FIELD_NAMES = st.one_of(KNOWN_FIELDS, KNOWN_FIELDS, ANY_TEXT)
# Mostly headers the API accepts, so most requests reach the checks behind them.
WRITE_HEADERS = st.one_of(
    st.just(CSRF),
    st.just({**CSRF, "Origin": "http://localhost"}),
    st.just(CSRF),
    st.fixed_dictionaries(
        {},
        optional={
            "X-Requested-With": st.one_of(st.just("tests"), HEADER_TEXT),
            "Origin": st.one_of(
                st.sampled_from(
                    ["http://localhost", "https://evil.example", "http://[::1", "null"]
                ),
                HEADER_TEXT,
            ),
        },
    ),
)
READ_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Accept": st.one_of(st.sampled_from(["text/html", "*/*;q=x"]), HEADER_TEXT),
        "If-None-Match": HEADER_TEXT,
        "If-Modified-Since": HEADER_TEXT,
        "Range": st.one_of(
            st.sampled_from(["bytes=0-3", "bytes=999999-", "bytes=5-2"]), HEADER_TEXT
        ),
    },
)
BOUNDARY = "nb-7f3a"


def snapshot(app) -> tuple:
    """What a refused request must leave alone: rows, the newest ids, stored files."""
    db = app.extensions["noticeboard.db"]
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT (SELECT COUNT(*) FROM notes), (SELECT MAX(id) FROM notes), "
                "(SELECT COUNT(*) FROM events), (SELECT MAX(id) FROM events), "
                "(SELECT COUNT(*) FROM attachment_blobs)"
            )
        ).one()
    storage = app.extensions["noticeboard.storage"]
    # ATTACHMENT_STORE=database still serves (and may write) files from before the switch.
    root = getattr(storage, "files", storage).root
    return (*rows, sorted(os.listdir(root)) if root.exists() else [])


@pytest.fixture
def contract(client) -> Contract:
    return Contract(client.get("/api/openapi.json").get_json())


class Api:
    """Sends one request and checks the promises every answer keeps."""

    def __init__(self, app, client, contract: Contract):
        self.app, self.client, self.contract = app, client, contract

    def send(self, method: str, template: str, path: str, **kwargs):
        before = snapshot(self.app)
        response = self.client.open(path, method=method, **kwargs)
        status = response.status_code
        text = response.get_data(as_text=True)[:300] if response.is_sequence else ""
        assert status < 500, f"{method} {path} answered {status}: {text!r}"
        self.contract.check(method, template, response)
        if status >= 400:
            assert response.get_json()["field"], f"{method} {path} {status} names no field"
            assert snapshot(self.app) == before, f"{method} {path} {status} changed the database"
        if response.mimetype != "text/event-stream":
            response.close()
        return response

    def seed(self) -> list[int]:
        """A note with an attachment and one without, for the requests that find one."""
        with_file = self.client.post(
            "/api/notes",
            data={"body": "seed", "attachment": (io.BytesIO(b"0123456789"), "s.txt")},
            headers=CSRF,
            content_type="multipart/form-data",
        )
        plain = self.client.post("/api/notes", json={"body": "plain"}, headers=CSRF)
        return [with_file.get_json()["id"], plain.get_json()["id"]]


ADMIN, ADMIN_PASSWORD = "prop-admin", "Properties-pass-0f-the-board"


def signed_in_api(shared_url: str, data_dir, contract: Contract, **extra: str) -> Api:
    """The API as a default board serves it (AUTH_MODE=accounts), to its admin.

    The admin may do everything, so each generated request reaches the checks behind
    the sign-in; what a signed-out or member client gets is test_access.py's business.
    """
    board = create_app(
        config_for(shared_url, data_dir, MAX_UPLOAD_MB="1", AUTH_MODE="accounts", **extra)
    )
    database = board.extensions["noticeboard.db"]
    if accounts.find(database, ADMIN) is None:
        accounts.create(database, ADMIN, ADMIN_PASSWORD, "admin")
    client = board.test_client()
    signed = client.post(
        "/api/session", json={"username": ADMIN, "password": ADMIN_PASSWORD}, headers=CSRF
    )
    assert signed.status_code == 200, signed.get_data(as_text=True)
    return Api(board, client, contract)


@pytest.fixture
def api(app, shared_url, tmp_path, contract) -> Iterator[Api]:
    """``app`` has emptied the database; the board here signs its admin in on it."""
    signed = signed_in_api(shared_url, tmp_path / "data", contract)
    yield signed
    signed.app.extensions["noticeboard.db"].dispose()


@pytest.fixture(params=["files", "database"])
def store_api(request, api, shared_url, tmp_path):
    """The API with attachments as files and, on the same database, as rows."""
    if request.param == "files":
        yield api
        return
    other = signed_in_api(shared_url, tmp_path / "rows", api.contract, ATTACHMENT_STORE="database")
    try:
        yield other
    finally:
        other.app.extensions["noticeboard.db"].dispose()


def ids(seeded: list[int]):
    """Ids in a URL: the seeded notes' and anything else that stays one path segment."""
    texts = st.one_of(st.sampled_from(seeded).map(str), NUMBER_TEXT)
    return texts.filter(lambda t: "/" not in t).map(lambda t: quote(t, safe=""))


def test_reading_answers_as_documented(api):
    seeded = api.seed()

    @given(
        operation=st.sampled_from(["list", "get", "attachment", "openapi", "other"]),
        note=ids(seeded),
        query=st.dictionaries(
            st.one_of(st.sampled_from(["limit", "before"]), st.text(max_size=5)),
            NUMBER_TEXT,
            max_size=3,
        ),
        headers=READ_HEADERS,
    )
    @example(operation="get", note=str(2**64 + 1), query={}, headers={})
    @example(operation="attachment", note="9" * 40, query={}, headers={})
    @example(operation="list", note="1", query={"limit": "²", "before": str(2**70)}, headers={})
    @example(operation="list", note="1", query={"before": str(2**31)}, headers={})
    def run(operation, note, query, headers):
        template, path = {
            "list": ("/api/notes", "/api/notes"),
            "get": ("/api/notes/{note_id}", f"/api/notes/{note}"),
            "attachment": ("/api/notes/{note_id}/attachment", f"/api/notes/{note}/attachment"),
            "openapi": ("/api/openapi.json", "/api/openapi.json"),
            "other": ("/", "/"),
        }[operation]
        api.send("GET", template, path, query_string=query, headers=headers)

    run()


def test_events_answer_as_documented(api):
    @given(
        header=st.one_of(st.none(), NUMBER_TEXT.filter(_latin1), HEADER_TEXT),
        query=st.one_of(st.none(), NUMBER_TEXT),
    )
    @example(header="²", query=None)
    def run(header, query):
        headers = {} if header is None else {"Last-Event-ID": header}
        params = {} if query is None else {"last_event_id": query}
        response = api.send("GET", "/events", "/events", headers=headers, query_string=params)
        if response.status_code == 200:
            # Start the stream and close it, so its subscription ends as a browser's would.
            next(iter(response.response))
            response.close()

    run()


def _latin1(text: str) -> bool:
    return all(ord(c) < 256 and c not in "\r\n\x00" for c in text)


def test_deleting_answers_as_documented(api):
    seeded = api.seed()

    @given(note=ids(seeded), headers=WRITE_HEADERS)
    @example(note=str(2**64), headers=CSRF)
    def run(note, headers):
        path = f"/api/notes/{note}"
        response = api.send("DELETE", "/api/notes/{note_id}", path, headers=headers)
        if response.status_code == 204:
            assert api.client.get(path).status_code == 404

    run()


@st.composite
def json_bodies(draw) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["note", "note", "object", "value", "bytes", "deep"]))
    if kind == "note":
        # A note as a client means it; any text, any title, sometimes one field more.
        fields = {"body": draw(NOTE_TEXT)}
        fields.update(draw(st.fixed_dictionaries({}, optional={"title": NOTE_TEXT})))
        if draw(st.integers(0, 3)) == 0:
            fields.update(draw(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=1)))
        raw = json.dumps(fields, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    elif kind == "object":
        fields = draw(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=3))
        raw = json.dumps(fields, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    elif kind == "value":
        raw = json.dumps(draw(JSON_VALUES)).encode()
    elif kind == "bytes":
        raw = draw(st.binary(max_size=64))
    else:
        raw = draw(st.sampled_from([b"[", b'{"body":'])) * draw(st.integers(1, 100_000))
    return raw, "application/json"


@st.composite
def multipart_bodies(draw) -> tuple[bytes, str, bool | None]:
    """A form as a browser would send it, then perhaps damaged.

    The third value says whether the note must have an attachment if it is stored,
    or None when the damage makes that unknowable.
    """
    if draw(st.integers(0, 3)) == 0:
        return draw(damaged_file_headers())
    parts = draw(
        st.lists(
            st.tuples(
                FIELD_NAMES,
                st.one_of(st.none(), st.just(""), ANY_TEXT, st.just("é" * 200 + ".pdf")),
                st.binary(max_size=32),
            ),
            max_size=4,
        )
    )
    if draw(st.booleans()):
        parts.insert(0, ("body", None, draw(st.sampled_from([b"hello", b"\xff\xfe", b" "]))))
    chunks = []
    for name, filename, content in parts:
        head = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            head += f'; filename="{filename}"'
        chunks.append(
            f"--{BOUNDARY}\r\n{head}\r\n\r\n".encode("utf-8", "surrogatepass") + content + b"\r\n"
        )
    raw = b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()
    clean = all(
        not set('"\\\r\n') & set(name + (filename or ""))
        and all(not 0xD800 <= ord(c) <= 0xDFFF for c in name + (filename or ""))
        for name, filename, _ in parts
    )
    damage = draw(st.sampled_from(["none", "none", "cut", "insert", "boundary"]))
    if damage in ("cut", "insert"):
        at = draw(st.integers(0, len(raw)))
        if damage == "cut":
            raw = raw[:at] + raw[at + draw(st.integers(1, 24)) :]
        else:
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    if damage == "boundary":
        content_type = draw(st.sampled_from(["multipart/form-data", content_type + "x"]))
    with_file = None
    if damage == "none" and clean:
        with_file = any(name == "attachment" and filename for name, filename, _ in parts)
    return raw, content_type, with_file


@st.composite
def damaged_file_headers(draw) -> tuple[bytes, str, bool]:
    """A note with a file whose part header lost or changed one character.

    Whatever the damage, the answer is a note with its attachment or a refusal: the
    parser must not turn the file into something the API ignores.
    """
    head = f'Content-Disposition: form-data; name="attachment"; filename="{draw(NOTE_TEXT)}"'
    raw = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="body"\r\n\r\nhello\r\n'
        f"--{BOUNDARY}\r\n{head}\r\nContent-Type: text/plain\r\n\r\nDATA\r\n"
        f"--{BOUNDARY}--\r\n"
    ).encode("utf-8", "surrogatepass")
    start = raw.index(b'Content-Disposition: form-data; name="attachment"')
    end = raw.index(b"\r\n", start)
    # Half the time one of the characters that give the header its shape.
    marks = [i for i in range(start, end) if raw[i : i + 1] in (b'"', b";", b"=", b":")]
    at = draw(st.one_of(st.sampled_from(marks), st.integers(start, end - 1)))
    replacement = draw(
        st.one_of(
            st.just(b""),
            st.sampled_from([b'"', b";", b" ", b"\n"]),
            st.binary(min_size=1, max_size=2),
        )
    )
    return raw[:at] + replacement + raw[at + 1 :], f"multipart/form-data; boundary={BOUNDARY}", True


@st.composite
def other_bodies(draw) -> tuple[bytes, str]:
    pairs = draw(st.lists(st.tuples(FIELD_NAMES, ANY_TEXT), max_size=3))
    form = "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}"
        for k, v in pairs
    )
    return draw(
        st.one_of(
            st.just((form.encode(), "application/x-www-form-urlencoded")),
            st.tuples(
                st.binary(max_size=32),
                st.one_of(st.sampled_from(["text/plain", "", "multipart/mixed"]), HEADER_TEXT),
            ),
        )
    )


MALFORMED_PART_HEADER = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="body"\r\n\r\nhi\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="attachment; filename="a.txt"\r\n'
    f"\r\nDATA\r\n--{BOUNDARY}--\r\n"
).encode()


def test_posting_answers_as_documented_and_stores_all_or_nothing(store_api):
    api = store_api

    @given(
        body=st.one_of(
            json_bodies().map(lambda b: (*b, None)),
            multipart_bodies(),
            other_bodies().map(lambda b: (*b, None)),
        ),
        headers=WRITE_HEADERS,
    )
    @example(body=(b'{"body": "\\ud800"}', "application/json", None), headers=CSRF)
    @example(
        body=(MALFORMED_PART_HEADER, f"multipart/form-data; boundary={BOUNDARY}", None),
        headers=CSRF,
    )
    def run(body, headers):
        raw, content_type, with_file = body
        response = api.send(
            "POST",
            "/api/notes",
            "/api/notes",
            data=raw,
            headers={**headers, "Content-Type": content_type},
        )
        if response.status_code == 201:
            note = response.get_json()
            assert api.client.get(response.headers["Location"]).get_json() == note
            if content_type == "application/json":
                # The code accepts nothing the document's request schema forbids.
                api.contract.validate({"$ref": "#/components/schemas/NewNote"}, json.loads(raw))
            if with_file is not None:
                assert (note["attachment"] is not None) == with_file, note

    run()


def test_a_method_a_path_does_not_have_is_refused_naming_it(api):
    document = api.contract.document
    seeded = api.seed()

    @given(
        path=st.sampled_from(sorted(document["paths"])),
        method=st.sampled_from(["PUT", "PATCH", "POST", "DELETE", "TRACE"]),
        headers=WRITE_HEADERS,
    )
    def run(path, method, headers):
        if method.lower() in document["paths"][path]:
            return
        url = path.replace("{note_id}", str(seeded[0]))
        before = snapshot(api.app)
        response = api.client.open(url, method=method, headers=headers)
        # Outside /api/ or with the header, 405; a write to /api/ without it is a 403 first.
        assert response.status_code in (403, 405), (method, url, response.status_code)
        if response.status_code == 405:
            assert response.get_json()["field"] == "method"
            assert response.headers["Allow"]
        assert snapshot(api.app) == before

    run()


def _storable_in_url(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate has no bytes to send in a path
        return False
    return True


ACCOUNT_FIELDS = st.sampled_from(["username", "password", "role"])
ACCOUNT_BODIES = st.one_of(
    st.dictionaries(
        st.one_of(ACCOUNT_FIELDS, ACCOUNT_FIELDS, ANY_TEXT),
        st.one_of(
            st.sampled_from(["ada", "max", "member", "admin", "Long-enough-passw0rd"]),
            JSON_VALUES,
        ),
        max_size=3,
    ),
    JSON_VALUES,
)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sign_in_and_accounts_answer_as_documented(app, shared_url, tmp_path, contract):
    """AUTH_MODE=accounts, signed in as an admin; every answer as the document says.

    SQLite only and fewer examples: a well-formed password costs an scrypt hash. One
    failure per address is allowed, so later wrong passwords are refused without one.
    """
    board = create_app(
        config_for(
            shared_url, tmp_path / "acc", AUTH_MODE="accounts", AUTH_THROTTLE_MAX_FAILURES="1"
        )
    )
    database = board.extensions["noticeboard.db"]
    accounts.create(database, "ada", "Admin-pass-0f-the-board", "admin")
    accounts.create(database, "max", "Member-pass-0f-the-board", "member")
    api = Api(board, board.test_client(), contract)
    signed = api.send(
        "POST",
        "/api/session",
        "/api/session",
        json={"username": "ada", "password": "Admin-pass-0f-the-board"},
        headers=CSRF,
    )
    assert signed.status_code == 200
    names = st.one_of(st.sampled_from(["ada", "max", "nobody"]), ANY_TEXT).filter(
        lambda t: t and "/" not in t and _storable_in_url(t)
    )

    @hypothesis_settings(max_examples=150)
    @given(
        operation=st.sampled_from(["whoami", "sign-in", "list", "create", "change", "delete"]),
        name=names,
        body=ACCOUNT_BODIES,
        headers=WRITE_HEADERS,
    )
    @example(
        operation="sign-in", name="x", body={"username": "max", "password": "Wrong-1"}, headers=CSRF
    )
    @example(
        operation="sign-in", name="x", body={"username": "max", "password": "Wrong-2"}, headers=CSRF
    )
    @example(operation="create", name="x", body={"username": "bea", "role": "admin"}, headers=CSRF)
    @example(operation="change", name="ada", body={"role": "member"}, headers=CSRF)
    @example(operation="delete", name="ada", body={}, headers=CSRF)
    def run(operation, name, body, headers):
        user = "/api/users/" + quote(name, safe="")
        method, template, path = {
            "whoami": ("GET", "/api/session", "/api/session"),
            "sign-in": ("POST", "/api/session", "/api/session"),
            "list": ("GET", "/api/users", "/api/users"),
            "create": ("POST", "/api/users", "/api/users"),
            "change": ("PATCH", "/api/users/{username}", user),
            "delete": ("DELETE", "/api/users/{username}", user),
        }[operation]
        if method == "GET":
            api.send(method, template, path)
        else:
            api.send(
                method,
                template,
                path,
                data=json.dumps(body),
                headers=headers,
                content_type="application/json",
            )

    try:
        run()
        assert api.send("DELETE", "/api/session", "/api/session", headers=CSRF).status_code == 204
        assert api.send("GET", "/api/users", "/api/users").status_code == 401
    finally:
        database.dispose()


def test_the_document_names_every_operation_these_tests_send():
    sent = {
        ("get", "/api/session"),
        ("post", "/api/session"),
        ("delete", "/api/session"),
        ("get", "/api/users"),
        ("post", "/api/users"),
        ("patch", "/api/users/{username}"),
        ("delete", "/api/users/{username}"),
        ("get", "/api/notes"),
        ("post", "/api/notes"),
        ("get", "/api/notes/{note_id}"),
        ("delete", "/api/notes/{note_id}"),
        ("get", "/api/notes/{note_id}/attachment"),
        ("get", "/api/openapi.json"),
        ("get", "/events"),
        ("get", "/"),
    }
    documented = {
        (method, path)
        for path, operations in openapi.document()["paths"].items()
        for method in operations
    }
    # The health endpoints take no input; test_api.py covers them.
    assert documented - sent == {("get", "/healthz"), ("get", "/readyz")}

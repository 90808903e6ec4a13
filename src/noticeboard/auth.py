"""Who is asking and what they may do: the three access modes, sign-in and accounts.

``AUTH_MODE=open``
    Everyone may read, post and delete (today's board, for a trusted network).
``AUTH_MODE=accounts``
    A signed session cookie names the account and its ``session_version``; members read
    and post, admins also delete any note and manage accounts. Failed sign-ins are
    counted in the database (``sign_in_failures``) per account and per client address,
    so the limit holds across workers and hosts.
``AUTH_MODE=proxy``
    A single sign-on proxy names the user in a header. The header is believed only
    when the peer that connected to this process (before ProxyFix replaces the address
    from X-Forwarded-For) is in AUTH_PROXY_TRUSTED.

Every endpoint is listed in ``PUBLIC`` or ``NEEDS``; one in neither is refused, so a
new route is closed until someone decides who may use it.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import delete, func, select

from noticeboard import accounts, settings
from noticeboard.accounts import AccountError, audit_line
from noticeboard.db import Database
from noticeboard.errors import ApiError
from noticeboard.models import SignInFailure, User, utcnow

bp = Blueprint("auth", __name__, url_prefix="/api")

READ, POST, DELETE, MANAGE = "read", "post", "delete", "manage"
ROLE_PERMISSIONS = {
    settings.MEMBER: frozenset({READ, POST}),
    settings.ADMIN: frozenset({READ, POST, DELETE, MANAGE}),
}
#: Account management exists only in accounts mode, so ``open`` grants everything else.
OPEN_PERMISSIONS = frozenset({READ, POST, DELETE})

COOKIE_NAME = "noticeboard_session"
SESSION_LIFETIME = timedelta(days=14)
#: The longest a failed sign-in is held up, in seconds.
MAX_DELAY = 2.0

PUBLIC = frozenset(
    {
        "static",
        "web.index",  # the shell; it shows notes only to those who may read them
        "web.healthz",
        "web.readyz",
        "api.openapi_document",
        "auth.whoami",
        "auth.sign_in",
        "auth.sign_out",
    }
)
NEEDS = {
    "api.list_notes": READ,
    "api.get_note": READ,
    "api.download": READ,
    "events.events": READ,
    "api.create_note": POST,
    "api.delete_note": DELETE,
    "auth.list_users": MANAGE,
    "auth.create_user": MANAGE,
    "auth.update_user": MANAGE,
    "auth.delete_user": MANAGE,
}
#: Endpoints whose answer is the same whoever asks. Every other answer may depend on the
#: requester, so it names what identifies them in ``Vary`` (see ``vary_by_identity``).
SAME_FOR_EVERYONE = frozenset({"static", "web.healthz", "web.readyz", "api.openapi_document"})
ACCOUNTS_ONLY = frozenset(
    {"auth.sign_in", "auth.sign_out", "auth.list_users", "auth.create_user"}
    | {"auth.update_user", "auth.delete_user"}
)


@dataclass(frozen=True)
class Identity:
    username: str | None
    role: str | None
    permissions: frozenset[str]
    user_id: int | None = None

    def to_json(self, mode: str) -> dict:
        return {
            "mode": mode,
            "username": self.username,
            "role": self.role,
            "permissions": sorted(self.permissions),
        }


ANONYMOUS = Identity(None, None, frozenset())
EVERYONE = Identity(None, None, OPEN_PERMISSIONS)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever this request came over HTTPS.

    ``request.is_secure`` follows X-Forwarded-Proto as far as TRUSTED_PROXY_COUNT
    trusts it, so a board behind a TLS proxy gets Secure cookies and one on a plain
    LAN address still gets a cookie the browser keeps.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        # Lax keeps the cookie on a link from elsewhere (so the page opens signed in)
        # and off cross-site POSTs; the X-Requested-With rule covers every write anyway.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.register_blueprint(bp)
    app.after_request(vary_by_identity)


def vary_by_identity(response: Response) -> Response:
    """Keep a shared cache from handing one person's answer to another.

    The page, the notes, the stream and the attachments differ (or are refused) by who
    asks, and who asks is the session cookie or the proxy's headers; without ``Vary`` a
    cache between the board and its readers could serve a signed-in reader's notes to a
    signed-out one. Open mode answers everyone alike, so it adds nothing.
    """
    cfg = config()
    if cfg.auth_mode == settings.OPEN or request.endpoint in SAME_FOR_EVERYONE:
        return response
    if cfg.auth_mode == settings.ACCOUNTS:
        response.vary.add("Cookie")
    else:
        response.vary.add(cfg.auth_proxy_user_header)
        response.vary.add(cfg.auth_proxy_groups_header)
    return response


def config() -> settings.Settings:
    return current_app.extensions["noticeboard.settings"]


def db() -> Database:
    return current_app.extensions["noticeboard.db"]


def client_address() -> str:
    """The client as ProxyFix gives it: X-Forwarded-For only as far as it is trusted."""
    return (request.remote_addr or "unknown")[:64]


def peer_address() -> str | None:
    """The address that connected to this process, whatever X-Forwarded-For says."""
    original = request.environ.get("werkzeug.proxy_fix.orig")
    if original is not None:
        return original.get("REMOTE_ADDR")
    return request.environ.get("REMOTE_ADDR")


def _trusted_peer(networks) -> bool:
    text = peer_address()
    if not text:
        return False
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def identity() -> Identity:
    """Who sent this request, worked out once per request."""
    if "noticeboard_identity" not in g:
        mode = config().auth_mode
        if mode == settings.OPEN:
            g.noticeboard_identity = EVERYONE
        elif mode == settings.PROXY:
            g.noticeboard_identity = _from_proxy(config())
        else:
            g.noticeboard_identity = _from_session()
    return g.noticeboard_identity


def _from_proxy(cfg: settings.Settings) -> Identity:
    if not _trusted_peer(cfg.auth_proxy_trusted):
        return ANONYMOUS
    user = request.headers.get(cfg.auth_proxy_user_header, "").strip()
    if not user or len(user) > 255 or not user.isprintable():
        return ANONYMOUS
    groups_text = request.headers.get(cfg.auth_proxy_groups_header, "")
    groups = {part.strip() for part in groups_text.split(",") if part.strip()}
    if cfg.auth_proxy_admin_group in groups:
        role = settings.ADMIN
    elif not cfg.auth_proxy_member_group or cfg.auth_proxy_member_group in groups:
        role = settings.MEMBER
    else:
        return Identity(user, None, frozenset())
    # Accounts are managed by the proxy, not here.
    return Identity(user, role, ROLE_PERMISSIONS[role] - {MANAGE})


def _from_session() -> Identity:
    user_id, name, version = session.get("uid"), session.get("user"), session.get("ver")
    if not isinstance(user_id, int) or not isinstance(version, int):
        return ANONYMOUS
    user = _account(db(), user_id)
    # The name as well as the id: a deleted account's id may be given to a new one.
    if user is None or user.username != name or user.session_version != version:
        session.clear()
        return ANONYMOUS
    return Identity(user.username, user.role, ROLE_PERMISSIONS[user.role], user_id)


def _account(database: Database, user_id: int):
    """The columns a session check needs of an account, or None.

    A row, not an ORM object: every request asks, and loading the object cost a sixth of
    a request's time on MariaDB (bench/README.md, "API").
    """
    with database.reading() as dbs:
        return dbs.execute(
            select(User.username, User.role, User.session_version).where(User.id == user_id)
        ).first()


def still_signed_in() -> Callable[[], bool] | None:
    """For a long-lived response: a check that this request's session is still valid.

    None when nothing can end it (open mode; proxy mode, whose header is fixed for the
    connection). In accounts mode signing out, a new password, another role or a
    deleted account ends the session, and an open event stream with it.
    """
    who = identity()
    if who.user_id is None:
        return None
    database, user_id, version = db(), who.user_id, session.get("ver")

    def check() -> bool:
        user = _account(database, user_id)
        return (
            user is not None
            and user.session_version == version
            and READ in ROLE_PERMISSIONS[user.role]
        )

    return check


def guard() -> None:
    """Before every view: refuse what this requester may not do."""
    endpoint = request.endpoint
    if endpoint is None or (endpoint in PUBLIC and endpoint not in ACCOUNTS_ONLY):
        return  # no such route (a 404 follows) or open to all
    mode = config().auth_mode
    if endpoint in ACCOUNTS_ONLY and mode != settings.ACCOUNTS:
        raise ApiError(
            404,
            f"sign-in and accounts are handled by the app only when AUTH_MODE=accounts "
            f"(this board uses {mode})",
            "path",
        )
    if endpoint in PUBLIC:
        return
    needed = NEEDS.get(endpoint)
    if needed is None:
        raise ApiError(403, f"{request.path} is not open to anyone (endpoint {endpoint})", "path")
    who = identity()
    if needed in who.permissions:
        return
    if who.username is None:
        where = "at the single sign-on proxy" if mode == settings.PROXY else "first"
        raise ApiError(401, f"sign in {where} to {needed} notes", "session")
    if who.role is None:
        raise ApiError(403, f"{who.username} is not a member of this board", "session")
    raise ApiError(403, f"the role {who.role} may not {needed} here", "session")


# --- throttling -------------------------------------------------------------------------


class Throttle:
    """Failed sign-ins per account and per client address, in the shared database."""

    def __init__(self, database: Database, cfg: settings.Settings):
        self.db = database
        self.limit = cfg.auth_throttle_max_failures
        self.window = cfg.auth_throttle_window_s

    @staticmethod
    def _keys(username: str, address: str):
        """What failures are counted by: the account, and the client address."""
        return ((SignInFailure.username, username), (SignInFailure.address, address))

    def _counted(self, session, since, username: str, address: str) -> dict[str, list]:
        found = {}
        for column, value in self._keys(username, address):
            found[column.key] = list(
                session.scalars(
                    select(SignInFailure.created_at)
                    .where(column == value, SignInFailure.created_at > since)
                    .order_by(SignInFailure.created_at.desc())
                    .limit(self.limit)
                )
            )
        return found

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until a sign-in is accepted again, or None when it may go ahead."""
        now = utcnow()
        with self.db.reading() as session:
            found = self._counted(session, now - timedelta(seconds=self.window), username, address)
        waits = [
            (times[-1] + timedelta(seconds=self.window) - now).total_seconds()
            for times in found.values()
            if len(times) >= self.limit
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def record(self, username: str, address: str) -> int:
        """Count one failure; returns the larger of the account's and the address's counts."""
        now = utcnow()
        since = now - timedelta(seconds=self.window)
        with self.db.writing() as session:
            session.execute(delete(SignInFailure).where(SignInFailure.created_at <= since))
            session.add(SignInFailure(username=username, address=address, created_at=now))
            session.flush()
            counts = [
                session.scalar(
                    select(func.count())
                    .select_from(SignInFailure)
                    .where(column == value, SignInFailure.created_at > since)
                )
                for column, value in self._keys(username, address)
            ]
        return max(counts)

    def delay(self, count: int) -> float:
        """Seconds to hold up the answer to the count-th failure: doubling, at most 2."""
        if count >= self.limit:
            return 0.0  # the next attempt is refused outright
        return min(MAX_DELAY, 0.25 * 2 ** (count - 1))

    def clear(self, username: str) -> None:
        with self.db.writing() as session:
            session.execute(delete(SignInFailure).where(SignInFailure.username == username))


# --- views ------------------------------------------------------------------------------


def _json_fields(*names: str) -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, f"the body must be a JSON object with {', '.join(names)}", "body")
    for key in data:
        if key not in names:
            raise ApiError(400, f"unknown field {str(key)[:40]!r}; use {', '.join(names)}", "body")
    return data


def _account_error(exc: AccountError) -> ApiError:
    return ApiError(exc.status, exc.message, exc.field)


@bp.get("/session")
def whoami():
    return jsonify(identity().to_json(config().auth_mode))


@bp.post("/session")
def sign_in():
    data = _json_fields("username", "password")
    name, password = data.get("username"), data.get("password")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "username is required", "username")
    if not isinstance(password, str) or not password:
        raise ApiError(400, "password is required", "password")
    name = settings.normalise_username(name)[:64]
    address = client_address()
    throttle = Throttle(db(), config())
    wait = throttle.retry_after(name, address)
    if wait is not None:
        audit_line("sign-in-throttled", name, address)
        raise ApiError(
            429,
            f"too many failed sign-ins; try again in {wait} seconds",
            "username",
            retry_after=wait,
        )
    user = accounts.find(db(), name)
    if not accounts.password_matches(user, password) or user is None:
        count = throttle.record(name, address)
        audit_line("sign-in-failed", name, address, failures=count)
        time.sleep(throttle.delay(count))
        raise ApiError(401, "the username or the password is wrong", "password")
    throttle.clear(name)
    # A new cookie from nothing: whatever the browser held before signing in (planted
    # by someone else, or an older session) is not carried into the signed-in one.
    session.clear()
    session.update(uid=user.id, user=user.username, ver=user.session_version)
    session["sid"] = secrets.token_urlsafe(16)
    session.permanent = True
    g.noticeboard_identity = Identity(
        user.username, user.role, ROLE_PERMISSIONS[user.role], user.id
    )
    audit_line("sign-in", user.username, address)
    return jsonify(identity().to_json(settings.ACCOUNTS))


@bp.delete("/session")
def sign_out():
    who = identity()
    if who.user_id is not None:
        accounts.end_sessions(db(), who.user_id)
        audit_line("sign-out", who.username, client_address())
    session.clear()
    return Response(status=204)


@bp.get("/users")
def list_users():
    return jsonify({"users": [user.to_json() for user in accounts.list_users(db())]})


@bp.post("/users")
def create_user():
    data = _json_fields("username", "password", "role")
    name = data.get("username")
    if not isinstance(name, str):
        raise ApiError(400, "username must be a string", "username")
    try:
        user = accounts.create(db(), name, data.get("password"), data.get("role", "member"))
    except AccountError as exc:
        raise _account_error(exc) from None
    audit_line(
        "account-created",
        identity().username,
        client_address(),
        account=user.username,
        role=user.role,
    )
    response = jsonify(user.to_json())
    response.status_code = 201
    return response


@bp.patch("/users/<username>")
def update_user(username: str):
    data = _json_fields("role", "password")
    if not data:
        raise ApiError(400, "send role, password or both", "body")
    try:
        user = accounts.update(db(), username, data.get("role"), data.get("password"))
    except AccountError as exc:
        raise _account_error(exc) from None
    changed = ",".join(sorted(data))
    audit_line(
        "account-changed",
        identity().username,
        client_address(),
        account=user.username,
        changed=changed,
        role=user.role,
    )
    return jsonify(user.to_json())


@bp.delete("/users/<username>")
def delete_user(username: str):
    try:
        accounts.delete(db(), username)
    except AccountError as exc:
        raise _account_error(exc) from None
    audit_line("account-deleted", identity().username, client_address(), account=username)
    return Response(status=204)

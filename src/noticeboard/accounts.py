"""Accounts of ``AUTH_MODE=accounts``: create, list, change and delete, for the API and the CLI.

Passwords are hashed with scrypt by Werkzeug (``generate_password_hash``), never by code
of our own. Every change that should end the account's sessions (a new password,
another role, signing out) raises ``users.session_version``, which each session cookie
must match. The last admin can be neither demoted nor deleted, so a board can never be
left without someone who manages it.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from noticeboard import settings
from noticeboard.db import Database
from noticeboard.models import User, utcnow

audit = logging.getLogger("noticeboard.audit")

HASH_METHOD = "scrypt"


class AccountError(Exception):
    """A refused account change: an HTTP status, a message and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def shown(name: str | None) -> str:
    """A name as it may appear in a log line: valid usernames as they are, the rest quoted."""
    if not name:
        return "anonymous"
    if settings.USERNAME_PATTERN.match(name):
        return name
    return ascii(name[:64])


def audit_line(action: str, actor: str | None, address: str | None, **details: object) -> None:
    """One line on ``noticeboard.audit``: what, by whom, from where. No secrets go in."""
    extra = "".join(f" {key}={shown(str(value))}" for key, value in details.items())
    audit.info("%s by=%s from=%s%s", action, shown(actor), address or "unknown", extra)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


_dummy_hash: str | None = None


def password_matches(user: User | None, password: str) -> bool:
    """Whether ``password`` is the user's; an unknown user costs as much time as a known one."""
    global _dummy_hash
    if user is None:
        if _dummy_hash is None:
            _dummy_hash = hash_password("not-a-password-anyone-has")
        check_password_hash(_dummy_hash, password)
        return False
    return check_password_hash(user.password_hash, password)


def check_username(name: str) -> str:
    name = settings.normalise_username(name)
    if problem := settings.username_problem(name):
        raise AccountError(400, problem, "username")
    return name


def check_role(role: object) -> str:
    if role not in settings.ROLES:
        raise AccountError(400, f"role must be one of {', '.join(settings.ROLES)}", "role")
    return role  # type: ignore[return-value]


def check_password(password: object, username: str) -> str:
    if not isinstance(password, str):
        raise AccountError(400, "password must be a string", "password")
    if problem := settings.password_problem(password, username):
        raise AccountError(400, f"the password {problem}", "password")
    return password


def find(db: Database, username: str) -> User | None:
    with db.reading() as session:
        return session.scalar(
            select(User).where(User.username == settings.normalise_username(username))
        )


def list_users(db: Database) -> list[User]:
    with db.reading() as session:
        return list(session.scalars(select(User).order_by(User.username)))


def _load(session, username: str) -> User:
    user = session.scalar(
        select(User).where(User.username == settings.normalise_username(username))
    )
    if user is None:
        raise AccountError(404, f"there is no account {shown(username)}", "username")
    return user


def _admins(session) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.role == "admin"))


#: What to do about a board in accounts mode that has no admin yet: said on its page and
#: in the log of ``noticeboard serve`` and ``noticeboard db upgrade``.
NO_ADMIN_STEPS = (
    "create the first admin on the host with `noticeboard users create NAME --role admin` "
    "(the password is read from standard input), or set ADMIN_USERNAME and ADMIN_PASSWORD "
    "(or ADMIN_PASSWORD_FILE) and run `noticeboard db upgrade`"
)
NO_ADMIN_WARNING = (
    f"AUTH_MODE=accounts and there is no admin yet, so nobody can sign in: {NO_ADMIN_STEPS}"
)


def has_admin(db: Database) -> bool:
    return count_admins(db) > 0


def create(db: Database, username: str, password: object, role: object) -> User:
    name = check_username(username)
    role = check_role(role)
    password = check_password(password, name)
    now = utcnow()
    user = User(
        username=name,
        role=role,
        password_hash=hash_password(password),
        session_version=1,
        created_at=now,
        updated_at=now,
    )
    try:
        with db.writing() as session:
            if session.scalar(select(User.id).where(User.username == name)) is not None:
                raise AccountError(409, f"the account {name} exists already", "username")
            session.add(user)
    except IntegrityError:  # created by someone else between the look and the insert
        raise AccountError(409, f"the account {name} exists already", "username") from None
    return user


def update(db: Database, username: str, role: object = None, password: object = None) -> User:
    """Change the role and/or the password; either ends the account's sessions."""
    if role is not None:
        role = check_role(role)
    with db.writing() as session:
        user = _load(session, username)
        if password is not None:
            user.password_hash = hash_password(check_password(password, user.username))
        if role is not None and role != user.role:
            if user.role == settings.ADMIN and _admins(session) <= 1:
                raise AccountError(
                    409, f"{user.username} is the last admin; make another admin first", "role"
                )
            user.role = role
        user.session_version += 1
        user.updated_at = utcnow()
    return user


def delete(db: Database, username: str) -> None:
    with db.writing() as session:
        user = _load(session, username)
        if user.role == settings.ADMIN and _admins(session) <= 1:
            raise AccountError(
                409, f"{user.username} is the last admin; make another admin first", "username"
            )
        session.delete(user)


def end_sessions(db: Database, user_id: int) -> None:
    """Signing out: every cookie issued to this account so far stops working."""
    with db.writing() as session:
        user = session.get(User, user_id)
        if user is not None:
            user.session_version += 1


def count_admins(db: Database) -> int:
    """How many accounts are admins (``noticeboard db check --json``'s ``admins``)."""
    with db.reading() as session:
        return _admins(session)


def ensure_first_admin(db: Database, config: settings.Settings) -> str | None:
    """Create ADMIN_USERNAME when both admin settings are set and no admin exists.

    Returns what was done, for the command that called it, or None when the settings
    name no admin. Runs where the schema is upgraded (``noticeboard db upgrade``, once
    per deploy), so several app processes starting at once never race for it.
    """
    if not config.admin_username:
        return None
    with db.reading() as session:
        admins = _admins(session)
    if admins:
        return "an admin exists already; ADMIN_USERNAME and ADMIN_PASSWORD are not used"
    try:
        create(db, config.admin_username, config.admin_password, settings.ADMIN)
    except AccountError as exc:
        if exc.status != 409:
            raise
        return (
            f"ADMIN_USERNAME={config.admin_username} exists as a member, and there is no "
            "admin; make it one with `noticeboard users set-role` or choose another name"
        )
    audit_line("account-created", "settings", "local", account=config.admin_username, role="admin")
    return f"first admin {config.admin_username} created"

"""The tables, as the application sees them at the Alembic head.

The revisions under ``migrations/versions`` create the same shapes; a test compares
the migrated schema with this metadata so that the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, MetaData, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; the other databases get 64 bits.
EventId = BigInteger().with_variant(Integer(), "sqlite")
# MariaDB's plain BLOB stops at 64 KiB; LONGBLOB holds up to 4 GiB.
Blob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")

TITLE_MAX = 200
BODY_MAX = 10_000
NAME_MAX = 255
USERNAME_MAX = 64
#: An IPv6 address in text is at most 45 characters.
ADDRESS_MAX = 64
#: ``notes.id`` is a 32-bit INTEGER on MariaDB and PostgreSQL; a larger id names no note.
NOTE_ID_MAX = 2**31 - 1


def utcnow() -> datetime:
    """Naive UTC: MariaDB's DATETIME keeps no zone, so every database stores the same."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attachment_name: Mapped[str | None] = mapped_column(String(NAME_MAX))
    attachment_key: Mapped[str | None] = mapped_column(String(64))
    attachment_size: Mapped[int | None] = mapped_column(BigInteger)

    def to_json(self) -> dict:
        attachment = None
        if self.attachment_key:
            attachment = {
                "name": self.attachment_name,
                "size": self.attachment_size,
                "url": f"/api/notes/{self.id}/attachment",
            }
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
            "attachment": attachment,
        }


class AttachmentBlob(Base):
    """The bytes of one attachment when ``ATTACHMENT_STORE=database``.

    Keyed like the files under UPLOAD_DIR (``notes.attachment_key``), so a file moved
    into this table keeps its key and its note needs no change. The key column is not
    named ``key``, a reserved word in MariaDB.
    """

    __tablename__ = "attachment_blobs"

    attachment_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    data: Mapped[bytes] = mapped_column(Blob)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Event(Base):
    """One row per change; its id is the SSE event id clients resume from."""

    __tablename__ = "events"
    __table_args__: ClassVar[dict] = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    note_id: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EventLock(Base):
    """A single row every writer locks first, so event ids commit in increasing order.

    Without it two transactions could take ids 5 and 6 and commit 6 first; a poller
    that already read 6 would then never see 5.
    """

    __tablename__ = "event_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class User(Base):
    """An account (``AUTH_MODE=accounts``).

    ``session_version`` is copied into the session cookie at sign-in; raising it (a new
    password, another role, signing out) ends every session issued before, since the
    cookie is kept by the browser, not here.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def to_json(self) -> dict:
        return {
            "username": self.username,
            "role": self.role,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
            "updated_at": self.updated_at.isoformat(timespec="seconds") + "Z",
        }


class SignInFailure(Base):
    """One failed sign-in, kept for ``AUTH_THROTTLE_WINDOW_S``.

    In the database rather than in a process, so the limit holds across workers and
    hosts. ``username`` is what was typed (normalised), whether or not the account exists.
    """

    __tablename__ = "sign_in_failures"
    __table_args__: ClassVar[dict] = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX), index=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_MAX), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

"""Where attachments are kept: files under UPLOAD_DIR, or rows in the database.

A stored attachment is named by a random key that the server generates; the client's
file name is only kept, cleaned, in the database for the ``Content-Disposition``
header. Nothing a client sends is ever joined to a path.

``Storage`` keeps files on the host that received them, right for one host.
``DatabaseStorage`` (``ATTACHMENT_STORE=database``) keeps the bytes in the
``attachment_blobs`` table, so every app host behind a load balancer serves every
attachment and the database's backup holds them. Both have the same interface:
``save(stream) -> (key, size)``, ``open(key) -> Stored | None`` and ``delete(key)``.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

from sqlalchemy import delete, insert, select, text

from noticeboard.models import AttachmentBlob, Note, utcnow

if TYPE_CHECKING:
    from noticeboard.db import Database

log = logging.getLogger(__name__)

KEY_RE = re.compile(r"\A[0-9a-f]{32}\Z")
NAME_MAX = 120
CHUNK = 64 * 1024
#: Room for the rest of an INSERT beside the attachment's bytes, in a MariaDB packet.
STATEMENT_SLACK = 4096


@dataclass(frozen=True)
class Stored:
    """An attachment ready to send: a file on disk, or bytes read from the database.

    ``etag`` and ``modified`` are only set for bytes; for a file ``send_file`` reads
    them from the file, as it always has.
    """

    source: Path | BinaryIO
    etag: str | None = None
    modified: datetime | None = None


def check_key(key: str) -> str:
    if not KEY_RE.match(key):
        raise ValueError("invalid storage key")
    return key


class Storage:
    """Files under UPLOAD_DIR, named by their key."""

    def __init__(self, root: Path):
        self.root = root

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def check_writable(self) -> None:
        """Raise ``SettingsError`` unless attachments can be stored under the root."""
        from noticeboard.settings import SettingsError

        try:
            self.ensure()
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise SettingsError(
                f"UPLOAD_DIR {self.root} is not writable ({exc.strerror}); point UPLOAD_DIR "
                "or DATA_DIR at a directory the app user can write"
            ) from None

    def path_for(self, key: str) -> Path:
        return self.root / check_key(key)

    def save(self, stream: BinaryIO) -> tuple[str, int]:
        """Copy ``stream`` into a new file; return its key and size in bytes."""
        self.ensure()
        key = secrets.token_hex(16)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=self.root)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            os.replace(tmp, self.path_for(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key, size

    def open(self, key: str) -> Stored | None:
        path = self.path_for(key)
        return Stored(path) if path.is_file() else None

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def list_keys(self) -> list[str]:
        """Keys of the stored files; partial uploads and anything else are left out."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if KEY_RE.match(p.name) and p.is_file())


class AttachmentTooLargeError(ValueError):
    """An attachment is larger than MAX_UPLOAD_MB."""


class ImportConflictError(RuntimeError):
    """A file and the database's row for the same key differ; the import stops."""


@dataclass
class ImportCounts:
    imported: int = 0
    already: int = 0
    unreferenced: int = 0

    def __str__(self) -> str:
        return (
            f"{self.imported} imported, {self.already} already in the database "
            f"(file removed), {self.unreferenced} left alone (no note refers to them)"
        )


class DatabaseStorage:
    """Bytes in the ``attachment_blobs`` table; files from before the switch still served.

    PyMySQL and psycopg send a parameter in one piece, so an upload is held in memory
    once while it is written (at most MAX_UPLOAD_MB, which the request limit already
    enforces) and a download once while it is sent. The row is written in its own
    transaction before the note's, as a file is in files mode: a failed note deletes it.
    """

    def __init__(self, database: Database, files: Storage, max_bytes: int):
        self.database = database
        self.files = files
        self.max_bytes = max_bytes

    def save(self, stream: BinaryIO) -> tuple[str, int]:
        data = stream.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            mib = self.max_bytes // (1024 * 1024)
            raise AttachmentTooLargeError(f"the attachment is larger than the limit of {mib} MiB")
        key = secrets.token_hex(16)
        self._insert(key, data)
        return key, len(data)

    def _check_packet(self, key: str, data: bytes) -> None:
        """Refuse, naming the fix, a row MariaDB would refuse by dropping the connection.

        PyMySQL sends bytes inside the statement's text as a hex literal, two bytes per
        byte, and the server refuses a statement larger than its ``max_allowed_packet``
        with nothing clearer than "server has gone away".
        """
        if self.database.engine.dialect.name not in {"mysql", "mariadb"}:
            return
        with self.database.reading() as session:
            limit = session.scalar(text("SELECT @@max_allowed_packet"))
        needed = 2 * len(data) + STATEMENT_SLACK
        if needed > limit:
            log.error(
                "attachment %s of %d bytes needs a MariaDB max_allowed_packet of at least %d "
                "bytes, the server allows %d: raise max_allowed_packet to twice MAX_UPLOAD_MB "
                "and 1 MiB more, or lower MAX_UPLOAD_MB",
                key,
                len(data),
                needed,
                limit,
            )
            raise AttachmentTooLargeError(
                "the database cannot store an attachment this large (its max_allowed_packet "
                f"is {limit // (1024 * 1024)} MiB); send a smaller file or ask the operator "
                "to raise the limit"
            )

    def _insert(self, key: str, data: bytes) -> None:
        self._check_packet(key, data)
        # The write lock is taken after the row is sent, so a large upload does not hold
        # up other writers; maintenance mode is still checked under the lock.
        with self.database.writing(lock_last=True) as session:
            session.execute(
                insert(AttachmentBlob).values(
                    attachment_key=key, data=data, size=len(data), created_at=utcnow()
                )
            )

    def open(self, key: str) -> Stored | None:
        with self.database.reading() as session:
            row = session.execute(
                select(AttachmentBlob.data, AttachmentBlob.created_at).where(
                    AttachmentBlob.attachment_key == check_key(key)
                )
            ).first()
        if row is None:
            # Uploaded in files mode before the switch and not imported yet.
            return self.files.open(key)
        # A key names one upload and is never reused, so it is a strong ETag.
        return Stored(io.BytesIO(row.data), etag=key, modified=row.created_at.replace(tzinfo=UTC))

    def _stored(self, key: str) -> bytes | None:
        with self.database.reading() as session:
            data = session.scalar(
                select(AttachmentBlob.data).where(AttachmentBlob.attachment_key == key)
            )
        return None if data is None else bytes(data)

    def delete(self, key: str) -> None:
        with self.database.writing() as session:
            session.execute(delete(AttachmentBlob).where(AttachmentBlob.attachment_key == key))
        self.files.delete(key)

    def import_files(self, report: Callable[[str], None] = print) -> ImportCounts:
        """Move the files under UPLOAD_DIR that notes refer to into the table.

        Idempotent: a file whose key is already in the table with the same bytes (an
        earlier run stopped before removing it) is only removed. A file is removed only
        after its row has committed and read back identical.
        """
        counts = ImportCounts()
        with self.database.reading() as session:
            referenced = set(
                session.scalars(select(Note.attachment_key).where(Note.attachment_key.is_not(None)))
            )
        for key in self.files.list_keys():
            if key not in referenced:
                counts.unreferenced += 1
                continue
            path = self.files.path_for(key)
            data = path.read_bytes()
            if self._stored(key) is None:
                self._insert(key, data)
                counts.imported += 1
            else:
                counts.already += 1
            if self._stored(key) != data:
                raise ImportConflictError(
                    f"attachment {key} differs between {path} and the database; both are "
                    "kept and nothing more is imported: compare them and remove the wrong one"
                )
            path.unlink()
            report(f"{key}: {len(data)} bytes in the database, file removed")
        return counts


def sanitise_filename(name: str) -> str:
    """A display name with no directories, control characters or leading dots."""
    name = unicodedata.normalize("NFKC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    name = re.sub(r'["<>:|?*;]', "_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if len(name) > NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: NAME_MAX - len(ext) - 1] + "." + ext
        else:
            name = name[:NAME_MAX]
    return name or "attachment"


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name per RFC 6266."""
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    ascii_name = ascii_name.replace("\\", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"

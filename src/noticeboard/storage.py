"""Attachment files on disk.

A stored file is named by a random key that the server generates; the client's file
name is only kept, cleaned, in the database for the ``Content-Disposition`` header.
Nothing a client sends is ever joined to a path.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import unicodedata
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

KEY_RE = re.compile(r"\A[0-9a-f]{32}\Z")
NAME_MAX = 120
CHUNK = 64 * 1024


class Storage:
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
        if not KEY_RE.match(key):
            raise ValueError("invalid storage key")
        return self.root / key

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

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)


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

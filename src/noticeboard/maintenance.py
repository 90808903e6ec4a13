"""Read-only maintenance mode, switched by a file so that no restart is needed.

While the file named by ``MAINTENANCE_FILE`` (default ``DATA_DIR/maintenance``) exists,
every state-changing request is refused with ``503``, a ``Retry-After`` header and a
message saying that the board is read-only for maintenance; pages, the API's reads,
attachments and the event stream are served as usual. ``noticeboard maintenance on``
writes the file (its content is the ``Retry-After`` value in seconds), ``off`` removes
it. Every worker of the host sees the change at its next request.

A write is refused twice over: before the request is read (cheap, and no upload is
stored for nothing) and again inside the write transaction, just before it commits,
while it holds the database's write lock. The second look is what makes the switch
safe for a copy of the database: once the file exists and one more transaction has
taken that lock (``drain``), no write can commit any more.

This module imports nothing outside the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_RETRY_AFTER = 60
MESSAGE = "the board is read-only for maintenance; reading works, try writing again later"


class ReadOnlyError(Exception):
    """A write was attempted while maintenance mode is on."""

    def __init__(self, retry_after: int):
        super().__init__(MESSAGE)
        self.retry_after = retry_after


class Maintenance:
    """The flag file: ``active()`` is one ``open`` when off, one small read when on."""

    def __init__(self, path: Path):
        self.path = path

    def active(self) -> int | None:
        """``Retry-After`` seconds while maintenance is on, else ``None``."""
        try:
            with open(self.path, encoding="ascii", errors="replace") as handle:
                text = handle.read(16).strip()
        except FileNotFoundError:
            return None
        except OSError:
            # Present but unreadable still means "on": refusing a write is the safe side.
            return DEFAULT_RETRY_AFTER
        return int(text) if text.isdigit() and 0 < int(text) <= 86400 else DEFAULT_RETRY_AFTER

    def refuse_writes(self) -> None:
        """Raise ``ReadOnlyError`` while maintenance is on."""
        retry_after = self.active()
        if retry_after is not None:
            raise ReadOnlyError(retry_after)

    def enable(self, retry_after: int = DEFAULT_RETRY_AFTER) -> bool:
        """Switch on; returns whether it was off before."""
        was_off = self.active() is None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(f"{retry_after}\n", encoding="ascii")
        os.replace(tmp, self.path)
        return was_off

    def disable(self) -> bool:
        """Switch off; returns whether it was on before."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

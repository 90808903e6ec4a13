"""Copy the whole database to another one through the application's tables, and verify.

Used to move a board from SQLite to MariaDB (or PostgreSQL): ``noticeboard db copy``
and ``noticeboard db verify``.

* Both databases must be at the Alembic head, so that the tables of
  ``noticeboard.models`` describe both. The target's schema is made by the migrations,
  never by this module.
* The source must be in maintenance mode: before reading, one write transaction takes
  the source's write lock and ends, so every write that started before the switch has
  committed and every later one is refused (see ``noticeboard.maintenance``).
* Re-running after an interruption starts over: the target's tables are emptied in
  reverse dependency order, then every table is copied in dependency order, in batches
  ordered by primary key, one transaction per batch; attachments stored in the
  database (``attachment_blobs``) go one row per batch, so that memory holds one at a
  time. A target that already holds notes or events is only emptied with
  ``replace=True``, so a live database is never wiped by mistake.
* Verification reads both sides in primary-key order and hashes one canonical line per
  row (JSON of the column values in the model's column order; times to whole seconds,
  because MariaDB's ``DATETIME`` keeps no fraction and the application shows none);
  row counts and digests must be equal for every table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import Engine

from noticeboard import migrate
from noticeboard.db import make_engine
from noticeboard.models import Base, EventLock

BATCH = 1000
#: Tables whose rows the migrations create; a target holding only those counts as empty.
SEEDED = frozenset({EventLock.__tablename__})


class TransferError(RuntimeError):
    """The copy or the verification cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class TableSum:
    table: str
    rows: int
    digest: str


def tables() -> list[sa.Table]:
    """The application's tables, parents before children."""
    return list(Base.metadata.sorted_tables)


def _key(table: sa.Table) -> sa.Column:
    (column,) = table.primary_key.columns  # every table of the app has a one-column key
    return column


def canonical(value: object) -> object:
    """The value as it is compared between two databases."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat(sep=" ")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _batch_size(table: sa.Table, size: int) -> int:
    """Rows per batch: one at a time for a table of attachments, each up to MAX_UPLOAD_MB."""
    if any(isinstance(column.type, sa.LargeBinary) for column in table.columns):
        return 1
    return size


def _batches(conn: sa.Connection, table: sa.Table, size: int):
    key = _key(table)
    size = _batch_size(table, size)
    last = None
    while True:
        query = sa.select(table).order_by(key).limit(size)
        if last is not None:
            query = query.where(key > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1]._mapping[key.name]


def summarise(engine: Engine, size: int = BATCH) -> list[TableSum]:
    """Row count and SHA-256 of the canonical rows of every table."""
    sums = []
    with engine.connect() as conn:
        for table in tables():
            digest = hashlib.sha256()
            count = 0
            for rows in _batches(conn, table, size):
                for row in rows:
                    line = json.dumps(
                        [canonical(v) for v in row], ensure_ascii=False, separators=(",", ":")
                    )
                    digest.update(line.encode() + b"\n")
                count += len(rows)
            sums.append(TableSum(table.name, count, digest.hexdigest()))
    return sums


def _check_head(engine: Engine, role: str, url: str) -> None:
    from noticeboard.settings import redact_url

    head = migrate.head_revision()
    try:
        current = migrate.current_revision(engine)
    except Exception as exc:
        raise TransferError(
            f"the {role} database {redact_url(url)} does not answer: {migrate.describe_error(exc)}"
        ) from exc
    if current != head:
        hint = (
            "run `noticeboard db upgrade` with DATABASE_URL set to it first"
            if role == "target"
            else "run `noticeboard db upgrade` first"
        )
        raise TransferError(
            f"the {role} database {redact_url(url)} is at schema {current or 'none'}, "
            f"not at head {head}; {hint}"
        )


def _data_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.scalar(sa.select(sa.func.count()).select_from(t))
            for t in tables()
            if t.name not in SEEDED
        }


def drain_writes(engine: Engine) -> None:
    """Wait for write transactions in flight: take the write lock once and let it go."""
    with engine.begin() as conn:
        conn.execute(sa.update(EventLock).where(EventLock.id == 1).values(id=EventLock.id))


def _open(url: str, role: str) -> Engine:
    engine = make_engine(url)
    _check_head(engine, role, url)
    return engine


def _same_database(a: str, b: str) -> bool:
    ua, ub = sa.make_url(a), sa.make_url(b)
    return (ua.get_backend_name(), ua.host, ua.port, ua.database) == (
        ub.get_backend_name(),
        ub.host,
        ub.port,
        ub.database,
    )


def copy(
    source_url: str,
    target_url: str,
    *,
    size: int = BATCH,
    replace: bool = False,
    report: Callable[[str], None] = print,
    after_batch: Callable[[str, int], None] | None = None,
) -> list[tuple[TableSum, TableSum]]:
    """Copy every table from source to target, then verify; returns both sides' sums."""
    if _same_database(source_url, target_url):
        raise TransferError("the source and the target are the same database; name another")
    source = _open(source_url, "source")
    target = _open(target_url, "target")
    try:
        held = {name: n for name, n in _data_rows(target).items() if n}
        if held and not replace:
            rows = ", ".join(f"{n} in {name}" for name, n in sorted(held.items()))
            raise TransferError(
                f"the target already holds rows ({rows}); if it is not in use (an earlier, "
                "interrupted copy), run again with --replace to empty it first"
            )
        drain_writes(source)
        with target.begin() as conn:
            for table in reversed(tables()):
                conn.execute(table.delete())
        # MariaDB's DATETIME keeps whole seconds; cut the fraction here rather than
        # leave it to the server, which may round instead (TIME_ROUND_FRACTIONAL).
        whole_seconds = target.dialect.name in {"mysql", "mariadb"}
        with source.connect() as src:
            for table in tables():
                copied = 0
                for rows in _batches(src, table, size):
                    values = [dict(row._mapping) for row in rows]
                    if whole_seconds:
                        for item in values:
                            for name, value in item.items():
                                if isinstance(value, dt.datetime):
                                    item[name] = value.replace(microsecond=0)
                    with target.begin() as conn:
                        conn.execute(table.insert(), values)
                    copied += len(values)
                    if after_batch:
                        after_batch(table.name, copied)
                report(f"{table.name}: {copied} rows copied")
        if target.dialect.name == "postgresql":
            _reset_sequences(target)
    finally:
        source.dispose()
        target.dispose()
    return verify(source_url, target_url, size=size, report=report)


def _reset_sequences(engine: Engine) -> None:
    """Explicit ids do not move PostgreSQL's sequences; start them after the copied rows."""
    with engine.begin() as conn:
        for table in tables():
            key = _key(table)
            sequence = conn.scalar(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": key.name}
            )
            if sequence:
                top = conn.scalar(sa.select(sa.func.max(key)))
                conn.execute(
                    sa.text("SELECT setval(:s, :v, :called)"),
                    {"s": sequence, "v": top or 1, "called": top is not None},
                )


def compare(
    source_url: str,
    target_url: str,
    *,
    size: int = BATCH,
    report: Callable[[str], None] = print,
) -> list[tuple[TableSum, TableSum]]:
    """Row counts and digests of every table on both sides, reported one line per table.

    Raises ``TransferError`` only when a side cannot be read or is not at head; whether
    the pairs match is the caller's question (``verify`` and ``db verify --json``).
    """
    source = _open(source_url, "source")
    target = _open(target_url, "target")
    try:
        pairs = list(zip(summarise(source, size), summarise(target, size), strict=True))
    finally:
        source.dispose()
        target.dispose()
    for left, right in pairs:
        report(
            f"{left.table}: {left.rows} rows sha256 {left.digest[:16]} | "
            f"{right.rows} rows sha256 {right.digest[:16]} | "
            f"{'match' if left == right else 'DIFFERENT'}"
        )
    return pairs


class DifferenceError(TransferError):
    """Both databases were read, and some tables differ (``tables`` names them)."""

    def __init__(self, message: str, tables: list[str]):
        super().__init__(message)
        self.tables = tables


def verify(
    source_url: str,
    target_url: str,
    *,
    size: int = BATCH,
    report: Callable[[str], None] = print,
) -> list[tuple[TableSum, TableSum]]:
    """Compare row counts and digests of every table; raise ``TransferError`` on a difference."""
    pairs = compare(source_url, target_url, size=size, report=report)
    bad = [left.table for left, right in pairs if left != right]
    if bad:
        raise DifferenceError(
            f"the copy differs from the source in {', '.join(bad)}; keep the source in "
            "service and run the copy again with --replace",
            bad,
        )
    return pairs

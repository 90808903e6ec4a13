#!/usr/bin/python3
"""Backup helper the app role installs on the hosts (standard library only).

  sqlite-backup SRC DST        online copy of a live SQLite database (the backup API),
                               consistent while the app keeps writing
  manifest OUT [options]       row counts per table, schema revision and a SHA-256 per
                               uploaded file, as JSON, read from the backup itself
  verify MANIFEST [options]    compare a restored database and upload tree with a
                               manifest; exit 1 naming every difference

Sources for counts: --sqlite FILE (opened immutable, nothing written beside it),
--dump FILE.sql.gz (a mariadb-dump taken with --skip-extended-insert: one INSERT per row)
or --counts-tsv FILE (lines "table<TAB>count", e.g. from `mariadb -N -B`). Upload
checksums come from a directory (--uploads DIR) or, at backup time, from the tar that
holds them (--uploads-tar FILE), so the manifest describes exactly what was saved.

With ATTACHMENT_STORE=database the attachments are rows of the attachment_blobs table:
the database copy or dump holds them and they are counted like every other table (the
dump escapes their newlines, so one INSERT is still one line). The uploads directory
then holds only files from before the switch that `noticeboard attachments import` has
not moved yet, and its tar is usually empty.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sqlite3
import sys
import tarfile
from pathlib import Path

INSERT_RE = re.compile(r"^INSERT INTO `([^`]+)` VALUES")
CREATE_RE = re.compile(r"^CREATE TABLE `([^`]+)`")
REVISION_RE = re.compile(r"^INSERT INTO `alembic_version` VALUES \('([^']+)'\)")


def sqlite_backup(src: str, dst: str) -> None:
    source = sqlite3.connect(src, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
        # The copy carries the source's WAL flag; make it one self-contained file.
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()


def sqlite_counts(path: str) -> tuple[dict[str, int], str | None]:
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        # Table names come from sqlite_master, not from input.
        query = 'SELECT COUNT(*) FROM "{}"'
        counts = {t: conn.execute(query.format(t)).fetchone()[0] for t in tables}
        revision = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        return counts, revision
    finally:
        conn.close()


def dump_counts(path: str) -> tuple[dict[str, int], str | None]:
    counts: dict[str, int] = {}
    revision = None
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as dump:
        for line in dump:
            if created := CREATE_RE.match(line):
                counts.setdefault(created.group(1), 0)
            elif inserted := INSERT_RE.match(line):
                counts[inserted.group(1)] = counts.get(inserted.group(1), 0) + 1
                if found := REVISION_RE.match(line):
                    revision = found.group(1)
    return counts, revision


def tsv_counts(path: str) -> dict[str, int]:
    counts = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            table, count = line.split("\t")
            counts[table] = int(count)
    return counts


def checksums(root: str | None) -> dict[str, str]:
    if not root or not Path(root).is_dir():
        return {}
    sums = {}
    for path in sorted(Path(root).rglob("*")):
        # Partial uploads (".upload-*") are not part of the data yet.
        if path.is_file() and not path.name.startswith(".upload-"):
            sums[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def tar_checksums(path: str) -> dict[str, str]:
    """Checksums of the files in an uploads tar (members under "uploads/")."""
    sums = {}
    with tarfile.open(path) as archive:
        for member in archive:
            name = member.name.removeprefix("./").removeprefix("uploads/")
            if member.isfile() and not Path(name).name.startswith(".upload-"):
                sums[name] = hashlib.sha256(archive.extractfile(member).read()).hexdigest()
    return dict(sorted(sums.items()))


def read_counts(args: argparse.Namespace) -> tuple[dict[str, int], str | None]:
    if args.sqlite:
        return sqlite_counts(args.sqlite)
    if args.dump:
        return dump_counts(args.dump)
    if args.counts_tsv:
        return tsv_counts(args.counts_tsv), None
    return {}, None


def cmd_manifest(args: argparse.Namespace) -> int:
    counts, revision = read_counts(args)
    manifest = dict(item.split("=", 1) for item in args.set)
    uploads = tar_checksums(args.uploads_tar) if args.uploads_tar else checksums(args.uploads)
    manifest.update(tables=counts, revision=revision, uploads=uploads)
    Path(args.out).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"tables": counts, "revision": revision, "uploads": len(manifest["uploads"])}))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    expected = json.loads(Path(args.manifest).read_text())
    problems = []
    if args.sqlite or args.dump or args.counts_tsv:
        counts = read_counts(args)[0]
        for table, rows in sorted(expected["tables"].items()):
            if counts.get(table) != rows:
                problems.append(f"table {table}: {counts.get(table)} rows, backup has {rows}")
    if args.uploads is not None:
        found = checksums(args.uploads)
        for name, digest in sorted(expected["uploads"].items()):
            if found.get(name) != digest:
                problems.append(f"upload {name}: {'differs' if name in found else 'missing'}")
        problems += [
            f"upload {name}: not in the backup"
            for name in found.keys() - expected["uploads"].keys()
        ]
    if problems:
        print(
            "; ".join(problems[:20])
            + (f" (+{len(problems) - 20} more)" if len(problems) > 20 else "")
        )
        return 1
    print(json.dumps({"tables": expected["tables"], "uploads": len(expected["uploads"])}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    backup = sub.add_parser("sqlite-backup")
    backup.add_argument("src")
    backup.add_argument("dst")
    for name in ("manifest", "verify"):
        cmd = sub.add_parser(name)
        cmd.add_argument("out" if name == "manifest" else "manifest")
        cmd.add_argument("--sqlite")
        cmd.add_argument("--dump")
        cmd.add_argument("--counts-tsv")
        cmd.add_argument("--uploads")
        if name == "manifest":
            cmd.add_argument("--uploads-tar", help="checksums from this tar instead of --uploads")
            cmd.add_argument("--set", action="append", default=[], help="extra KEY=VALUE")
    args = parser.parse_args()
    if args.command == "sqlite-backup":
        sqlite_backup(args.src, args.dst)
        return 0
    return cmd_manifest(args) if args.command == "manifest" else cmd_verify(args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Backup helper the app role installs on the hosts (standard library only).

  sqlite-backup SRC DST        online copy of a live SQLite database (the backup API),
                               consistent while the app keeps writing
  manifest OUT [options]       row counts per table, schema revision and a SHA-256 per
                               uploaded file, as JSON, read from the backup itself
  verify MANIFEST [options]    compare a restored database and upload tree with a
                               manifest; exit 1 naming every difference
  mariadb-swap STEP DATABASE --client CMD
                               the restore's table swap, in one RENAME TABLE: "swap"
                               moves DATABASE's tables into DATABASE_prerestore and
                               those of DATABASE_restore into DATABASE; "unswap" puts
                               them back. Prints one JSON object (step, database,
                               changed, moved, statements); exit 0 also when there was
                               nothing to move, 1 when the client failed

Sources for counts: --sqlite FILE (opened immutable, nothing written beside it),
--dump FILE.sql.gz (a mariadb-dump taken with --skip-extended-insert: one INSERT per row)
or --counts-tsv FILE (lines "table<TAB>count", e.g. from `mariadb -N -B`) or
--mariadb-schema SCHEMA --client CMD (counted in the live server). Upload
checksums come from a directory (--uploads DIR) or, at backup time, from the tar that
holds them (--uploads-tar FILE), so the manifest describes exactly what was saved.

With ATTACHMENT_STORE=database the attachments are rows of the attachment_blobs table:
the database copy or dump holds them and they are counted like every other table (the
dump escapes their newlines, so one INSERT is still one line). The uploads directory
then holds only files from before the switch that `noticeboard attachments import` has
not moved yet, and its tar is usually empty.

--client CMD is a shell command that runs the mariadb client as an account allowed to
read and rename tables in DATABASE, DATABASE_restore and DATABASE_prerestore: it reads
SQL on stdin and prints tab-separated rows without column names (`mariadb --batch
--skip-column-names`), e.g. through `docker compose exec -T mariadb ...`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sqlite3
import subprocess
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


class ClientError(RuntimeError):
    """The mariadb client command failed; the message holds its last line of stderr."""


def quote_name(name: str) -> str:
    """A MariaDB identifier in backticks (a backtick in it doubled)."""
    return "`" + name.replace("`", "``") + "`"


def quote_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_sql(client: str, sql: str) -> list[list[str]]:
    """Run ``sql`` through the client command; its output rows, split at tabs."""
    done = subprocess.run(  # noqa: S602 - the command is the operator's, as in the role
        client, shell=True, input=sql, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ClientError(f"the mariadb client exited with {done.returncode}: {last}")
    return [line.split("\t") for line in done.stdout.splitlines() if line]


def list_tables(client: str, schemas: list[str]) -> dict[str, list[str]]:
    """The base tables of each schema, sorted by name (an absent schema has none)."""
    found: dict[str, list[str]] = {schema: [] for schema in schemas}
    # The client takes no bound parameters: every name is quoted by quote_text/quote_name.
    listed = ", ".join(map(quote_text, schemas))
    rows = run_sql(
        client,
        "SELECT table_schema, table_name FROM information_schema.tables"  # noqa: S608
        f" WHERE table_type = 'BASE TABLE' AND table_schema IN ({listed});\n",
    )
    for schema, table in rows:
        found[schema].append(table)
    return {schema: sorted(tables) for schema, tables in found.items()}


def swap_plan(step: str, database: str, tables: dict[str, list[str]]) -> dict:
    """What ``mariadb-swap`` does: the moves and the statements, from the listed tables.

    swap    only when DATABASE_restore holds tables (a loaded dump): DATABASE_prerestore
            is made afresh, then DATABASE's tables go there and the restored ones into
            DATABASE, in one RENAME TABLE (atomic: the app never sees half of each)
    unswap  only when DATABASE_prerestore holds tables: DATABASE's tables go back to
            DATABASE_restore and the pre-restore ones into DATABASE
    """
    restore, previous = f"{database}_restore", f"{database}_prerestore"
    if step == "swap":
        source, aside = restore, previous
    elif step == "unswap":
        source, aside = previous, restore
    else:
        raise ValueError(f"unknown step {step!r}: swap or unswap")
    moves = [
        (database, aside, tables.get(database, [])),
        (source, database, tables.get(source, [])),
    ]
    plan = {"step": step, "database": database, "changed": False, "moved": {}, "statements": []}
    if not tables.get(source):
        return plan
    pairs = [
        f"{quote_name(src)}.{quote_name(t)} TO {quote_name(dst)}.{quote_name(t)}"
        for src, dst, names in moves
        for t in names
    ]
    statements = []
    if step == "swap":
        statements += [
            f"DROP DATABASE IF EXISTS {quote_name(previous)}",
            f"CREATE DATABASE {quote_name(previous)}",
        ]
    statements.append("RENAME TABLE " + ", ".join(pairs))
    plan.update(
        changed=True,
        moved={f"{src} -> {dst}": names for src, dst, names in moves},
        statements=statements,
    )
    return plan


def cmd_mariadb_swap(args: argparse.Namespace) -> int:
    schemas = [args.database, f"{args.database}_restore", f"{args.database}_prerestore"]
    try:
        plan = swap_plan(args.step, args.database, list_tables(args.client, schemas))
        if plan["changed"]:
            run_sql(args.client, "".join(f"{statement};\n" for statement in plan["statements"]))
    except ClientError as exc:
        print(json.dumps({"step": args.step, "database": args.database, "error": str(exc)}))
        print(f"noticeboard-backup: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(plan, sort_keys=True))
    return 0


def mariadb_counts(client: str, schema: str, names: list[str]) -> dict[str, int]:
    """Row counts of the tables ``names`` that exist in ``schema``, counted in the server."""
    present = set(list_tables(client, [schema])[schema])
    wanted = [t for t in sorted(names) if t in present]
    if not wanted:
        return {}
    query = " UNION ALL ".join(
        f"SELECT {quote_text(t)}, COUNT(*) FROM {quote_name(schema)}.{quote_name(t)}"  # noqa: S608
        for t in wanted
    )
    return {table: int(count) for table, count in run_sql(client, query + ";\n")}


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
    if getattr(args, "mariadb_schema", None):
        expected = json.loads(Path(args.manifest).read_text())["tables"]
        return mariadb_counts(args.client, args.mariadb_schema, list(expected)), None
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
    if args.sqlite or args.dump or args.counts_tsv or args.mariadb_schema:
        try:
            counts = read_counts(args)[0]
        except ClientError as exc:
            print(f"cannot count the rows in {args.mariadb_schema}: {exc}")
            return 1
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
        else:
            cmd.add_argument("--mariadb-schema", help="count the rows in this live schema")
            cmd.add_argument("--client", help="the mariadb client command (with --mariadb-schema)")
    swap = sub.add_parser("mariadb-swap")
    swap.add_argument("step", choices=("swap", "unswap"))
    swap.add_argument("database")
    swap.add_argument("--client", required=True, help="the mariadb client command")
    args = parser.parse_args()
    if args.command == "sqlite-backup":
        sqlite_backup(args.src, args.dst)
        return 0
    if args.command == "verify" and args.mariadb_schema and not args.client:
        parser.error("--mariadb-schema needs --client")
    if args.command == "mariadb-swap":
        return cmd_mariadb_swap(args)
    return cmd_manifest(args) if args.command == "manifest" else cmd_verify(args)


if __name__ == "__main__":
    sys.exit(main())

"""The role's backup helper on a real mariadb-dump holding attachments (ATTACHMENT_STORE=database).

backup_mariadb.yml dumps with --skip-extended-insert and the helper counts one INSERT per
line; attachment bytes (newlines, quotes, NULs, every byte value) must neither break that
count nor the restore that pipes the dump into the mariadb client.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from conftest import new_database

from noticeboard import migrate

HELPER = (
    Path(__file__).resolve().parents[2] / "roles" / "backup" / "files" / "noticeboard-backup.py"
)

BLOBS = {
    "a" * 32: bytes(range(256)) * 400,
    "b" * 32: b"\0\n\r'\"\\\x1a;\nINSERT INTO `notes` VALUES (1);\n" * 500,
    "c" * 32: os.urandom(300_000),
}


def dump(url: str, out: Path) -> None:
    name = sa.make_url(url).database
    result = subprocess.run(
        [
            "mariadb-dump",
            "--user=root",
            "--single-transaction",
            "--skip-extended-insert",
            "--no-tablespaces",
            "--quick",
            name,
        ],
        capture_output=True,
        check=True,
    )
    out.write_bytes(gzip.compress(result.stdout))


def test_manifest_counts_attachment_rows_and_the_dump_restores_them(tmp_path):
    with new_database("mariadb", tmp_path) as source, new_database("mariadb", tmp_path) as copy:
        migrate.upgrade(source)
        engine = sa.create_engine(source)
        with engine.begin() as conn:
            for key, data in BLOBS.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO attachment_blobs (attachment_key, data, size, created_at) "
                        "VALUES (:k, :d, :s, '2026-01-01 00:00:00')"
                    ),
                    {"k": key, "d": data, "s": len(data)},
                )
        engine.dispose()
        backup = tmp_path / "mariadb.sql.gz"
        dump(source, backup)

        manifest = tmp_path / "manifest.json"
        made = subprocess.run(
            [sys.executable, str(HELPER), "manifest", str(manifest), f"--dump={backup}"],
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr
        written = json.loads(manifest.read_text())
        assert written["tables"]["attachment_blobs"] == len(BLOBS)
        assert written["tables"]["notes"] == 0
        assert written["revision"] == migrate.head_revision()

        restored = subprocess.run(
            ["mariadb", "--user=root", sa.make_url(copy).database],
            input=gzip.decompress(backup.read_bytes()),
            capture_output=True,
        )
        assert restored.returncode == 0, restored.stderr
        engine = sa.create_engine(copy)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT attachment_key, data FROM attachment_blobs"))
            assert {key: bytes(data) for key, data in rows} == BLOBS
        engine.dispose()
        checked = subprocess.run(
            [sys.executable, str(HELPER), "verify", str(manifest), f"--dump={backup}"],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

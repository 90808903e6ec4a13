"""upgrade.yml under load, then rollback.yml, on the cluster.

While a load generator (loadgen.py, a process of its own on the lb host, bounded in time
and in requests) reads, writes, uploads and holds 50 event streams through the load
balancer, upgrade.yml moves both app hosts from v1 to upgrade-v2 (v1 plus an expand-only
migration), one at a time. Not one request may fail, every acknowledged write must be in
the database afterwards, every stream must receive the event of every write (resuming
with Last-Event-ID when its server was drained), and every upload must download through
the load balancer byte for byte as it was sent. rollback.yml then brings v1 back with the
backup taken before the migration. Each test asks the fixtures for the release it starts
from (v1 serving; an upgrade done), so either runs alone too.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from conftest import (
    APP_DIR,
    IMAGE,
    IN_HOST_TLS,
    LB_NAME,
    LB_URL,
    UPGRADE_TAG,
    both_servers_up,
    group,
    revision,
    running_image,
    sql,
    upload,
    via_lb,
)
from verifylib import Load, run_playbook, session_cookie

STREAMS = 50

# Runs inside the lb host: downloads each note's attachment TIMES times through the load
# balancer (its servers take turns), with the Cookie header COOKIE ("" for none); prints
# {note id: ["<status> <sha256>", ...]}.
DOWNLOAD = (
    IN_HOST_TLS
    + """
import hashlib, json, sys, urllib.error, urllib.request
url, host, times, ids, cookie = sys.argv[1:6]
headers = {"Host": host, **({"Cookie": cookie} if cookie else {})}
seen = {}
for note in ids.split(","):
    for _ in range(int(times)):
        req = urllib.request.Request(f"{url}/api/notes/{note}/attachment", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
                digest = hashlib.sha256(r.read()).hexdigest()
            seen.setdefault(note, []).append(f"{r.status} {digest}")
        except urllib.error.HTTPError as e:
            seen.setdefault(note, []).append(f"{e.code} -")
print(json.dumps(seen))
"""
)


def note_columns(db) -> set[str]:
    rows = sql(
        db,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'noticeboard' AND table_name = 'notes'",
    )
    return {row[0] for row in rows}


def upgrades_logged(apps) -> int:
    """Migrations upgrade.yml recorded in the app hosts' migrations.log."""
    logs = [app.file(f"{APP_DIR}/migrations.log") for app in apps]
    return sum(log.content_string.count("(upgrade.yml)") for log in logs if log.exists)


def upload_several(lb, prefix: str, count: int) -> dict[str, str]:
    """COUNT notes with attachments of different sizes; {note id: sha256 of what was sent}."""
    sums = {}
    for i in range(count):
        note, digest = upload(lb, f"{prefix}-{i}.bin", 4096 + 977 * i)
        sums[str(note["id"])] = digest
    return sums


def wrong_downloads(lb, sums: dict[str, str], times: int = 2) -> dict[str, list[str]]:
    """Downloads through the load balancer that did not give back the bytes uploaded."""
    ids, cookie = ",".join(sums), session_cookie(lb, LB_URL, host_header=LB_NAME)
    out = lb.check_output(
        "python3 -c %s %s %s %s %s %s", DOWNLOAD, LB_URL, LB_NAME, str(times), ids, cookie
    )
    seen = json.loads(out)
    return {note: got for note, got in seen.items() if got != [f"200 {sums[note]}"] * times} | {
        note: ["never asked"] for note in sums if note not in seen
    }


# Two playbook runs under load: minutes on a busy machine.
@pytest.mark.timeout(1800)
def test_a_rolling_upgrade_under_load_fails_no_request_and_loses_nothing(lb, apps, db, v1_serving):
    assert {running_image(app) for app in apps} == {f"{IMAGE}:v1"}
    revision_before, columns_before = revision(db), note_columns(db)
    upgrades_before = upgrades_logged(apps)
    tag = f"upgrade-load-{uuid.uuid4().hex[:8]}"
    uploaded = upload_several(lb, f"{tag}-before", 3)
    # The check below can see a wrong byte, and sees none before the upgrade.
    assert wrong_downloads(lb, uploaded) == {}
    since = int(sql(db, "SELECT COALESCE(MAX(id), 0) FROM events")[0][0])

    # Bounds: well above an upgrade on a busy machine, far below the hang guard.
    load = Load(
        lb,
        url=LB_URL,
        site=LB_NAME,
        since=since,
        tag=tag,
        streams=STREAMS,
        pause=0.5,
        upload_every=10,
        max_seconds=900,
        max_requests=30000,
        settle=60,
    )
    with load:
        started = time.monotonic()
        done = run_playbook("upgrade", "-e", f"noticeboard_image_tag={UPGRADE_TAG}", ok=None)
        upgrade_seconds = time.monotonic() - started
    result, streams = load.result, load.result["streams"]
    writes = {note_id: title for note_id, title in result["writes"]}
    summary = {
        "upgrade_seconds": round(upgrade_seconds, 1),
        "upgrade_rc": done.returncode,
        **{k: v for k, v in result.items() if k not in ("writes", "uploads")},
        "writes": len(writes),
        "uploads": len(result["uploads"]),
    }
    print("load:", json.dumps(summary))
    # The benchmark (bench/rolling.py) reads the figures of this run, also of a failed one.
    if os.environ.get("NB_ROLLING_REPORT"):
        Path(os.environ["NB_ROLLING_REPORT"]).write_text(json.dumps(summary, indent=2) + "\n")

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    # One host at a time: a play batch per app host.
    batches = [line for line in done.stdout.splitlines() if line.startswith("PLAY [Switch the")]
    assert len(batches) == len(apps), batches

    # The load did its work, through the whole upgrade, and not one request failed.
    assert result["failed"] == 0, result["failures"]
    assert len(writes) > 0 and result["reads"] > 0 and result["uploads"], result["requests"]
    assert streams["opened"] == streams["clients"] == STREAMS, streams

    # Every acknowledged write is stored, and nothing else was written under its tag.
    rows = sql(db, f"SELECT id, title FROM notes WHERE title LIKE '{tag}-w%'")  # noqa: S608
    assert {int(note_id): title for note_id, title in rows} == writes

    # Every stream received the event of every write, in order and once; each was cut by a
    # drain at least once (both servers were drained in turn) and resumed from its last id.
    assert streams["missed"] == 0, streams["missed_sample"]
    assert streams["delivered"] == len(writes) * STREAMS, streams
    assert streams["not_increasing"] == 0, streams
    assert streams["resumed"] == STREAMS, streams

    # Uploads from before and during the upgrade download byte for byte as sent.
    assert wrong_downloads(lb, uploaded | result["uploads"]) == {}

    # Both hosts run the new release, the schema moved once and only expanded, and the
    # load balancer sends to both again.
    assert {running_image(app) for app in apps} == {f"{IMAGE}:{UPGRADE_TAG}"}
    assert revision(db) != revision_before
    assert note_columns(db) == columns_before | {"edited_at"}
    # Migrated once: one more line in the log of the host that ran the migration.
    assert upgrades_logged(apps) == upgrades_before + 1
    assert both_servers_up(lb) == dict.fromkeys(group("app"), "UP")
    for app in apps:
        record = json.loads(app.file(f"{APP_DIR}/release-previous.json").content_string)
        assert record["image"] == f"{IMAGE}:v1", record
        assert (record["revision_before"], record["revision_after"]) == (
            revision_before,
            revision(db),
        )


@pytest.mark.timeout(1800)
def test_rollback_brings_back_v1_and_the_schema_before_the_upgrade(lb, apps, db, upgraded):
    record = json.loads(apps[0].file(f"{APP_DIR}/release-previous.json").content_string)
    assert record["image"] == f"{IMAGE}:v1"
    run_playbook("rollback")
    assert {running_image(app) for app in apps} == {f"{IMAGE}:v1"}
    assert revision(db) == record["revision_before"]
    assert "edited_at" not in note_columns(db)
    assert both_servers_up(lb) == dict.fromkeys(group("app"), "UP")
    assert via_lb(lb, "GET", "/readyz").status == 200
    for app in apps:
        assert not app.file(f"{APP_DIR}/release-previous.json").exists
        assert app.file(f"{APP_DIR}/release-rolled-back.json").exists

"""What the app role promises: a locked-down deployment that answers /readyz, migrates
once, and keeps its data across a re-run and an upgrade to another image tag."""

from __future__ import annotations

import json

import pytest
from conftest import (
    AFTER,
    APP_URL,
    BEFORE,
    DIR,
    HOST,
    IMAGE,
    all_notes,
    app_http,
    backup_sets,
    container_image,
    ensure_release,
    playbook,
    readiness,
    release_record,
    started,
    upload,
    upload_sums,
)
from verifylib import admin_credentials, converge, group_inventory, http, run_playbook


def test_the_secret_is_a_file_only_the_containers_user_reads(host):
    key = host.file(f"{DIR}/secrets/secret_key")
    assert (key.uid, key.group, key.mode) == (10001, "root", 0o400)
    assert key.content_string.startswith("molecule-only-")
    env = host.file(f"{DIR}/app.env")
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert "SECRET_KEY=" not in env.content_string
    assert "SECRET_KEY_FILE=/run/secrets/secret_key" in env.content_string
    assert "GUNICORN_WORKERS=1" in env.content_string


def test_compose_file_is_rendered_for_the_chosen_image(host):
    compose = host.file(f"{DIR}/compose.yml")
    assert compose.content_string.startswith("#")
    assert "image: registry:5000/nb-molecule/noticeboard:v1" in compose.content_string
    assert host.check_output(f"docker compose --project-directory {DIR} config --services") == "app"


def test_data_lives_on_the_host_owned_by_the_image_user(host):
    data = host.file(f"{DIR}/data")
    assert data.uid == 10001 and data.mode == 0o750
    assert host.file(f"{DIR}/data/noticeboard.db").exists


def test_the_system_user_exists_without_a_login_shell(host):
    user = host.user("noticeboard")
    assert user.shell == "/usr/sbin/nologin"


def test_the_migration_ran_exactly_once(host):
    log = host.file(f"{DIR}/migrations.log").content_string.strip().splitlines()
    assert len(log) == 1, log


def test_the_app_answers_readyz(host):
    assert app_http(host, "GET", "/readyz").status == 200


def test_the_container_is_healthy_and_hardened(host):
    state = json.loads(host.check_output("docker inspect noticeboard-app-1"))[0]
    assert state["State"]["Health"]["Status"] == "healthy"
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["HostConfig"]["CapDrop"] == ["ALL"]
    assert state["Config"]["User"] == "10001:10001"
    # Checked every 2 s after a start until the first success, then every 10 s (in ns).
    check = state["Config"]["Healthcheck"]
    assert (check["StartInterval"], check["Interval"]) == (2 * 10**9, 10 * 10**9), check


@pytest.mark.timeout(900)
def test_a_rerun_changes_nothing(host, on_v1):
    before = host.check_output("docker inspect -f '{{.Id}}' noticeboard-app-1")
    assert converge().counter(HOST) == 0
    assert host.check_output("docker inspect -f '{{.Id}}' noticeboard-app-1") == before


# Run by the host's python3 with the SQLite file as argv[1]: the file as a board that ran
# open until now leaves it, at head with no account at all.
FORGET_ACCOUNTS = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.execute("DELETE FROM users")
db.commit()
"""


@pytest.mark.timeout(900)
def test_a_board_at_head_without_an_admin_gets_the_inventorys_first_admin(host, on_v1):
    sign_in = f"{APP_URL}/api/session"
    host.check_output("python3 -c %s %s", FORGET_ACCOUNTS, f"{DIR}/data/noticeboard.db")
    refused = http(host, "POST", sign_in, admin_credentials(), signed_out=True)
    assert refused.status == 401, refused.text[:300]

    # No migration is due (the schema is at head); the same job creates the admin.
    migrations = host.file(f"{DIR}/migrations.log").content_string
    run = converge()
    created = [t for t in run.changed_tasks() if "create a missing first admin" in t]
    assert created, run.changed_tasks()
    assert host.file(f"{DIR}/migrations.log").content_string == migrations
    signed_in = http(host, "POST", sign_in, admin_credentials(), signed_out=True)
    assert signed_in.status == 200, signed_in.text[:300]
    assert signed_in.body["role"] == "admin", signed_in.body
    # Once it exists, the next run leaves it alone.
    assert converge().counter(HOST) == 0


@pytest.mark.timeout(900)
def test_data_survives_an_upgrade_to_a_second_tag(host, on_v1):
    note = app_http(host, "POST", "/api/notes", {"title": "kept", "body": "across the upgrade"})
    assert note.status in (200, 201), note.body
    out = converge("-e", "noticeboard_image_tag=v2")
    assert out.counter(HOST) > 0
    assert container_image(host) == "registry:5000/nb-molecule/noticeboard:v2"
    assert app_http(host, "GET", "/readyz").status == 200
    notes = app_http(host, "GET", "/api/notes").body
    assert [n["body"] for n in notes["notes"] if n["title"] == "kept"] == ["across the upgrade"]
    # Same schema in both tags: nothing to migrate, so no second migration and no backup.
    assert len(host.file(f"{DIR}/migrations.log").content_string.strip().splitlines()) == 1
    assert converge("-e", "noticeboard_image_tag=v2").counter(HOST) == 0


# --- backup.yml, restore.yml, upgrade.yml and rollback.yml on this one (SQLite) host ---


# Each of these runs whole playbooks; on a busy machine one takes minutes.
@pytest.mark.timeout(900)
def test_backup_then_restore_brings_back_rows_and_uploads(host):
    for i in range(3):
        upload(host, f"file {i}", f"f{i}.txt", f"x{i}" * 500)
    app_http(host, "POST", "/api/notes", {"body": "plain note before the backup"})
    notes_before, sums_before = all_notes(host), upload_sums(host)
    sets_before = backup_sets(host)

    out = playbook("backup")
    assert "Backup " in out
    new_sets = sorted(set(backup_sets(host)) - set(sets_before))
    assert len(new_sets) == 1, new_sets
    stamp = new_sets[0]
    manifest = host.file(f"/var/backups/noticeboard/{stamp}/manifest.json").content_string
    manifest = json.loads(manifest)
    assert manifest["tables"]["notes"] == len(notes_before)
    assert len(manifest["uploads"]) == len(sums_before.splitlines()) >= 3
    assert host.file(f"/var/backups/noticeboard/{stamp}").mode == 0o700

    # Changes after the backup: one note more, one (with its file) less.
    victim = next(n for n in notes_before if n["attachment"] and n["body"].startswith("file "))
    app_http(host, "POST", "/api/notes", {"body": "written after the backup"})
    app_http(host, "DELETE", f"/api/notes/{victim['id']}")
    assert upload_sums(host) != sums_before

    playbook("restore", "-e", f"noticeboard_restore_backup={stamp}")
    assert all_notes(host) == notes_before
    assert upload_sums(host) == sums_before
    readiness(host)
    served = app_http(host, "GET", victim["attachment"]["url"])
    assert (served.status, served.text) == (200, f"x{victim['body'].removeprefix('file ')}" * 500)


@pytest.mark.timeout(600)
def test_restore_refuses_an_unknown_set_without_stopping_the_app(host):
    before = host.check_output("docker inspect -f '{{.State.StartedAt}}' noticeboard-app-1")
    out = playbook("restore", "-e", "noticeboard_restore_backup=20000101T000000Z", ok=False)
    assert "has no backup set '20000101T000000Z'" in out
    assert host.check_output("docker inspect -f '{{.State.StartedAt}}' noticeboard-app-1") == before


@pytest.mark.timeout(900)
def noticeboard_images(host) -> dict[str, str]:
    """Tag -> image ID, for every tag of the app's repository on the host."""
    out = host.check_output("docker image ls --no-trunc --format '{{.Tag}} {{.ID}}' %s", IMAGE)
    return dict(line.split() for line in out.splitlines())


# The first of two upgrades (v1b -> v2, then v2 -> v3 below): v1b is what rollback.yml
# would return to, so pruning keeps it.
@pytest.mark.timeout(900)
def test_an_upgrade_keeps_the_image_rollback_would_return_to(host):
    ensure_release(host, "v1b")
    prior = noticeboard_images(host)["v1b"]
    playbook("upgrade", "-e", "noticeboard_image_tag=v2")
    assert container_image(host) == f"{IMAGE}:v2"
    assert release_record(host)["image"] == f"{IMAGE}:v1b"
    assert noticeboard_images(host)["v1b"] == prior


def test_upgrade_runs_the_migration_once_and_keeps_the_data(host, on_v2):
    notes_before, sums_before = all_notes(host), upload_sums(host)
    assert readiness(host)["revision"] == BEFORE
    out = playbook("upgrade", "-e", "noticeboard_image_tag=v3")
    assert container_image(host) == "registry:5000/nb-molecule/noticeboard:v3"
    assert readiness(host)["revision"] == AFTER
    assert all_notes(host) == notes_before
    assert upload_sums(host) == sums_before
    log = host.file(f"{DIR}/migrations.log").content_string.strip().splitlines()
    assert len(log) == 2 and f"{BEFORE} -> {AFTER} (upgrade.yml)" in log[-1], log
    record = json.loads(host.file(f"{DIR}/release-previous.json").content_string)
    assert record["image"] == "registry:5000/nb-molecule/noticeboard:v2"
    assert (record["revision_before"], record["revision_after"]) == (BEFORE, AFTER)
    assert record["backup"] in backup_sets(host)
    assert "failed=0" in out


# After the second upgrade (v2 -> v3): only the running image and the one rollback.yml
# returns to (v2, which v1 shares) are left; v1b, the oldest, is gone. The rollback test
# below then returns to v2.
def test_after_two_upgrades_only_the_running_and_the_rollback_image_remain(host, upgraded_to_v3):
    images = noticeboard_images(host)
    running = host.check_output("docker inspect -f '{{.Image}}' noticeboard-app-1")
    assert images["v3"] == running
    assert set(images.values()) == {running, images["v2"]}, images
    assert "v1b" not in images
    untagged = (
        "docker image ls -q -f dangling=true -f label=org.opencontainers.image.title=noticeboard"
    )
    assert host.check_output(untagged) == ""


@pytest.mark.timeout(900)
def test_rollback_returns_to_the_previous_image_and_the_pre_migration_backup(host, upgraded_to_v3):
    notes_at_upgrade = all_notes(host)
    app_http(host, "POST", "/api/notes", {"body": "written on v3, gone after the rollback"})
    # The preview says where it would go and changes nothing.
    record, was_started = release_record(host), started(host)
    preview = playbook("rollback", "--check")
    assert (
        f"Check mode: rollback.yml would switch {HOST} back from {IMAGE}:v3 to {IMAGE}:v2 and "
        f"restore the backup set {record['backup']} taken before its upgrade migrated "
        f"{BEFORE} -> {AFTER}"
    ) in preview, preview[-3000:]
    assert (container_image(host), started(host)) == (f"{IMAGE}:v3", was_started)
    assert release_record(host) == record
    playbook("rollback")
    assert container_image(host) == "registry:5000/nb-molecule/noticeboard:v2"
    assert readiness(host)["revision"] == BEFORE
    assert all_notes(host) == notes_at_upgrade
    assert host.file(f"{DIR}/release-rolled-back.json").exists
    assert not host.file(f"{DIR}/release-previous.json").exists
    # Nothing left to roll back: said so, and nothing changes.
    was_started = started(host)
    again = run_playbook("rollback", inventories=[group_inventory(HOST, ["app"])])
    assert "Nothing to roll back on nb-mol-app" in again.said
    assert "no upgrade.yml switched it" in again.said
    assert again.counter(HOST) == 0, again.changed_tasks()
    assert started(host) == was_started

"""Previews and runs with nothing to do, on the converged host (issue 18).

`--check` on every playbook changes nothing (containers with their image ids and start
times, the files under the app's and the backups' directories with their checksums, the
engine's images, the packages) and says what a real run would do; `--diff` prints no
secret. An upgrade to the image that already runs, and a rollback with nothing to roll
back, say so and change nothing. The fresh host's half of the table is in the
docker_engine scenario (tests/test_uninstalled_host_check_mode.py).
"""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import AFTER, BEFORE, DIR, HOST, IMAGE, backup_sets, playbook, release_record, started
from verifylib import ensure, group_inventory, host_state, playbook_path, run_playbook, variables

BACKUPS = "/var/backups/noticeboard"


def run(name: str, *extra: str, **options):
    """A collection playbook (or several, as EXTRA paths) against this host in `app`."""
    return run_playbook(name, *extra, inventories=[group_inventory(HOST, ["app"])], **options)


@pytest.fixture
def on_v2_with_a_backup(host, on_v2) -> None:
    """Release v2 and at least one backup set for restore.yml to find."""
    ensure("a backup set", lambda: bool(backup_sets(host)), lambda: playbook("backup"))


@pytest.mark.timeout(900)
def test_check_mode_on_the_converged_host_changes_nothing_and_prints_no_secret(
    host, on_v2_with_a_backup
):
    # A record naming the image that runs: rollback.yml has nothing to roll back.
    assert release_record(host) is None
    record = {
        "image": f"{IMAGE}:v2",
        "upgraded_to": f"{IMAGE}:v3",
        "revision_before": BEFORE,
        "revision_after": AFTER,
        "backup": backup_sets(host)[-1],
        "at": "2026-01-01T00:00:00Z",
    }
    host.check_output(f"echo {json.dumps(json.dumps(record))} > {DIR}/release-previous.json")
    try:
        before = host_state(host, DIR, BACKUPS)
        old_secret = variables(HOST, "noticeboard_secret_key")["noticeboard_secret_key"]
        new_secret = "diff-must-not-show-" + secrets.token_urlsafe(24)
        # Check runs change nothing, so they may run side by side.
        with ThreadPoolExecutor(3) as pool:
            # The host runs v2, as the inventory says after rollback.yml's advice.
            site = pool.submit(
                run, "site", "--diff", "-e", "noticeboard_image_tag=v2", check_mode=True
            )
            # One process for four playbooks (named one after the other, before any option).
            others = pool.submit(
                run, "upgrade", *(playbook_path(p) for p in ("backup", "restore", "rollback")),
                "--check", "-e", "noticeboard_image_tag=v3",
            )  # fmt: skip
            # The env file would change (a new key): --diff must show neither key.
            secret = pool.submit(
                run, "deploy", "--diff", "--tags", "noticeboard_configure",
                extra_vars={"noticeboard_secret_key": new_secret, "noticeboard_image_tag": "v2"},
                check_mode=True,
            )  # fmt: skip
            site, others, secret = site.result(), others.result(), secret.result()
        assert host_state(host, DIR, BACKUPS) == before
    finally:
        host.check_output(f"rm -f {DIR}/release-previous.json")

    # site.yml (and the deploy.yml it imports) on the host as it converged: nothing to do.
    assert site.counter(HOST) == 0, site.changed_tasks()
    assert "Fail clearly when Compose v2 is missing or too old" in site.output

    said = others.said
    assert others.counter(HOST) == 0, others.changed_tasks()
    assert f"Check mode: upgrade.yml would switch {HOST} from {IMAGE}:v2 to {IMAGE}:v3" in said, (
        said[-4000:]
    )
    assert f"Check mode: a backup of {HOST} would save the SQLite database" in said
    assert f"Check mode: restoring backup set {backup_sets(host)[-1]} (sqlite," in said
    assert (
        f"Nothing to roll back on {HOST}: its {DIR}/release-previous.json names {IMAGE}:v2" in said
    )

    assert secret.counter(HOST) >= 1, "the new key would be written"
    assert old_secret not in secret.output
    assert new_secret not in secret.output


@pytest.mark.timeout(900)
def test_an_upgrade_to_the_image_that_runs_does_nothing(host, on_v2):
    was_started, sets, log = (
        started(host),
        backup_sets(host),
        host.file(f"{DIR}/migrations.log").content_string,
    )
    out = run("upgrade", "-e", "noticeboard_image_tag=v2")
    assert f"Nothing to do: every app host already runs {IMAGE}:v2 (sha256:" in out.said
    assert out.counter(HOST) == 0, out.changed_tasks()
    # No restart, no backup, no migration, no record for rollback.yml.
    assert started(host) == was_started
    assert backup_sets(host) == sets
    assert host.file(f"{DIR}/migrations.log").content_string == log
    assert release_record(host) is None

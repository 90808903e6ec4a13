"""What playbooks/uninstall.yml promises on an app host: the app goes, its data stays (and
a deployment finds it again), a second run changes nothing, a purge deletes the data.

Runs after test_app.py (files run in name order) on whatever that left; each test first
brings the host to the state it starts from, and does nothing when the state holds.
"""

from __future__ import annotations

import re

import pytest
from conftest import DIR, HOST, IMAGE, all_notes, app_http, playbook, upload, upload_sums

BACKUPS = "/var/backups/noticeboard"
HELPER = "/usr/local/sbin/noticeboard-backup"
NOTE = "written before the uninstall"


def changed(out: str) -> int:
    """The host's changed= count from the play recap of playbook()'s output."""
    found = re.findall(rf"{HOST} : ok=\d+ changed=(\d+)", out)
    assert found, out[-3000:]
    return int(found[-1])


def installed(host) -> bool:
    return host.file(f"{DIR}/compose.yml").exists


def app_running(host) -> bool:
    state = host.run("docker inspect --format '{{.State.Running}}' noticeboard-app-1")
    return state.rc == 0 and state.stdout.strip() == "true"


def ensure_deployed_with_a_note(host) -> None:
    if not installed(host) or not app_running(host):
        playbook("deploy")
    if not any(n["body"] == NOTE for n in all_notes(host)):
        upload(host, NOTE, "kept.txt", "kept" * 100)


def ensure_uninstalled_keeping_a_note(host) -> None:
    # An uninstalled host (no compose file) got here through the tests above, which wrote
    # the note before they uninstalled.
    if installed(host):
        ensure_deployed_with_a_note(host)
        playbook("uninstall")


def project_leftovers(host) -> str:
    label = "label=com.docker.compose.project=noticeboard"
    return host.check_output(
        f"docker ps --all --quiet --filter {label}; docker network ls --quiet --filter {label}"
    )


def docker_runs(host) -> bool:
    return (
        host.service("docker").is_running
        and host.run("docker version --format '{{.Server.Version}}'").rc == 0
    )


@pytest.mark.timeout(900)
def test_uninstall_removes_the_app_and_keeps_its_data(host):
    ensure_deployed_with_a_note(host)
    if not host.check_output(f"ls {BACKUPS}"):
        playbook("backup")
    sums = upload_sums(host)
    sets = host.check_output(f"ls {BACKUPS}")
    assert host.user("noticeboard").exists and host.file(HELPER).exists

    # --check changes nothing and does not fail on a full installation.
    playbook("uninstall", "--check")
    assert app_running(host)
    assert host.file(f"{DIR}/app.env").exists

    out = playbook("uninstall")
    assert changed(out) > 0
    assert project_leftovers(host) == ""
    assert host.check_output(f"docker image ls --quiet {IMAGE}") == ""
    for gone in (f"{DIR}/compose.yml", f"{DIR}/app.env", f"{DIR}/secrets", f"{DIR}/images", HELPER):
        assert not host.file(gone).exists, gone
    assert not host.user("noticeboard").exists
    assert "noticeboard_uninstall_purge_data is true" not in out

    assert host.file(f"{DIR}/data/noticeboard.db").is_file
    assert upload_sums(host) == sums
    assert host.check_output(f"ls {BACKUPS}") == sets
    assert host.file(f"{DIR}/migrations.log").exists
    kept = host.file(DIR)
    assert (kept.user, kept.group) == ("root", "root")
    assert docker_runs(host)


@pytest.mark.timeout(900)
def test_a_second_uninstall_changes_nothing(host):
    ensure_uninstalled_keeping_a_note(host)
    assert changed(playbook("uninstall")) == 0
    assert changed(playbook("uninstall", "--check")) == 0
    # As a host of every group, the load balancer's and MariaDB's steps find nothing either.
    # As on a one-host cluster: the host in the lb, app and db groups at once.
    assert changed(playbook("uninstall", groups=("lb", "app", "db"))) == 0


@pytest.mark.timeout(900)
def test_a_deployment_after_the_uninstall_finds_the_old_data(host):
    ensure_uninstalled_keeping_a_note(host)
    sums = upload_sums(host)
    migrations = host.file(f"{DIR}/migrations.log").content_string

    playbook("deploy")
    assert app_http(host, "GET", "/readyz").status == 200
    assert [n["body"] for n in all_notes(host) if n["body"] == NOTE] == [NOTE]
    assert upload_sums(host) == sums
    # The schema was already at head: nothing migrated.
    assert host.file(f"{DIR}/migrations.log").content_string == migrations


@pytest.mark.timeout(900)
def test_uninstall_with_purge_deletes_the_data(host):
    ensure_deployed_with_a_note(host)
    out = playbook("uninstall", "-e", "noticeboard_uninstall_purge_data=true")
    assert f"WARNING: noticeboard_uninstall_purge_data is true, so {HOST} loses {DIR}" in out
    assert not host.file(DIR).exists
    assert not host.file(BACKUPS).exists
    assert project_leftovers(host) == ""
    assert docker_runs(host)
    assert changed(playbook("uninstall", "-e", "noticeboard_uninstall_purge_data=true")) == 0

"""What a Pi owner gets from site.yml: the arm64 image built on the controller and shipped
(no registry), really running (under QEMU here) behind HAProxy on the same host (HTTPS on
port 443), keeping notes, and its URL printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from verifylib import booted, http, run_playbook, wait_ready

# inventories/pi puts the Pi in `lb` too: the app runs in slot `blue` behind HAProxy.
APP = "noticeboard-blue-1"
APP_URL = "https://127.0.0.1"
SITE = "noticeboard-pi"
# inventories/pi's image: a local name, built by the controller (source `build`).
IMAGE = "noticeboard:0.1.0"
ARCHIVE = Path("~/.cache/noticeboard/images/noticeboard_0.1.0_arm64.tar").expanduser()


def app_http(host, method: str, path: str, body: dict | None = None):
    """Call the app through the proxy from inside the host (an emulated arm64 Python
    answers slowly)."""
    return http(host, method, APP_URL + path, body, host_header=SITE, timeout=30)


@pytest.fixture(scope="module")
def verify_run() -> str:
    """site.yml again, only its verification tasks: what the owner sees at the end."""
    return run_playbook("converge.yml", tags="noticeboard_verify").stdout


def test_the_engine_is_amd64_but_the_app_image_is_arm64(host):
    assert host.check_output("docker info -f '{{.Architecture}}'") == "x86_64"
    image = host.check_output("docker inspect -f '{{.Image}}' %s", APP)
    assert host.check_output("docker image inspect -f '{{.Architecture}}' %s", image) == "arm64"


def test_the_image_came_from_the_controllers_archive_not_a_registry(host):
    image = host.check_output("docker inspect -f '{{.Image}}' %s", APP)
    # The one the controller built and saved for arm64 (its ID beside the archive) ...
    assert image == Path(f"{ARCHIVE}.id").read_text().strip()
    assert host.check_output("docker image inspect -f '{{.Id}}' %s", IMAGE) == image
    # ... loaded, not pulled: a pulled image has a registry digest, a loaded one none.
    assert host.check_output("docker image inspect -f '{{json .RepoDigests}}' %s", image) == "[]"
    # The archive is not kept on the Pi's disk once loaded.
    assert host.run("ls /opt/noticeboard/images/").stdout.strip() == ""


def test_a_second_run_builds_from_the_cache_and_ships_nothing(host):
    before = ARCHIVE.stat().st_mtime
    run = run_playbook("converge.yml", tags="noticeboard_image")
    assert run.counter("noticeboard-pi") == 0, run.changed_tasks()
    assert result_of(run, "Ship the image archive from the controller").startswith("skipping:")
    assert ARCHIVE.stat().st_mtime == before


def result_of(run, task: str) -> str:
    """The first result line under the first TASK line that names TASK."""
    lines = run.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("TASK [") and task in line)
    return next(line for line in lines[at + 1 :] if line.strip())


def test_check_mode_says_what_it_would_build_and_builds_nothing(host):
    before = ARCHIVE.stat().st_mtime
    run = run_playbook("converge.yml", check_mode=True, tags="noticeboard_image")
    assert f"Check mode: the controller would build {IMAGE} for linux/arm64 from" in run.said, (
        run.tail()
    )
    assert result_of(run, "Build the image on the controller for linux/").startswith("skipping:")
    assert run.counter("noticeboard-pi") == 0, run.changed_tasks()
    assert ARCHIVE.stat().st_mtime == before


def test_the_app_really_runs_arm64_code(host):
    assert host.check_output("docker exec %s uname -m", APP) == "aarch64"


def test_the_app_answers_readyz_through_the_proxy(host):
    ready = app_http(host, "GET", "/readyz")
    assert ready.status == 200, ready.body


def test_a_note_round_trips(host):
    note = app_http(host, "POST", "/api/notes", {"title": "on the pi", "body": "arm64"})
    assert note.status in (200, 201), note.body
    notes = app_http(host, "GET", "/api/notes")
    assert notes.status == 200
    assert [n["body"] for n in notes.body["notes"] if n["title"] == "on the pi"] == ["arm64"]


def test_the_url_is_printed(verify_run):
    # inventories/pi's address for the Pi, which the test-bed points at its container.
    # The message names the tag: inventories/pi's own, as shipped.
    assert f"noticeboard {IMAGE.split(':')[1]} is ready at https://noticeboard-pi/" in verify_run


@pytest.mark.timeout(900)
def test_after_a_reboot_docker_and_the_app_come_back_by_themselves(host):
    # The Pi loses power: systemd boots again, and nothing but the units enabled by
    # site.yml and the containers' restart policy bring the board back, with its notes.
    subprocess.run(["docker", "restart", host.check_output("hostname")], check=True, timeout=300)
    state = booted(host)
    assert state == "running", host.run("systemctl --failed").stdout
    assert host.service("docker").is_enabled and host.service("docker").is_running
    # An emulated arm64 Python starts slowly.
    ready = wait_ready(
        host, f"{APP_URL}/readyz", within=600, interval=3, timeout=30, host_header=SITE
    )
    assert ready.status == 200
    notes = app_http(host, "GET", "/api/notes").body
    assert [n["body"] for n in notes["notes"] if n["title"] == "on the pi"] == ["arm64"]

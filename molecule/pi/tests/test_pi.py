"""What a Pi owner gets from site.yml: the arm64 image chosen from the tag's manifest list,
really running (under QEMU here), ready on port 80, keeping notes, and its URL printed."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

APP = "noticeboard-app-1"

# Runs inside the host: method, path and an optional JSON body; prints status, then body.
CLIENT = """
import sys, urllib.error, urllib.request
method, path, body = sys.argv[1:4]
req = urllib.request.Request(
    "http://127.0.0.1:80" + path, data=body.encode() or None, method=method,
    headers={"Content-Type": "application/json", "X-Requested-With": "molecule"})
try:
    r = urllib.request.urlopen(req, timeout=30)
except urllib.error.HTTPError as e:
    r = e
print(r.status)
print(r.read().decode())
"""


def http(host, method: str, path: str, body: dict | None = None):
    """Call the app from inside the host; returns (status, parsed JSON or text)."""
    out = host.check_output(
        "python3 -c %s %s %s %s", CLIENT, method, path, json.dumps(body) if body else ""
    )
    status, _, text = out.partition("\n")
    try:
        return int(status), json.loads(text)
    except ValueError:
        return int(status), text


@pytest.fixture(scope="module")
def verify_run() -> str:
    """site.yml again, only its verification tasks: what the owner sees at the end."""
    cmd = [
        "ansible-playbook",
        "-i",
        # The directory: Molecule's hosts file and inventories/pi's hosts.yml beside it.
        os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"]),
        os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml"),
        "--tags",
        "noticeboard_verify",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done.stdout


def test_the_engine_is_amd64_but_the_app_image_is_arm64(host):
    assert host.check_output("docker info -f '{{.Architecture}}'") == "x86_64"
    image = host.check_output("docker inspect -f '{{.Image}}' %s", APP)
    assert host.check_output("docker image inspect -f '{{.Architecture}}' %s", image) == "arm64"


def test_the_app_really_runs_arm64_code(host):
    assert host.check_output("docker exec %s uname -m", APP) == "aarch64"


def test_the_app_answers_readyz_on_port_80(host):
    status, body = http(host, "GET", "/readyz")
    assert status == 200, body


def test_a_note_round_trips(host):
    status, note = http(host, "POST", "/api/notes", {"title": "on the pi", "body": "arm64"})
    assert status in (200, 201), note
    status, notes = http(host, "GET", "/api/notes")
    assert status == 200
    assert [n["body"] for n in notes["notes"] if n["title"] == "on the pi"] == ["arm64"]


def test_the_url_is_printed(verify_run):
    # inventories/pi's address for the Pi, which the test-bed points at its container.
    assert "noticeboard pi is ready at http://noticeboard-pi/" in verify_run


@pytest.mark.timeout(900)
def test_after_a_reboot_docker_and_the_app_come_back_by_themselves(host):
    # The Pi loses power: systemd boots again, and nothing but the units enabled by
    # site.yml and the containers' restart policy bring the board back, with its notes.
    subprocess.run(["docker", "restart", host.check_output("hostname")], check=True, timeout=300)
    deadline = time.monotonic() + 120  # systemd answers nothing until its bus is up
    while not (state := host.run("systemctl is-system-running --wait").stdout.strip()):
        assert time.monotonic() < deadline, "systemd did not answer after the reboot"
        time.sleep(1)
    assert state == "running", host.run("systemctl --failed").stdout
    assert host.service("docker").is_enabled and host.service("docker").is_running
    deadline = time.monotonic() + 600  # an emulated arm64 Python starts slowly
    while True:
        try:
            status, _ = http(host, "GET", "/readyz")
        except AssertionError:
            status = 0  # nothing listens on port 80 yet
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert status == 200
    status, notes = http(host, "GET", "/api/notes")
    assert [n["body"] for n in notes["notes"] if n["title"] == "on the pi"] == ["arm64"]

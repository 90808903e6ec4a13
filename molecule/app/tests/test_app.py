"""What the app role promises: a locked-down deployment that answers /readyz, migrates
once, and keeps its data across a re-run and an upgrade to another image tag."""

from __future__ import annotations

import json
import os
import subprocess

DIR = "/opt/noticeboard"


# Runs inside the host: method, path and an optional JSON body; prints status, then body.
CLIENT = """
import sys, urllib.error, urllib.request
method, path, body = sys.argv[1:4]
req = urllib.request.Request(
    "http://127.0.0.1:8000" + path, data=body.encode() or None, method=method,
    headers={"Content-Type": "application/json", "X-Requested-With": "molecule"})
try:
    r = urllib.request.urlopen(req, timeout=10)
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


def converge(*extra: str) -> str:
    """Run the scenario's converge playbook again, as a user re-running the deployment."""
    cmd = [
        "ansible-playbook",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml"),
        *extra,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done.stdout


def recap_changed(stdout: str) -> int:
    line = next(row for row in stdout.splitlines() if row.startswith("nb-mol-app"))
    return int(line.split("changed=")[1].split()[0])


def container_image(host) -> str:
    return host.check_output("docker inspect -f '{{.Config.Image}}' noticeboard-app-1")


def test_env_file_holds_the_secret_readable_by_root_only(host):
    env = host.file(f"{DIR}/app.env")
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert "SECRET_KEY=molecule-only-" in env.content_string
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
    status, _ = http(host, "GET", "/readyz")
    assert status == 200


def test_the_container_is_healthy_and_hardened(host):
    state = json.loads(host.check_output("docker inspect noticeboard-app-1"))[0]
    assert state["State"]["Health"]["Status"] == "healthy"
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["HostConfig"]["CapDrop"] == ["ALL"]
    assert state["Config"]["User"] == "10001:10001"


def test_a_rerun_changes_nothing(host):
    before = host.check_output("docker inspect -f '{{.Id}}' noticeboard-app-1")
    assert recap_changed(converge()) == 0
    assert host.check_output("docker inspect -f '{{.Id}}' noticeboard-app-1") == before


def test_data_survives_an_upgrade_to_a_second_tag(host):
    status, note = http(host, "POST", "/api/notes", {"title": "kept", "body": "across the upgrade"})
    assert status in (200, 201), note
    out = converge("-e", "noticeboard_image_tag=v2")
    assert recap_changed(out) > 0
    assert container_image(host) == "registry:5000/nb-molecule/noticeboard:v2"
    status, _ = http(host, "GET", "/readyz")
    assert status == 200
    status, notes = http(host, "GET", "/api/notes")
    assert [n["body"] for n in notes["notes"] if n["title"] == "kept"] == ["across the upgrade"]
    # Same schema in both tags: nothing to migrate, so no second migration and no backup.
    assert len(host.file(f"{DIR}/migrations.log").content_string.strip().splitlines()) == 1
    assert recap_changed(converge("-e", "noticeboard_image_tag=v2")) == 0

"""The app scenario's helpers and the release states its tests ask for.

One host, nb-mol-app, on release v1 after converge. test_app.py moves it to v2 (converge
with another tag), upgrades it to v3 and rolls back; test_uninstall.py removes and
restores the app. A test that needs a release asks a fixture, which acts only when the
host is not there already, so every file and every test also runs alone.
"""

from __future__ import annotations

import json

import pytest
from verifylib import (
    Response,
    app_head_revision,
    converge,
    ensure,
    group_inventory,
    http,
    run_playbook,
)

HOST = "nb-mol-app"
DIR = "/opt/noticeboard"
IMAGE = "registry:5000/nb-molecule/noticeboard"
# The schema revisions of the releases: v1, v1b and v2 are this checkout's image, v3 adds
# one expand-only migration on top of it (files/v3).
BEFORE = app_head_revision()
AFTER = "next_edited_at"
APP_URL = "http://127.0.0.1:8000"


def app_http(host, method: str, path: str, body: dict | None = None) -> Response:
    """Call the app from inside the host."""
    return http(host, method, APP_URL + path, body, timeout=10)


def upload(host, title: str, name: str, data: str) -> int:
    """Post a note with a text attachment from inside the host; its id."""
    sent = http(
        host,
        "POST",
        f"{APP_URL}/api/notes",
        form={"body": title},
        file={"field": "attachment", "name": name, "text": data},
        timeout=10,
    )
    assert sent.status == 201, (sent.status, sent.body)
    return sent.body["id"]


def playbook(name: str, *extra: str, ok: bool = True, groups: tuple[str, ...] = ("app",)) -> str:
    """Run one of the collection's playbooks against this host, put in GROUPS (`app`);
    the output with its line wrapping undone."""
    inventory = group_inventory(HOST, groups)
    return run_playbook(name, *extra, inventories=[inventory], ok=ok).said


def container_image(host) -> str:
    return host.check_output("docker inspect -f '{{.Config.Image}}' noticeboard-app-1")


def started(host) -> str:
    """When the app's container last started: a restart changes it."""
    return host.check_output("docker inspect -f '{{.State.StartedAt}}' noticeboard-app-1")


def all_notes(host) -> list[dict]:
    answer = app_http(host, "GET", "/api/notes?limit=100")
    assert answer.status == 200, answer.body
    return answer.body["notes"]


def upload_sums(host) -> str:
    return host.check_output(f"cd {DIR}/data/uploads && sha256sum * | sort")


def readiness(host) -> dict:
    answer = app_http(host, "GET", "/readyz")
    assert answer.status == 200, answer.body
    return answer.body


def backup_sets(host) -> list[str]:
    return sorted(host.check_output("ls /var/backups/noticeboard").split())


def release_record(host) -> dict | None:
    record = host.file(f"{DIR}/release-previous.json")
    return json.loads(record.content_string) if record.exists else None


# --- the release states ----------------------------------------------------------------


def running(host, tag: str) -> bool:
    state = host.run("docker inspect -f '{{.Config.Image}}' noticeboard-app-1")
    return state.rc == 0 and state.stdout.strip() == f"{IMAGE}:{tag}"


def ensure_release(host, tag: str) -> None:
    """The host runs TAG as a deployment (converge) left it."""
    ensure(
        f"release {tag} deployed",
        lambda: running(host, tag),
        lambda: converge("-e", f"noticeboard_image_tag={tag}"),
    )


@pytest.fixture
def on_v1(host) -> None:
    """Release v1, as converge leaves the host."""
    ensure_release(host, "v1")


@pytest.fixture
def on_v2(host) -> None:
    """Release v2, as test_data_survives_an_upgrade_to_a_second_tag leaves the host."""
    ensure_release(host, "v2")


@pytest.fixture
def upgraded_to_v3(host) -> None:
    """upgrade.yml moved the host from v2 to v3 and nothing rolled it back."""

    def upgrade() -> None:
        ensure_release(host, "v2")
        playbook("upgrade", "-e", "noticeboard_image_tag=v3")

    ensure(
        "an upgrade from v2 to v3",
        lambda: running(host, "v3") and (release_record(host) or {}).get("image") == f"{IMAGE}:v2",
        upgrade,
    )

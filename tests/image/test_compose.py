"""The compose files, run for real: persistence in production, hot reload in development."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from imagetools import ROOT, new_secret_key, wait_http

PROD = ROOT / "docker" / "docker-compose.prod.yml"
DEV = ROOT / "docker" / "docker-compose.yml"
HEADERS = {"X-Requested-With": "test"}


def create_note(base: str, payload: bytes) -> dict:
    response = httpx.post(
        f"{base}/api/notes",
        headers=HEADERS,
        data={"body": "survives restarts\nsecond line"},
        files={"attachment": ("report.bin", payload, "application/octet-stream")},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return response.json()


def assert_note_is_there(base: str, note_id: int, payload: bytes) -> None:
    wait_http(f"{base}/readyz")
    note = httpx.get(f"{base}/api/notes/{note_id}", timeout=30)
    assert note.status_code == 200, note.text
    assert note.json()["body"].startswith("survives restarts")
    attachment = httpx.get(f"{base}/api/notes/{note_id}/attachment", timeout=60)
    assert attachment.status_code == 200
    assert attachment.content == payload


def migrate_exit_codes(project) -> list[int]:
    return [c.get("ExitCode") for c in project.containers("migrate")]


def persistence_round_trip(project) -> None:
    project.up()
    assert migrate_exit_codes(project) == [0], project.logs()
    base = f"http://127.0.0.1:{project.port('app')}"
    payload = os.urandom(300 * 1024)
    note = create_note(base, payload)

    project("down", "--timeout", "30")
    project.up()
    base = f"http://127.0.0.1:{project.port('app')}"
    assert_note_is_there(base, note["id"], payload)

    project.up("--force-recreate", "--no-deps", "app")
    base = f"http://127.0.0.1:{project.port('app')}"
    assert_note_is_there(base, note["id"], payload)


def prod_env(image: str, **extra: str) -> dict[str, str]:
    return {
        "SECRET_KEY": new_secret_key(),
        "NOTICEBOARD_IMAGE": image,
        "NOTICEBOARD_PUBLISH": "127.0.0.1:",
        **extra,
    }


def test_prod_with_mariadb_keeps_notes_and_attachments(compose_project, image, mariadb_image):
    password = new_secret_key()[:24]
    project = compose_project(
        [PROD],
        prod_env(
            image,
            MARIADB_IMAGE=mariadb_image,
            MARIADB_PASSWORD=password,
            DATABASE_URL=f"mysql+pymysql://noticeboard:{password}@mariadb:3306/noticeboard",
        ),
        profiles=["mariadb"],
    )
    persistence_round_trip(project)
    # The database sits on the internal network only and publishes nothing.
    (db,) = project.containers("mariadb")
    assert not db.get("Publishers") or all(not p.get("PublishedPort") for p in db["Publishers"])


def test_prod_with_sqlite_keeps_notes_and_attachments(compose_project, image):
    project = compose_project([PROD], prod_env(image))
    persistence_round_trip(project)


def test_prod_requires_a_secret_key_loudly(compose_project, image):
    env = prod_env(image)
    del env["SECRET_KEY"]
    project = compose_project([PROD], env)
    result = project("config", "--quiet", check=False)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.fixture
def dev_project(compose_project, dev_image, src_copy: Path):
    return compose_project(
        [DEV],
        {
            "NOTICEBOARD_DEV_IMAGE": dev_image,
            "NOTICEBOARD_SRC": str(src_copy),
            "DEV_PUBLISH": "127.0.0.1:",
        },
    )


def test_dev_reloads_on_a_source_change_without_a_restart(dev_project, src_copy: Path):
    dev_project.up("app")
    base = f"http://127.0.0.1:{dev_project.port('app')}"
    assert wait_http(f"{base}/healthz").json() == {"status": "alive"}
    started = dev_project.started_at("app")

    web = src_copy / "noticeboard" / "web.py"
    web.write_text(web.read_text().replace('{"status": "alive"}', '{"status": "edited"}'))

    deadline = time.monotonic() + 120
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = httpx.get(f"{base}/healthz", timeout=10).json()
            if seen == {"status": "edited"}:
                break
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    assert seen == {"status": "edited"}, dev_project.logs()
    assert dev_project.started_at("app") == started, "the container was restarted"

"""The compose files, run for real: SQLite persistence, the loud secret, hot reload.

The production file with a database server: test_compose_prod.py; the development
file's debug and frontend profiles: test_compose_dev.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from imagetools import DEV, PROD, persistence_round_trip, prod_env, wait_http


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

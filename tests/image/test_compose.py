"""The compose files, run for real: SQLite persistence, the loud secret, hot reload.

The production file with a database server: test_compose_prod.py; the development
file's debug and frontend profiles: test_compose_dev.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from imagetools import (
    ADMIN_NAME,
    DEV,
    PROD,
    persistence_round_trip,
    prod_env,
    signed_in,
    wait_http,
)


def test_prod_with_sqlite_keeps_notes_and_attachments(compose_project, image, tmp_path):
    project = compose_project([PROD], prod_env(image, tmp_path))
    persistence_round_trip(project)


def test_prod_requires_a_secret_key_loudly(compose_project, image, tmp_path):
    env = prod_env(image, tmp_path)
    del env["SECRET_KEY"]
    project = compose_project([PROD], env)
    result = project("config", "--quiet", check=False)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_prod_signs_people_in_and_hands_the_admin_password_to_the_job_only(
    compose_project, image, tmp_path
):
    project = compose_project([PROD], prod_env(image, tmp_path))
    services = project.config()["services"]
    assert services["app"]["environment"]["AUTH_MODE"] == "accounts"
    assert [s["source"] for s in services["migrate"]["secrets"]] == ["admin_password"]
    assert "secrets" not in services["app"]
    assert not {"ADMIN_USERNAME", "ADMIN_PASSWORD", "ADMIN_PASSWORD_FILE"} & set(
        services["app"]["environment"]
    )
    project.up()
    base = f"http://127.0.0.1:{project.port('app')}"
    for path in ("/api/notes", "/events", "/api/users"):
        refused = httpx.get(base + path, timeout=30)
        assert refused.status_code == 401, (path, refused.text)
        assert "Cookie" in refused.headers["Vary"]
    with signed_in(base) as client:
        assert client.get("/api/session").json()["username"] == ADMIN_NAME
        assert client.get("/api/notes").status_code == 200
    assert "no admin yet" not in project.logs()


def test_prod_without_the_admin_password_file_stops_naming_it(compose_project, image, tmp_path):
    env = prod_env(image, tmp_path)
    missing = tmp_path / "admin_password"
    missing.unlink()
    project = compose_project([PROD], env)
    # The file is only read when a container starts: the file itself is valid.
    project("config", "--quiet")
    result = project("up", "-d", "--wait", "--wait-timeout", "300", check=False)
    assert result.returncode != 0
    assert str(missing) in result.stderr, result.stderr
    assert project.containers("app") == [] or all(
        c["State"] != "running" for c in project.containers("app")
    )

    # A file the app's uid cannot read, or an empty one, is no password either: the
    # job fails saying so, and the app never starts.
    for mode, text, said in (
        (0o600, "Unreadable-pass-0f-it\n", "cannot be read (Permission denied)"),
        (0o644, "", "is empty"),
    ):
        missing.write_text(text)
        missing.chmod(mode)
        result = project("up", "-d", "--wait", "--wait-timeout", "300", check=False)
        assert result.returncode != 0
        assert f"ADMIN_PASSWORD_FILE='/run/secrets/admin_password' {said}" in project.logs()
        assert all(c["State"] != "running" for c in project.containers("app"))


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

"""Issue 18: what the inventory says arrives in the running app byte for byte.

The scenario's secret key, MariaDB password (inside the URL, percent-encoded) and one
setting hold `$HOME ${X:-y} $$`, both quotes, a backslash, `# = @ / % :` and spaces at
both ends (molecule.yml). They are read back where the app reads them: the secret files
inside the container and the environment of its first process.
"""

from __future__ import annotations

import json

from verifylib import http, variables

HOST = "nb-mol-migrate_sqlite"
DIR = "/opt/noticeboard"
CONTAINER = "noticeboard-app-1"
ODD = " $HOME ${X:-y} $$ ' \" \\ # = @ / % : "


def inventory() -> dict:
    return variables(
        HOST,
        "noticeboard_secret_key",
        "noticeboard_database_url",
        "nb_test_mariadb_password",
        "noticeboard_settings",
    )


def in_container(host, *argv: str) -> bytes:
    done = host.run("docker exec " + " ".join(["%s"] * (len(argv) + 1)), CONTAINER, *argv)
    assert done.rc == 0, done.stderr
    return done.stdout_bytes


def test_the_scenario_uses_the_characters_that_used_to_change():
    values = inventory()
    assert values["noticeboard_settings"]["NB_TEST_ODD"] == ODD
    assert values["noticeboard_secret_key"].endswith(ODD)
    assert values["nb_test_mariadb_password"].endswith(ODD)


def test_the_secret_files_hold_exactly_the_secrets(host):
    values = inventory()
    key = in_container(host, "cat", "/run/secrets/secret_key")
    url = in_container(host, "cat", "/run/secrets/database_url")
    assert key == values["noticeboard_secret_key"].encode()
    assert url == values["noticeboard_database_url"].encode()
    for name in ("secret_key", "database_url"):
        on_host = host.file(f"{DIR}/secrets/{name}")
        assert (on_host.uid, on_host.mode) == (10001, 0o400)


def test_the_app_process_sees_the_setting_unchanged(host):
    raw = in_container(host, "cat", "/proc/1/environ")
    environ = dict(item.split(b"=", 1) for item in raw.split(b"\0") if item)
    assert environ[b"NB_TEST_ODD"] == ODD.encode()
    assert environ[b"SECRET_KEY_FILE"] == b"/run/secrets/secret_key"
    assert environ[b"DATABASE_URL_FILE"] == b"/run/secrets/database_url"
    assert b"SECRET_KEY" not in environ and b"DATABASE_URL" not in environ


def test_no_secret_shows_in_docker_inspect_or_the_env_file(host):
    values = inventory()
    inspect = host.check_output("docker inspect %s", CONTAINER)
    env = json.loads(inspect)[0]["Config"]["Env"]
    assert ODD.strip() in "\n".join(env)  # the setting is there, so the search would work
    env_file = host.file(f"{DIR}/app.env").content_string
    password = values["nb_test_mariadb_password"]
    key = values["noticeboard_secret_key"]
    for secret in (key, key.split(" ")[0], password, password.split(" ")[0]):
        assert secret not in inspect
        assert secret not in env_file


def test_the_app_logs_in_to_mariadb_with_that_password(host):
    ready = http(host, "GET", "http://127.0.0.1:8000/readyz", timeout=20)
    assert ready.status == 200 and ready.body["status"] == "ready"
    created = http(
        host, "POST", "http://127.0.0.1:8000/api/notes", {"body": "odd password"}, timeout=20
    )
    assert created.status == 201, created.body
    assert (
        http(host, "DELETE", f"http://127.0.0.1:8000/api/notes/{created.body['id']}").status == 204
    )

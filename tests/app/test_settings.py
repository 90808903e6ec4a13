"""Settings: every variable read, validated, and reported by name with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noticeboard import settings

from helpers import SECRET, run_cli

GOOD = {"NOTICEBOARD_ENV": "production", "SECRET_KEY": SECRET, "DATA_DIR": "/srv/nb"}


def load(**overrides: str) -> settings.Settings:
    return settings.load({**GOOD, **overrides})


def test_defaults_follow_the_documented_table():
    config = settings.load(GOOD)
    assert config.env == "production"
    assert config.database_url == "sqlite:////srv/nb/noticeboard.db"
    assert config.upload_dir == Path("/srv/nb/uploads")
    assert config.attachment_store == "files"
    assert config.gunicorn_bind == "0.0.0.0:8000"
    assert config.gunicorn_worker_class == "eventlet"
    assert config.migrate_on_start is True  # auto + SQLite
    assert config.max_upload_bytes == 10 * 1024 * 1024


def test_migrate_on_start_auto_is_off_for_server_databases():
    config = load(DATABASE_URL="postgresql://u:p@db/nb")
    assert config.database_url == "postgresql+psycopg://u:p@db/nb"
    assert config.migrate_on_start is False
    assert load(DATABASE_URL="mysql://u:p@db/nb").database_url == (
        "mysql+pymysql://u:p@db/nb?charset=utf8mb4"
    )


@pytest.mark.parametrize(
    ("overrides", "variable", "hint"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY", "secrets.token_urlsafe"),
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY", "long random"),
        ({"SECRET_KEY": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "SECRET_KEY", "random"),
        ({"SECRET_KEY": "Shortbutrandom1234"}, "SECRET_KEY", "at least 32"),
        ({"NOTICEBOARD_ENV": "staging"}, "NOTICEBOARD_ENV", "production, development"),
        ({"GUNICORN_WORKERS": "many"}, "GUNICORN_WORKERS", "whole number"),
        ({"GUNICORN_WORKERS": "0"}, "GUNICORN_WORKERS", "from 1 to 64"),
        ({"GUNICORN_WORKER_CONNECTIONS": "5"}, "GUNICORN_WORKER_CONNECTIONS", "from 10 to 100000"),
        ({"GUNICORN_WORKER_CLASS": "sync"}, "GUNICORN_WORKER_CLASS", "eventlet, gevent"),
        ({"GUNICORN_BIND": "8000"}, "GUNICORN_BIND", "HOST:PORT"),
        ({"MAX_UPLOAD_MB": "-1"}, "MAX_UPLOAD_MB", "from 1 to 1024"),
        ({"SSE_POLL_SECONDS": "nan"}, "SSE_POLL_SECONDS", "out of range"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "DEBUG, INFO"),
        ({"TRUSTED_PROXY_COUNT": "x"}, "TRUSTED_PROXY_COUNT", "whole number"),
        ({"MIGRATE_ON_START": "maybe"}, "MIGRATE_ON_START", "auto, true or false"),
        ({"DATABASE_URL": "oracle://u:p@h/db"}, "DATABASE_URL", "postgresql+psycopg"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL", "postgresql+psycopg://"),
        ({"DB_WAIT_TIMEOUT": "soon"}, "DB_WAIT_TIMEOUT", "number"),
        ({"ATTACHMENT_STORE": "s3"}, "ATTACHMENT_STORE", "files, database"),
        ({"AUTH_MODE": "closed"}, "AUTH_MODE", "open, accounts, proxy"),
        ({"AUTH_MODE": "proxy"}, "AUTH_PROXY_TRUSTED", "AUTH_MODE=proxy needs it"),
        ({"AUTH_PROXY_TRUSTED": "10.0.0.0/33"}, "AUTH_PROXY_TRUSTED", "10.0.0.5,172.18.0.0/16"),
        ({"AUTH_PROXY_USER_HEADER": "Remote User"}, "AUTH_PROXY_USER_HEADER", "header name"),
        ({"ADMIN_USERNAME": "root"}, "ADMIN_USERNAME", "ADMIN_PASSWORD_FILE"),
        ({"ADMIN_PASSWORD": "Lo0ng-enough-pass"}, "ADMIN_PASSWORD", "ADMIN_USERNAME"),
        ({"ADMIN_USERNAME": "Root Admin", "ADMIN_PASSWORD": "x" * 20}, "ADMIN_USERNAME", "a-z"),
        ({"ADMIN_USERNAME": "root", "ADMIN_PASSWORD": "sh0rt-pw"}, "ADMIN_PASSWORD", "at least 12"),
        ({"ADMIN_USERNAME": "root", "ADMIN_PASSWORD": "a" * 30}, "ADMIN_PASSWORD", "trivial"),
        ({"AUTH_THROTTLE_MAX_FAILURES": "0"}, "AUTH_THROTTLE_MAX_FAILURES", "from 1 to 1000"),
    ],
)
def test_invalid_settings_name_the_variable_and_the_fix(overrides, variable, hint):
    with pytest.raises(settings.SettingsError) as info:
        load(**overrides)
    message = str(info.value)
    assert message.startswith(variable), message
    assert hint in message


def test_an_empty_admin_password_file_is_named(tmp_path):
    empty = tmp_path / "admin_password"
    empty.write_text("\n")
    with pytest.raises(settings.SettingsError) as info:
        load(ADMIN_USERNAME="root", ADMIN_PASSWORD_FILE=str(empty))
    assert str(info.value).startswith(f"ADMIN_PASSWORD_FILE={str(empty)!r} is empty")


def test_access_control_defaults_to_accounts_and_reads_the_admin_password_from_a_file(tmp_path):
    config = load()
    # A board that nobody configured is closed: open has to be asked for by name.
    assert (config.auth_mode, config.admin_username) == ("accounts", "")
    assert load(AUTH_MODE="open").auth_mode == "open"
    assert (config.auth_throttle_max_failures, config.auth_throttle_window_s) == (5, 900)
    assert config.auth_proxy_user_header == "Remote-User"
    assert config.auth_proxy_groups_header == "Remote-Groups"
    assert config.auth_proxy_admin_group == "noticeboard-admins"
    secret_file = tmp_path / "admin"
    secret_file.write_text("Correct-Horse-Battery-9\n")
    config = load(
        AUTH_MODE="Proxy",
        AUTH_PROXY_TRUSTED="10.0.0.5, 172.18.0.0/16",
        ADMIN_USERNAME="Root",
        ADMIN_PASSWORD_FILE=str(secret_file),
    )
    assert config.auth_mode == "proxy"
    assert [str(n) for n in config.auth_proxy_trusted] == ["10.0.0.5/32", "172.18.0.0/16"]
    assert (config.admin_username, config.admin_password) == ("root", "Correct-Horse-Battery-9")
    assert "Correct-Horse" not in repr(config)


def test_development_generates_a_key_when_none_is_set():
    config = settings.load({"NOTICEBOARD_ENV": "development", "DATA_DIR": "/tmp/x"})
    assert config.secret_key_generated
    assert len(config.secret_key) >= settings.MIN_SECRET_KEY_LENGTH


def test_passwords_are_redacted_in_messages():
    config = load(DATABASE_URL="postgresql://user:hunter2@db/nb")
    assert "hunter2" not in config.database_url_redacted
    assert config.database_url_redacted == "postgresql+psycopg://user:***@db/nb"


def test_env_example_and_rst_list_every_setting():
    example = run_cli("settings", "env-example", env={"PATH": "/usr/bin:/bin"})
    rst = run_cli("settings", "rst", env={"PATH": "/usr/bin:/bin"})
    assert example.returncode == 0 and rst.returncode == 0, example.stderr + rst.stderr
    for s in settings.SETTINGS:
        assert f"{s.name}=" in example.stdout
        assert f".. envvar:: {s.name}" in rst.stdout
    assert "\nSECRET_KEY=\n" in example.stdout
    assert "#GUNICORN_WORKER_CLASS=eventlet" in example.stdout


def test_settings_are_data():
    names = [s.name for s in settings.SETTINGS]
    assert len(names) == len(set(names))
    assert {s.name for s in settings.SETTINGS if s.required} == {"SECRET_KEY"}
    for s in settings.SETTINGS:
        assert s.description


@pytest.mark.parametrize("command", [["check"], ["db", "upgrade"], ["serve"]])
def test_cli_refuses_bad_settings_with_one_line_and_writes_nothing(tmp_path, command):
    data_dir = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(data_dir), "SECRET_KEY": "changeme"}
    result = run_cli(*command, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SECRET_KEY" in lines[0]
    assert not data_dir.exists()


# Secrets from files (SECRET_KEY_FILE, DATABASE_URL_FILE): what the operator wrote arrives
# character for character, whatever Compose or a shell would have made of it.
ONE_LINE = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0"), min_size=1
)


@given(value=ONE_LINE, line_end=st.sampled_from(["", "\n", "\r\n"]))
def test_a_secret_file_gives_its_text_exactly(tmp_path_factory, value, line_end):
    path = tmp_path_factory.mktemp("secret") / "key"
    path.write_bytes((value + line_end).encode())
    assert settings.secret({"SECRET_KEY_FILE": str(path)}, "SECRET_KEY") == value


def test_the_app_runs_with_the_key_from_the_file(tmp_path):
    key = " $HOME ${X:-y} $$ 'single' \"double\" back\\slash #not-a-comment a=b "
    (tmp_path / "key").write_text(key + "\n")
    config = settings.load({**GOOD, "SECRET_KEY": "", "SECRET_KEY_FILE": str(tmp_path / "key")})
    assert config.secret_key == key


def test_a_database_url_from_a_file_keeps_its_password(tmp_path):
    (tmp_path / "url").write_text("mysql+pymysql://nb:pa$$w#rd@db/nb")
    config = load(DATABASE_URL_FILE=str(tmp_path / "url"))
    assert config.database_url == "mysql+pymysql://nb:pa$$w#rd@db/nb?charset=utf8mb4"


@pytest.mark.parametrize(
    ("content", "overrides", "hint"),
    [
        (None, {}, "cannot be read"),
        ("two\nlines", {}, "more than one line"),
        ("nul\0inside", {}, "without NUL"),
        ("x" * 40 + "\r", {}, "more than one line"),
        ("x" * 40, {"SECRET_KEY": SECRET}, "keep one of them"),
    ],
)
def test_a_bad_secret_file_is_named_with_the_fix(tmp_path, content, overrides, hint):
    path = tmp_path / "key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(settings.SettingsError, match=hint) as raised:
        settings.load({**GOOD, "SECRET_KEY": "", **overrides, "SECRET_KEY_FILE": str(path)})
    assert "SECRET_KEY" in str(raised.value)


def test_only_secrets_are_read_from_files():
    # MAINTENANCE_FILE is a setting of its own, not MAINTENANCE from a file.
    assert {s.name for s in settings.SETTINGS if s.secret} == {
        "SECRET_KEY",
        "DATABASE_URL",
        "ADMIN_PASSWORD",
    }
    assert load(MAINTENANCE_FILE="/srv/nb/flag").maintenance_file == Path("/srv/nb/flag")

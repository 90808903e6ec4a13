"""What tooling reads from the command line: one JSON object and a meaningful exit status.

The collection decides on these answers (upgrade_schema.yml, migrate.yml, the SQLite ->
MariaDB move, the preflight's cli-version), so their keys and statuses are an interface:
a change to them raises noticeboard.cli.CLI_VERSION.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from noticeboard import cli, migrate

from helpers import base_env, free_port, run_cli

PLAN_KEYS = {
    "current",
    "head",
    "state",
    "at_head",
    "migrate",
    "pending",
    "contracting",
    "backward_compatible",
}


def answer(*args: str, env: dict[str, str]) -> tuple[int, dict]:
    result = run_cli(*args, env=env)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    return result.returncode, json.loads(lines[0])


def test_cli_version_names_the_interface_level(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    status, report = answer("cli-version", "--json", env=env)
    assert status == 0
    assert report["cli_version"] == cli.CLI_VERSION >= 1
    assert isinstance(report["app_version"], str)
    # Without settings too: the preflight runs it before any env file exists.
    plain = run_cli("cli-version", env={"PATH": "/usr/bin:/bin"})
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == str(cli.CLI_VERSION)


def test_the_help_documents_the_exit_statuses(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    for command in (["db", "check"], ["db", "plan"], ["db", "verify"], ["maintenance"]):
        text = run_cli(*command, "--help", env=env).stdout
        assert "--json" in text, command
        for status in ("3  db check/plan", "4  db check/plan", "5  db verify"):
            assert status in text, (command, status)


def test_db_check_and_plan_from_empty_to_head(fresh_url, tmp_path):
    env = base_env(fresh_url, tmp_path)
    head = migrate.head_revision()

    for command in ("check", "plan"):
        status, report = answer("db", command, "--json", env=env)
        assert status == cli.EXIT_BEHIND == 3
        assert set(report) == PLAN_KEYS | ({"admins"} if command == "check" else set())
        assert report["state"] == "empty" and report["current"] is None
        assert report["head"] == head and report["migrate"] is True
        assert [step["revision"] for step in report["pending"]] == ["0001", "0002", "0003", "0004"]
        assert report["backward_compatible"] is True and report["contracting"] == []

    migrate.upgrade(fresh_url, "0001")
    status, report = answer("db", "plan", "--json", env=env)
    assert status == 3
    assert report["state"] == "behind" and report["current"] == "0001"
    assert report["pending"] == [
        {"revision": "0002", "contracting": False},
        {"revision": "0003", "contracting": False},
        {"revision": "0004", "contracting": False},
    ]
    plain = run_cli("db", "plan", env=env)
    assert plain.returncode == 3
    assert "apply 0002" in plain.stdout and "apply 0004" in plain.stdout

    migrate.upgrade(fresh_url)
    for command in ("check", "plan"):
        status, report = answer("db", command, "--json", env=env)
        assert status == 0
        assert report["state"] == "head" and report["at_head"] is True
        assert report["migrate"] is False and report["pending"] == []


def test_db_check_counts_the_admins_once_the_schema_is_at_head(fresh_url, tmp_path):
    """The collection creates a first admin (``db upgrade``) when a board at head has none."""
    env = base_env(fresh_url, tmp_path, AUTH_MODE="accounts")
    assert answer("db", "check", "--json", env=env)[1]["admins"] is None
    migrate.upgrade(fresh_url, "0003")
    assert answer("db", "check", "--json", env=env)[1]["admins"] is None

    migrate.upgrade(fresh_url)
    status, report = answer("db", "check", "--json", env=env)
    assert (status, report["admins"]) == (0, 0)
    first = {"ADMIN_USERNAME": "root.admin", "ADMIN_PASSWORD": "a long enough secret"}
    upgrade = run_cli("db", "upgrade", env={**env, **first})
    assert upgrade.returncode == 0, upgrade.stderr
    assert answer("db", "check", "--json", env=env)[1]["admins"] == 1
    assert "admins" not in answer("db", "plan", "--json", env=env)[1]


def test_a_schema_from_a_newer_release_is_ahead(fresh_url, tmp_path):
    env = base_env(fresh_url, tmp_path)
    migrate.upgrade(fresh_url)
    engine = sa.create_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    for command in ("check", "plan"):
        status, report = answer("db", command, "--json", env=env)
        assert status == cli.EXIT_AHEAD == 4
        assert report["state"] == "ahead" and report["current"] == "9999_from_the_future"
        assert "which this release does not ship" in report["error"]
    plain = run_cli("db", "plan", env=env)
    assert plain.returncode == 4 and plain.stdout == ""
    last = plain.stderr.strip().splitlines()[-1]
    assert last.startswith("noticeboard: the database is at revision 9999_")


def test_an_unreachable_database_is_a_failure_with_its_reason(tmp_path):
    url = f"postgresql+psycopg://nobody:pw@127.0.0.1:{free_port()}/none"
    env = base_env(url, tmp_path)
    status, report = answer("db", "plan", "--json", env=env)
    assert status == cli.EXIT_FAILURE == 1
    assert report["state"] == "unreadable" and report["current"] is None
    assert "cannot read the schema revision" in report["error"]
    assert "pw@" not in json.dumps(report)


def test_invalid_settings_still_answer_in_json(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, SECRET_KEY="changeme")
    status, report = answer("db", "check", "--json", env=env)
    assert status == cli.EXIT_SETTINGS == 2
    assert "SECRET_KEY" in report["error"]


def test_a_contracting_revision_is_not_backward_compatible(tmp_path, monkeypatch):
    """The flag a revision module sets (``contracting = True``) reaches the plan."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, scripts)
    head = migrate.head_revision()
    (scripts / "versions" / "0099_drop_something.py").write_text(
        f'revision = "0099"\ndown_revision = "{head}"\nbranch_labels = None\n'
        "depends_on = None\ncontracting = True\n\n\ndef upgrade():\n    pass\n"
    )
    config = migrate.alembic_config("unused")
    config.set_main_option("script_location", str(scripts))
    directory = ScriptDirectory.from_config(config)
    monkeypatch.setattr(migrate, "_script_directory", lambda: directory)
    monkeypatch.setattr(migrate, "head_revision", lambda: "0099")

    report = migrate.schema_plan(head).as_dict()
    assert report["state"] == "behind" and report["migrate"] is True
    assert report["pending"] == [{"revision": "0099", "contracting": True}]
    assert report["contracting"] == ["0099"] and report["backward_compatible"] is False
    # From further back, only the contracting one counts.
    assert migrate.schema_plan("0002").contracting == ["0099"]


def test_maintenance_reports_its_state_and_whether_it_changed(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    migrate.upgrade(env["DATABASE_URL"])
    flag = Path(tmp_path / "maintenance")

    assert answer("maintenance", "status", "--json", env=env) == (
        0,
        {"maintenance": False, "changed": False, "retry_after": None, "flag_file": str(flag)},
    )
    status, report = answer("maintenance", "on", "--retry-after", "300", "--json", env=env)
    assert status == 0 and report["maintenance"] is True and report["changed"] is True
    assert report["retry_after"] == 300 and flag.exists()
    assert answer("maintenance", "on", "--json", env=env)[1]["changed"] is False
    status, report = answer("maintenance", "off", "--json", env=env)
    assert (status, report["maintenance"], report["changed"]) == (0, False, True)
    assert not flag.exists()
    assert answer("maintenance", "off", "--json", env=env)[1]["changed"] is False

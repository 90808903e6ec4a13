"""The command line against unreachable databases: bounded waits and one clear line."""

from __future__ import annotations

from helpers import base_env, free_port, run_cli


def unreachable(tmp_path) -> dict[str, str]:
    url = f"postgresql+psycopg://nobody:pw@127.0.0.1:{free_port()}/none"
    return base_env(url, tmp_path, DB_WAIT_TIMEOUT="2")


def test_db_wait_gives_up_after_the_timeout_with_a_clear_message(tmp_path):
    result = run_cli("db", "wait", env=unreachable(tmp_path))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("noticeboard: database did not answer within 2 s")
    assert "DB_WAIT_TIMEOUT" in last
    assert "pw@" not in result.stderr


def test_check_fails_with_one_line_when_the_database_is_down(tmp_path):
    result = run_cli("check", env=unreachable(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "does not answer" in lines[0]
    assert "nobody:***@" in lines[0]


def test_db_wait_succeeds_once_the_database_answers(fresh_url, tmp_path):
    result = run_cli("db", "wait", env=base_env(fresh_url, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "database answers" in result.stdout


def test_check_names_an_unwritable_upload_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = base_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, UPLOAD_DIR=str(blocker / "up"))
    result = run_cli("check", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "UPLOAD_DIR" in lines[0] and "not writable" in lines[0]

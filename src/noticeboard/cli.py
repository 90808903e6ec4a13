"""The ``noticeboard`` command: serve, check, db upgrade|current|check|wait, settings."""

from __future__ import annotations

import argparse
import os
import sys

from noticeboard import settings

EXIT_FAILURE = 1
EXIT_SETTINGS = 2


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"noticeboard: {message}", file=sys.stderr)
    return code


def _load() -> settings.Settings:
    config = settings.load()
    settings.configure_logging(config.log_level)
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load()
    if config.migrate_on_start:
        from noticeboard import migrate

        try:
            migrate.wait_for_database(config.database_url, config.db_wait_timeout)
            migrate.upgrade(config.database_url)
        except Exception as exc:
            return _fail(f"migration on start failed: {migrate.describe_error(exc)}")
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:noticeboard.gunicorn_conf",
        "noticeboard.wsgi:app",
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - fixed argv, replaces this process
    return 0  # pragma: no cover


def cmd_check(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import migrate
    from noticeboard.db import make_engine
    from noticeboard.storage import Storage

    Storage(config.upload_dir).check_writable()
    engine = make_engine(config.database_url)
    try:
        current = migrate.current_revision(engine)
    except Exception as exc:
        return _fail(
            f"database at {config.database_url_redacted} does not answer: "
            f"{migrate.describe_error(exc)}"
        )
    finally:
        engine.dispose()
    head = migrate.head_revision()
    print(
        f"ok: settings valid ({config.env}), database answers, "
        f"schema at {current or 'no revision'} (head {head})"
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import migrate

    try:
        migrate.upgrade(config.database_url, args.revision)
    except Exception as exc:
        return _fail(f"upgrade failed: {migrate.describe_error(exc)}")
    print(f"database schema upgraded to {args.revision}")
    return 0


class _RevisionUnreadable(Exception):
    """The database did not say which revision its schema is at."""


def _current_revision(database_url: str) -> str | None:
    from noticeboard import migrate
    from noticeboard.db import make_engine

    engine = make_engine(database_url)
    try:
        return migrate.current_revision(engine)
    except Exception as exc:
        raise _RevisionUnreadable(
            f"cannot read the schema revision: {migrate.describe_error(exc)}"
        ) from exc
    finally:
        engine.dispose()


def cmd_db_current(args: argparse.Namespace) -> int:
    config = _load()
    try:
        current = _current_revision(config.database_url)
    except _RevisionUnreadable as exc:
        return _fail(str(exc))
    print(current or "none")
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import migrate

    try:
        current = _current_revision(config.database_url)
    except _RevisionUnreadable as exc:
        return _fail(str(exc))
    head = migrate.head_revision()
    if current != head:
        return _fail(
            f"schema is at {current or 'no revision'}, head is {head}; run `noticeboard db upgrade`"
        )
    print(f"schema is at head ({head})")
    return 0


def cmd_db_wait(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import migrate

    timeout = config.db_wait_timeout if args.timeout is None else args.timeout
    try:
        migrate.wait_for_database(config.database_url, timeout)
    except TimeoutError as exc:
        return _fail(str(exc))
    print("database answers")
    return 0


def cmd_settings_env_example(args: argparse.Namespace) -> int:
    sys.stdout.write(settings.env_example())
    return 0


def cmd_settings_rst(args: argparse.Namespace) -> int:
    sys.stdout.write(settings.rst())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="noticeboard", description="Run and administer the noticeboard application."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run Gunicorn with the settings from the environment")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("check", help="validate the settings and reach the database").set_defaults(
        func=cmd_check
    )

    db = sub.add_parser("db", help="database schema commands").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    up = db.add_parser("upgrade", help="migrate the schema to the newest revision")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    up.set_defaults(func=cmd_db_upgrade)
    db.add_parser("current", help="print the schema's revision").set_defaults(func=cmd_db_current)
    db.add_parser("check", help="exit non-zero unless the schema is at head").set_defaults(
        func=cmd_db_check
    )
    wait = db.add_parser("wait", help="retry until the database answers (DB_WAIT_TIMEOUT)")
    wait.add_argument("--timeout", type=float, default=None, help="override DB_WAIT_TIMEOUT")
    wait.set_defaults(func=cmd_db_wait)

    st = sub.add_parser("settings", help="print the settings reference").add_subparsers(
        dest="settings_command", required=True, metavar="FORMAT"
    )
    st.add_parser("env-example", help="an .env file with every setting").set_defaults(
        func=cmd_settings_env_example
    )
    st.add_parser("rst", help="reStructuredText for the docs").set_defaults(func=cmd_settings_rst)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except settings.SettingsError as exc:
        return _fail(f"invalid settings: {exc}", EXIT_SETTINGS)
    except KeyboardInterrupt:
        return 130

"""The ``noticeboard`` command: serve, check, db upgrade|current|check|plan|wait|copy|verify,
attachments import, maintenance on|off|status, users create|list|set-password|set-role|delete,
settings, cli-version.

Commands that tooling reads (``db check``, ``db plan``, ``db verify``, ``maintenance``,
``cli-version``) take ``--json``: one JSON object on stdout, also when they fail (then
with an ``error`` key), so that a playbook decides on fields and exit statuses, never on
the wording of a message. The exit statuses are the same with and without ``--json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from noticeboard import settings

#: The interface level of this command line, for the tooling that calls it (the Ansible
#: collection's preflight refuses an image below the level it needs). Raise it by one
#: whenever a subcommand, an option, a JSON key or an exit status that tooling reads is
#: added or changed; never reuse a level.
#:   1  cli-version; --json and the exit statuses below for db check, db plan (new),
#:      db verify and maintenance
#:   2  users create|list|set-password|set-role|delete with --json and exit statuses 6, 7;
#:      db upgrade creates the first admin from ADMIN_USERNAME/ADMIN_PASSWORD
#:   3  db check --json: admins, how many admin accounts a schema at head holds (else null)
CLI_VERSION = 3

EXIT_OK = 0
EXIT_FAILURE = 1  # could not do it: the database does not answer, a file is unreadable, ...
EXIT_SETTINGS = 2  # invalid settings or command line (argparse uses 2 as well)
EXIT_BEHIND = 3  # db check/plan: the schema is behind head (or empty): an upgrade applies revisions
EXIT_AHEAD = 4  # db check/plan: the schema is at a revision this release does not ship
EXIT_DIFFERENT = 5  # db verify: both databases were read and some tables differ
EXIT_NO_SUCH_USER = 6  # users: the account named does not exist
EXIT_REFUSED = 7  # users: refused as asked (exists already, weak password, last admin)

EXIT_STATUSES = f"""exit statuses:
  {EXIT_OK}  done; for db check/plan: the schema is at head
  {EXIT_FAILURE}  failed (the reason is the last line on stderr, or "error" with --json)
  {EXIT_SETTINGS}  invalid settings or command line
  {EXIT_BEHIND}  db check/plan: the schema is behind head or has no revision yet
  {EXIT_AHEAD}  db check/plan: the schema is at a revision this release does not ship
  {EXIT_DIFFERENT}  db verify: some tables differ
  {EXIT_NO_SUCH_USER}  users: there is no such account
  {EXIT_REFUSED}  users: refused (the account exists, the password is too weak, the last admin)
"""


def _fail(message: str, code: int = EXIT_FAILURE, report: dict | None = None) -> int:
    """One line on stderr; with ``report`` (the --json case) also the object on stdout."""
    if report is not None:
        _print_json({**report, "error": message})
    print(f"noticeboard: {message}", file=sys.stderr)
    return code


def _print_json(report: dict) -> None:
    print(json.dumps(report, sort_keys=True))


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
            _first_admin(config)
        except Exception as exc:
            return _fail(f"migration on start failed: {migrate.describe_error(exc)}")
    _warn_without_admin(config)
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

    if not config.attachments_in_database:
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
        f"schema at {current or 'no revision'} (head {head}), "
        f"attachments in {config.attachment_store}"
    )
    return 0


def cmd_attachments_import(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import migrate
    from noticeboard.db import Database
    from noticeboard.maintenance import Maintenance, ReadOnlyError
    from noticeboard.storage import (
        AttachmentTooLargeError,
        DatabaseStorage,
        ImportConflictError,
        Storage,
    )

    if not config.attachments_in_database:
        return _fail(
            "ATTACHMENT_STORE is files, so the app would not read imported attachments; "
            "set ATTACHMENT_STORE=database first"
        )
    database = Database(config.database_url, Maintenance(config.maintenance_file))
    store = DatabaseStorage(database, Storage(config.upload_dir), config.max_upload_bytes)
    try:
        counts = store.import_files(report=print if args.verbose else lambda _: None)
    except (ImportConflictError, AttachmentTooLargeError, ReadOnlyError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot read {config.upload_dir}: {exc}")
    except Exception as exc:
        return _fail(f"import failed: {migrate.describe_error(exc)}")
    finally:
        database.dispose()
    print(f"attachments from {config.upload_dir}: {counts}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import migrate

    try:
        migrate.upgrade(config.database_url, args.revision)
    except Exception as exc:
        return _fail(f"upgrade failed: {migrate.describe_error(exc)}")
    print(f"database schema upgraded to {args.revision}")
    if args.revision == "head":
        try:
            _first_admin(config)
        except Exception as exc:
            return _fail(f"creating the first admin failed: {migrate.describe_error(exc)}")
        _warn_without_admin(config)
    return 0


def _first_admin(config: settings.Settings) -> None:
    """ADMIN_USERNAME/ADMIN_PASSWORD, where the schema is upgraded: once per deploy."""
    from noticeboard import accounts
    from noticeboard.db import Database

    database = Database(config.database_url)
    try:
        done = accounts.ensure_first_admin(database, config)
    finally:
        database.dispose()
    if done:
        print(done)


def _warn_without_admin(config: settings.Settings) -> None:
    """Say in the log, once per start or upgrade, that nobody can sign in yet, and the fix.

    The board still starts: its page says the same to whoever opens it. A database that
    does not answer or has no schema yet is left to ``/readyz`` to report.
    """
    if config.auth_mode != settings.ACCOUNTS:
        return
    from noticeboard import accounts, migrate
    from noticeboard.db import Database

    database = Database(config.database_url)
    try:
        missing = not accounts.has_admin(database)
    except Exception as exc:
        logging.getLogger(__name__).debug(
            "could not look for an admin: %s", migrate.describe_error(exc)
        )
        return
    finally:
        database.dispose()
    if missing:
        logging.getLogger(__name__).warning(accounts.NO_ADMIN_WARNING)


def _read_password(args: argparse.Namespace) -> str:
    """The new password from stdin, never from argv (which every user of the host sees)."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise settings.SettingsError("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


def cmd_users(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import accounts, migrate
    from noticeboard.db import Database
    from noticeboard.maintenance import Maintenance, ReadOnlyError

    report: dict | None = {} if args.json else None
    database = Database(config.database_url, Maintenance(config.maintenance_file))
    try:
        if args.action == "list":
            users = [user.to_json() for user in accounts.list_users(database)]
            if args.json:
                _print_json({"users": users})
            else:
                for user in users:
                    print(f"{user['username']}\t{user['role']}\t{user['updated_at']}")
            return EXIT_OK
        if args.action == "create":
            user = accounts.create(database, args.name, _read_password(args), args.role)
            action, details = "account-created", {"role": user.role}
        elif args.action == "set-password":
            user = accounts.update(database, args.name, password=_read_password(args))
            action, details = "account-changed", {"changed": "password"}
        elif args.action == "set-role":
            user = accounts.update(database, args.name, role=args.role)
            action, details = "account-changed", {"changed": "role", "role": user.role}
        else:
            accounts.delete(database, args.name)
            user = None
            action, details = "account-deleted", {}
    except accounts.AccountError as exc:
        code = EXIT_NO_SUCH_USER if exc.status == 404 else EXIT_REFUSED
        return _fail(exc.message, code, report)
    except ReadOnlyError as exc:
        return _fail(str(exc), EXIT_FAILURE, report)
    except Exception as exc:
        return _fail(f"the database failed: {migrate.describe_error(exc)}", EXIT_FAILURE, report)
    finally:
        database.dispose()
    name = user.username if user else settings.normalise_username(args.name)
    accounts.audit_line(action, "cli", "local", account=name, **details)
    if args.json:
        _print_json({"action": args.action, "user": user.to_json() if user else None})
    else:
        print(f"{action.replace('account-', 'account ')}: {name}")
    return EXIT_OK


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


def _schema_plan(args: argparse.Namespace):
    """The schema plan, or the exit status and message when there is none."""
    config = _load()
    from noticeboard import migrate

    try:
        current = _current_revision(config.database_url)
    except _RevisionUnreadable as exc:
        report = {"current": None, "head": migrate.head_revision(), "state": "unreadable"}
        return None, _fail(str(exc), EXIT_FAILURE, report if args.json else None)
    plan = migrate.schema_plan(current)
    if plan.state == "ahead":
        return None, _fail(
            f"the database is at revision {current}, which this release does not ship "
            f"(its head is {plan.head}): a newer release migrated it",
            EXIT_AHEAD,
            plan.as_dict() if args.json else None,
        )
    return plan, EXIT_OK if plan.state == "head" else EXIT_BEHIND


def _admin_count(database_url: str) -> int:
    """How many admin accounts the database holds (its schema is at head)."""
    from noticeboard import accounts
    from noticeboard.db import Database

    database = Database(database_url)
    try:
        return accounts.count_admins(database)
    finally:
        database.dispose()


def cmd_db_check(args: argparse.Namespace) -> int:
    plan, status = _schema_plan(args)
    if plan is None:
        return status
    if args.json:
        # Whether `db upgrade` still has a first admin to create (ADMIN_USERNAME): only a
        # schema at head has the accounts table this release reads.
        report = plan.as_dict()
        try:
            report["admins"] = _admin_count(_load().database_url) if status == EXIT_OK else None
        except Exception as exc:
            from noticeboard import migrate

            return _fail(
                f"cannot count the admins: {migrate.describe_error(exc)}", EXIT_FAILURE, report
            )
        _print_json(report)
    elif status == EXIT_OK:
        print(f"schema is at head ({plan.head})")
    else:
        print(
            f"noticeboard: schema is at {plan.current or 'no revision'}, head is {plan.head}; "
            "run `noticeboard db upgrade`",
            file=sys.stderr,
        )
    return status


def cmd_db_plan(args: argparse.Namespace) -> int:
    plan, status = _schema_plan(args)
    if plan is None:
        return status
    if args.json:
        _print_json(plan.as_dict())
        return status
    print(f"schema at {plan.current or 'no revision'}, head {plan.head}")
    for step in plan.pending:
        print(f"  apply {step['revision']}{' (contracting)' if step['contracting'] else ''}")
    if not plan.pending:
        print("  nothing to apply")
    return status


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


TARGET_ENV = "TARGET_DATABASE_URL"


def _target_url(args: argparse.Namespace) -> str:
    """The other database, from --to/--against or TARGET_DATABASE_URL (keeps it off argv)."""
    url = (args.url or os.environ.get(TARGET_ENV, "")).strip()
    if not url:
        raise settings.SettingsError(
            f"no target database: give its URL as {args.flag} URL or in {TARGET_ENV}, "
            "e.g. mysql+pymysql://user:password@host/noticeboard"
        )
    return settings.normalise_database_url(url)


def cmd_db_copy(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import transfer
    from noticeboard.maintenance import Maintenance

    target = _target_url(args)
    if Maintenance(config.maintenance_file).active() is None:
        return _fail(
            f"maintenance mode is off, so the source could change during the copy; run "
            f"`noticeboard maintenance on` first (flag file {config.maintenance_file})"
        )
    try:
        transfer.copy(config.database_url, target, size=args.batch_size, replace=args.replace)
    except transfer.TransferError as exc:
        return _fail(str(exc))
    print(f"copied and verified: {config.database_url_redacted} -> {settings.redact_url(target)}")
    return 0


def cmd_db_verify(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard import transfer

    target = _target_url(args)
    try:
        pairs = transfer.compare(
            config.database_url,
            target,
            size=args.batch_size,
            report=(lambda _: None) if args.json else print,
        )
    except transfer.TransferError as exc:
        return _fail(str(exc), EXIT_FAILURE, {"match": False} if args.json else None)
    different = [left.table for left, right in pairs if left != right]
    if args.json:
        _print_json(
            {
                "match": not different,
                "different": different,
                "tables": {
                    left.table: {
                        "source_rows": left.rows,
                        "target_rows": right.rows,
                        "match": left == right,
                    }
                    for left, right in pairs
                },
            }
        )
    if different:
        if not args.json:
            print(
                f"noticeboard: the copy differs from the source in {', '.join(different)}; keep "
                "the source in service and run the copy again with --replace",
                file=sys.stderr,
            )
        return EXIT_DIFFERENT
    if not args.json:
        print("every table matches")
    return EXIT_OK


def cmd_maintenance(args: argparse.Namespace) -> int:
    config = _load()
    from noticeboard.maintenance import Maintenance

    flag = Maintenance(config.maintenance_file)
    changed = False
    if args.action == "on":
        changed = flag.enable(args.retry_after)
        if not args.json:
            print(f"maintenance {'on' if changed else 'was already on'}: writes are refused")
        # Writes that passed their first look commit before this returns, so a backup
        # taken next holds everything (db copy drains again by itself).
        from noticeboard import migrate, transfer
        from noticeboard.db import make_engine

        engine = make_engine(config.database_url)
        try:
            transfer.drain_writes(engine)
        except Exception as exc:
            print(
                "noticeboard: warning: could not wait for writes in flight "
                f"({migrate.describe_error(exc)}); they end within GUNICORN_TIMEOUT",
                file=sys.stderr,
            )
        finally:
            engine.dispose()
    elif args.action == "off":
        changed = flag.disable()
        if not args.json:
            print(f"maintenance {'off' if changed else 'was already off'}: writes are accepted")
    elif not args.json:
        print("on" if flag.active() is not None else "off")
    if args.json:
        retry_after = flag.active()
        _print_json(
            {
                "maintenance": retry_after is not None,
                "changed": changed,
                "retry_after": retry_after,
                "flag_file": str(config.maintenance_file),
            }
        )
    return EXIT_OK


def cmd_cli_version(args: argparse.Namespace) -> int:
    from noticeboard import __version__

    if args.json:
        _print_json({"cli_version": CLI_VERSION, "app_version": __version__})
    else:
        print(CLI_VERSION)
    return EXIT_OK


def cmd_settings_env_example(args: argparse.Namespace) -> int:
    sys.stdout.write(settings.env_example())
    return 0


def cmd_settings_rst(args: argparse.Namespace) -> int:
    sys.stdout.write(settings.rst())
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def _json_option(cmd: argparse.ArgumentParser, keys: str = "") -> None:
    cmd.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout" + (f" ({keys})" if keys else ""),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="noticeboard",
        description="Run and administer the noticeboard application.",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    for name, func, text in (
        ("check", cmd_db_check, "exit 0 when the schema is at head, 3 behind, 4 ahead"),
        ("plan", cmd_db_plan, "the revisions an upgrade would apply, and whether any contracts"),
    ):
        cmd = db.add_parser(
            name,
            help=text,
            description=(
                f"{text}. --json: current, head, state (head|empty|behind|ahead|unreadable), "
                "at_head, migrate, pending [{revision, contracting}], contracting, "
                "backward_compatible."
            ),
            epilog=EXIT_STATUSES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _json_option(cmd)
        cmd.set_defaults(func=func)
    wait = db.add_parser("wait", help="retry until the database answers (DB_WAIT_TIMEOUT)")
    wait.add_argument("--timeout", type=float, default=None, help="override DB_WAIT_TIMEOUT")
    wait.set_defaults(func=cmd_db_wait)

    for name, flag, func, text in (
        ("copy", "--to", cmd_db_copy, "copy every table to another database, then verify"),
        ("verify", "--against", cmd_db_verify, "compare row counts and checksums of every table"),
    ):
        cmd = db.add_parser(
            name,
            help=text,
            epilog=EXIT_STATUSES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_argument(
            flag, dest="url", default=None, metavar="URL", help=f"default: ${TARGET_ENV}"
        )
        cmd.add_argument("--batch-size", type=_positive, default=1000, help="rows per batch")
        cmd.set_defaults(func=func, flag=flag, json=False)
        if name == "verify":
            _json_option(
                cmd, "match, different [tables], tables {name: {source_rows, target_rows, match}}"
            )
        if name == "copy":
            cmd.add_argument(
                "--replace",
                action="store_true",
                help="empty a target that holds rows (e.g. after an interrupted copy)",
            )

    att = sub.add_parser("attachments", help="attachment commands").add_subparsers(
        dest="attachments_command", required=True, metavar="ACTION"
    )
    imp = att.add_parser(
        "import",
        help="move the files under UPLOAD_DIR into the database (ATTACHMENT_STORE=database)",
    )
    imp.add_argument("--verbose", action="store_true", help="print every file moved")
    imp.set_defaults(func=cmd_attachments_import)

    maint = sub.add_parser(
        "maintenance",
        help="read-only mode: on, off or status",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    maint.add_argument("action", choices=("on", "off", "status"))
    _json_option(maint, "maintenance (the state afterwards), changed, retry_after, flag_file")
    maint.add_argument(
        "--retry-after", type=_positive, default=60, help="seconds clients are told to wait"
    )
    maint.set_defaults(func=cmd_maintenance)

    users = sub.add_parser(
        "users",
        help="accounts of AUTH_MODE=accounts",
        description=(
            "Manage accounts. Passwords are read from stdin (asked for twice on a terminal), "
            "never from the command line. --json: list gives users [{username, role, "
            "created_at, updated_at}]; the others action and user (null after delete), or "
            "error."
        ),
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).add_subparsers(dest="users_command", required=True, metavar="ACTION")
    for name, text in (
        ("create", "create an account; the password comes from stdin"),
        ("list", "list the accounts"),
        ("set-password", "set an account's password from stdin; ends its sessions"),
        ("set-role", "make an account member or admin; ends its sessions"),
        ("delete", "delete an account"),
    ):
        cmd = users.add_parser(
            name,
            help=text,
            epilog=EXIT_STATUSES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name != "list":
            cmd.add_argument("name", help="the username (lower case)")
        if name == "create":
            cmd.add_argument("--role", choices=("member", "admin"), default="member")
        if name == "set-role":
            cmd.add_argument("role", choices=("member", "admin"))
        _json_option(cmd)
        cmd.set_defaults(func=cmd_users, action=name)

    version = sub.add_parser(
        "cli-version",
        help="the interface level of this command line, for the tooling that calls it",
        description=(
            "Print the interface level of this command line, a whole number that grows with "
            "every change tooling can notice. --json: cli_version, app_version. Exit 0."
        ),
    )
    _json_option(version)
    version.set_defaults(func=cmd_cli_version)

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
        report = {} if getattr(args, "json", False) else None
        return _fail(f"invalid settings: {exc}", EXIT_SETTINGS, report)
    except KeyboardInterrupt:
        return 130

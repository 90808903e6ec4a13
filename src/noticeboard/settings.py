"""Every setting of the application, read from the environment in one place.

The table ``SETTINGS`` is data: each entry has a name, a default, whether it is
required and a description. ``load()`` reads and validates all of them and raises
``SettingsError`` whose message names the variable and says how to fix it. The same
table feeds ``noticeboard settings env-example`` (the image's ``.env`` example) and
``noticeboard settings rst`` (the documentation's reference), so the three never drift.

This module imports nothing outside the standard library: the Gunicorn master loads
it through ``noticeboard.gunicorn_conf`` before any worker is forked.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import secrets
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRODUCTION = "production"
DEVELOPMENT = "development"

FILES = "files"
DATABASE = "database"
ATTACHMENT_STORES = (FILES, DATABASE)

#: Values seen in tutorials and example files; a production key must be none of them.
WEAK_SECRET_KEYS = frozenset(
    {
        "secret",
        "secret-key",
        "secret_key",
        "secretkey",
        "changeme",
        "change-me",
        "change_me",
        "please-change-me",
        "dev",
        "development",
        "default",
        "password",
        "noticeboard",
        "test",
        "insecure",
        "your-secret-key",
        "set-me",
    }
)
MIN_SECRET_KEY_LENGTH = 32

OPEN = "open"
ACCOUNTS = "accounts"
PROXY = "proxy"
AUTH_MODES = (OPEN, ACCOUNTS, PROXY)
MEMBER = "member"
ADMIN = "admin"
ROLES = (MEMBER, ADMIN)
MIN_PASSWORD_LENGTH = 12
#: Lower case after normalising; no spaces, so that a name reads the same in every log.
USERNAME_PATTERN = re.compile(r"\A[a-z0-9][a-z0-9._@-]{0,63}\Z")
USERNAME_RULE = "1 to 64 of a-z, 0-9 and . _ @ -, starting with a letter or digit"
#: A header name as HTTP allows it (RFC 9110 token).
_HEADER_NAME = re.compile(r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")

DRIVERS = {
    "sqlite": "sqlite",
    "mysql": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "mariadb+pymysql": "mariadb+pymysql",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it and the fix."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    description: str
    required: bool = False
    #: Also read from the file that ``<name>_FILE`` names (see ``secret()``).
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "NOTICEBOARD_ENV",
        PRODUCTION,
        "``production`` or ``development``. Production refuses a missing or weak "
        "SECRET_KEY; development generates a throwaway key.",
    ),
    Setting(
        "SECRET_KEY",
        None,
        f"Key that signs cookies. At least {MIN_SECRET_KEY_LENGTH} characters and not a "
        "well-known example value; generate one with "
        "``python3 -c 'import secrets; print(secrets.token_urlsafe(48))'``.",
        required=True,
        secret=True,
    ),
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy URL of the database: ``sqlite:////data/noticeboard.db``, "
        "``mysql+pymysql://user:pass@host/db`` (MariaDB) or "
        "``postgresql+psycopg://user:pass@host/db``. Empty means a SQLite file "
        "``noticeboard.db`` in DATA_DIR.",
        secret=True,
    ),
    Setting(
        "DATA_DIR",
        "/data",
        "Directory for the SQLite database and, by default, the uploads. Must be writable.",
    ),
    Setting(
        "UPLOAD_DIR",
        None,
        "Directory where attachments are stored under generated names. Empty means "
        "``DATA_DIR/uploads``.",
    ),
    Setting(
        "ATTACHMENT_STORE",
        FILES,
        "Where attachments are kept: ``files`` (under UPLOAD_DIR; right for one host) or "
        "``database`` (in the database's ``attachment_blobs`` table, so that every app "
        "host serves every attachment and the database backup holds them; needed "
        "behind a load balancer). In ``database`` mode a file still under UPLOAD_DIR "
        "from before the switch is served too, and ``noticeboard attachments import`` "
        "moves such files into the table. On MariaDB, ``max_allowed_packet`` must be "
        "at least twice MAX_UPLOAD_MB and 1 MiB more (see the deployment docs).",
    ),
    Setting(
        "MAINTENANCE_FILE",
        None,
        "While this file exists the board is read-only: writes get ``503`` with a "
        "message and ``Retry-After``, reads and live updates go on. Checked on every "
        "write, so no restart is needed; ``noticeboard maintenance on`` and ``off`` "
        "create and remove it. Empty means ``DATA_DIR/maintenance``.",
    ),
    Setting("MAX_UPLOAD_MB", "10", "Largest accepted request body in MiB (1 to 1024)."),
    Setting(
        "LOG_LEVEL",
        "INFO",
        "Logging threshold: DEBUG, INFO, WARNING, ERROR or CRITICAL.",
    ),
    Setting(
        "TRUSTED_PROXY_COUNT",
        "0",
        "Number of reverse proxies in front of the app whose X-Forwarded-* headers are "
        "trusted (0 to 5). Leave 0 when clients reach the app directly.",
    ),
    Setting(
        "MIGRATE_ON_START",
        "auto",
        "Whether ``noticeboard serve`` upgrades the schema before starting: ``auto`` "
        "(only for SQLite, where there is one node), ``true`` or ``false``. With "
        "several nodes run ``noticeboard db upgrade`` once as a job instead.",
    ),
    Setting(
        "DB_WAIT_TIMEOUT",
        "60",
        "Seconds ``noticeboard db wait`` keeps retrying until the database answers (0 to 3600).",
    ),
    Setting("GUNICORN_BIND", "0.0.0.0:8000", "Address Gunicorn listens on, ``HOST:PORT``."),
    Setting("GUNICORN_WORKERS", "2", "Number of Gunicorn worker processes (1 to 64)."),
    Setting(
        "GUNICORN_WORKER_CLASS",
        "eventlet",
        "Gunicorn worker class: ``eventlet`` or ``gevent``. Both serve many SSE "
        "clients per process.",
    ),
    Setting(
        "GUNICORN_WORKER_CONNECTIONS",
        "1000",
        "Most connections one worker serves at once (10 to 100000). Every open page holds "
        "one for its event stream; raise it together with the memory limit (about 26 KB "
        "per idle stream, see bench/README.md).",
    ),
    Setting(
        "GUNICORN_TIMEOUT",
        "30",
        "Seconds before the Gunicorn master restarts a silent worker (5 to 3600).",
    ),
    Setting(
        "GUNICORN_GRACEFUL_TIMEOUT",
        "20",
        "Seconds in-flight requests get to finish after SIGTERM (1 to 3600).",
    ),
    Setting(
        "AUTH_MODE",
        ACCOUNTS,
        "Who may use the board: ``accounts`` (people sign in with a username and "
        "password; members read and post, admins also delete and manage accounts; "
        "create the first admin with ADMIN_USERNAME and ADMIN_PASSWORD or ``noticeboard "
        "users create NAME --role admin``), ``proxy`` (a single sign-on proxy at "
        "AUTH_PROXY_TRUSTED names the user in AUTH_PROXY_USER_HEADER) or ``open`` "
        "(anyone who can reach the board reads, posts and deletes: only for a trusted "
        "network, and only when set by name). See the access control page.",
    ),
    Setting(
        "ADMIN_USERNAME",
        None,
        "With ADMIN_PASSWORD: the first admin, created by ``noticeboard db upgrade`` (and "
        "by ``noticeboard serve`` when it migrates on start) while the database has no "
        f"admin. Lower case; {USERNAME_RULE}.",
    ),
    Setting(
        "ADMIN_PASSWORD",
        None,
        f"Password of ADMIN_USERNAME, at least {MIN_PASSWORD_LENGTH} characters. Only "
        "used when no admin exists yet; change it afterwards with ``noticeboard users "
        "set-password``. There is no default password.",
        secret=True,
    ),
    Setting(
        "AUTH_THROTTLE_MAX_FAILURES",
        "5",
        "Failed sign-ins for one account, or from one client address, within "
        "AUTH_THROTTLE_WINDOW_S after which sign-in is refused (429) until the window "
        "has passed (1 to 1000). Each failure before that is answered more slowly. "
        "Counted in the database, so across workers and hosts.",
    ),
    Setting(
        "AUTH_THROTTLE_WINDOW_S",
        "900",
        "Seconds a failed sign-in counts towards AUTH_THROTTLE_MAX_FAILURES (10 to 86400).",
    ),
    Setting(
        "AUTH_PROXY_TRUSTED",
        None,
        "``proxy`` mode, required there: comma-separated addresses or networks "
        "(``10.0.0.5``, ``172.18.0.0/16``) of the proxies whose user and group headers "
        "are believed. The peer that connects to the app is checked (not "
        "X-Forwarded-For); from any other peer the headers are ignored.",
    ),
    Setting(
        "AUTH_PROXY_USER_HEADER",
        "Remote-User",
        "``proxy`` mode: the header in which the proxy names the signed-in user.",
    ),
    Setting(
        "AUTH_PROXY_GROUPS_HEADER",
        "Remote-Groups",
        "``proxy`` mode: the header in which the proxy lists the user's groups, comma-separated.",
    ),
    Setting(
        "AUTH_PROXY_ADMIN_GROUP",
        "noticeboard-admins",
        "``proxy`` mode: members of this group are admins.",
    ),
    Setting(
        "AUTH_PROXY_MEMBER_GROUP",
        None,
        "``proxy`` mode: only members of this group (or of AUTH_PROXY_ADMIN_GROUP) may "
        "use the board. Empty means every user the proxy signed in is a member.",
    ),
    Setting(
        "SSE_HEARTBEAT_SECONDS",
        "15",
        "Seconds between comment lines on an idle event stream, to keep proxies from "
        "closing it (1 to 300).",
    ),
    Setting(
        "SSE_POLL_SECONDS",
        "0.5",
        "Seconds between two reads of the events table by each worker (0.05 to 2).",
    ),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
FILE_SUFFIX = "_FILE"


def secret(environ: Mapping[str, str], name: str) -> str:
    """A secret from ``<name>_FILE`` (the file's text, exactly) or else from ``<name>``.

    A file keeps every character as written - ``$``, quotes, backslashes, spaces at
    either end - since nothing parses it on the way: Compose interpolates env files, and
    ``docker inspect`` shows the environment. Only the one line end an editor or
    ``echo`` adds at the end is dropped. The variable itself is read as before, trimmed.
    """
    file_name = name + FILE_SUFFIX
    path = environ.get(file_name, "").strip()
    direct = environ.get(name, "").strip()
    if not path:
        return direct
    if direct:
        raise SettingsError(
            f"both {name} and {file_name} are set; keep one of them (the file is preferred "
            "for secrets: it stays out of `docker inspect`)"
        )
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SettingsError(
            f"{file_name}={path!r} cannot be read ({reason}); point it at a readable "
            f"UTF-8 file holding {name}, or unset it"
        ) from None
    # One final line end, LF or CRLF; a lone CR is no line end and is refused below.
    text = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
    if "\n" in text or "\r" in text or "\0" in text:
        raise SettingsError(
            f"{file_name}={path!r} holds more than one line; {name} must be one line "
            "without NUL characters"
        )
    return text


@dataclass(frozen=True)
class Settings:
    env: str
    secret_key: str
    secret_key_generated: bool
    database_url: str
    data_dir: Path
    upload_dir: Path
    attachment_store: str
    maintenance_file: Path
    max_upload_mb: int
    log_level: str
    trusted_proxy_count: int
    migrate_on_start: bool
    db_wait_timeout: float
    gunicorn_bind: str
    gunicorn_workers: int
    gunicorn_worker_class: str
    gunicorn_worker_connections: int
    gunicorn_timeout: int
    gunicorn_graceful_timeout: int
    sse_heartbeat_seconds: float
    sse_poll_seconds: float
    auth_mode: str = ACCOUNTS
    admin_username: str = ""
    admin_password: str = field(default="", repr=False)
    auth_throttle_max_failures: int = 5
    auth_throttle_window_s: int = 900
    auth_proxy_trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    auth_proxy_user_header: str = "Remote-User"
    auth_proxy_groups_header: str = "Remote-Groups"
    auth_proxy_admin_group: str = "noticeboard-admins"
    auth_proxy_member_group: str = ""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def attachments_in_database(self) -> bool:
        return self.attachment_store == DATABASE

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def database_url_redacted(self) -> str:
        return redact_url(self.database_url)


def redact_url(url: str) -> str:
    """The URL with its password replaced, fit for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class _Reader:
    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def raw(self, name: str) -> str:
        if SETTINGS_BY_NAME[name].secret:
            value = secret(self.environ, name)
        else:
            value = self.environ.get(name, "").strip()
        if value:
            return value
        return SETTINGS_BY_NAME[name].default or ""

    def number(self, name: str, kind: Callable[[str], Any], low: float, high: float) -> Any:
        text = self.raw(name)
        try:
            value = kind(text)
        except ValueError:
            word = "a whole number" if kind is int else "a number"
            raise SettingsError(
                f"{name}={text!r} is not {word}; set it to {word} from {low} to {high} "
                f"or unset it for the default {SETTINGS_BY_NAME[name].default}"
            ) from None
        if not (low <= value <= high) or (isinstance(value, float) and math.isnan(value)):
            raise SettingsError(
                f"{name}={text!r} is out of range; set it to a value from {low} to {high}"
            )
        return value

    def choice(self, name: str, choices: tuple[str, ...], lower: bool = True) -> str:
        text = self.raw(name)
        value = text.lower() if lower else text.upper()
        if value not in choices:
            raise SettingsError(
                f"{name}={text!r} is not valid; set it to one of {', '.join(choices)}"
            )
        return value


def normalise_username(text: str) -> str:
    return text.strip().lower()


def username_problem(name: str) -> str | None:
    """Why ``name`` (normalised) cannot be a username, or None."""
    if USERNAME_PATTERN.match(name):
        return None
    return f"{name[:70]!r} is not a valid username ({USERNAME_RULE})"


def password_problem(password: str, username: str = "") -> str | None:
    """Why ``password`` is too weak to accept, or None. Never echoes the password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"is {len(password)} characters long; use at least {MIN_PASSWORD_LENGTH}"
    if len(set(password)) < 5 or password.lower() in WEAK_SECRET_KEYS:
        return "is a trivial or well-known value; use a long random passphrase"
    if username and username.lower() in password.lower():
        return "contains the username; choose one that does not"
    if "\0" in password or password != password.strip():
        return "starts or ends with white space or holds a NUL character"
    return None


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(
                f"AUTH_PROXY_TRUSTED holds {part!r}, which is not an address or network; "
                "list the proxies like 10.0.0.5,172.18.0.0/16"
            ) from None
    return tuple(networks)


def _auth(r: _Reader) -> dict[str, Any]:
    mode = r.choice("AUTH_MODE", AUTH_MODES)
    username = normalise_username(r.raw("ADMIN_USERNAME"))
    password = r.raw("ADMIN_PASSWORD")
    password_file = r.environ.get("ADMIN_PASSWORD" + FILE_SUFFIX, "").strip()
    if username and not password and password_file:
        raise SettingsError(
            f"ADMIN_PASSWORD_FILE={password_file!r} is empty; write the password of "
            f"{username}, the first admin, into it (at least {MIN_PASSWORD_LENGTH} characters)"
        )
    if username and not password:
        raise SettingsError(
            "ADMIN_USERNAME is set but ADMIN_PASSWORD is not; set ADMIN_PASSWORD (or "
            "ADMIN_PASSWORD_FILE) too, or unset ADMIN_USERNAME"
        )
    if password and not username:
        raise SettingsError(
            "ADMIN_PASSWORD is set but ADMIN_USERNAME is not; name the first admin in "
            "ADMIN_USERNAME, or unset ADMIN_PASSWORD"
        )
    if username and (problem := username_problem(username)):
        raise SettingsError(f"ADMIN_USERNAME: {problem}")
    if password and (problem := password_problem(password, username)):
        raise SettingsError(f"ADMIN_PASSWORD {problem}")
    trusted = _networks(r.raw("AUTH_PROXY_TRUSTED"))
    if mode == PROXY and not trusted:
        raise SettingsError(
            "AUTH_PROXY_TRUSTED is empty, but AUTH_MODE=proxy needs it: list the addresses "
            "or networks of the single sign-on proxies (e.g. 10.0.0.5,172.18.0.0/16); "
            "without it no user header would be believed"
        )
    headers = {}
    for name in ("AUTH_PROXY_USER_HEADER", "AUTH_PROXY_GROUPS_HEADER"):
        value = r.raw(name)
        if not _HEADER_NAME.match(value):
            raise SettingsError(f"{name}={value!r} is not a header name; set it like Remote-User")
        headers[name.lower()] = value
    return {
        "auth_mode": mode,
        "admin_username": username,
        "admin_password": password,
        "auth_throttle_max_failures": r.number("AUTH_THROTTLE_MAX_FAILURES", int, 1, 1000),
        "auth_throttle_window_s": r.number("AUTH_THROTTLE_WINDOW_S", int, 10, 86400),
        "auth_proxy_trusted": trusted,
        **headers,
        "auth_proxy_admin_group": r.raw("AUTH_PROXY_ADMIN_GROUP"),
        "auth_proxy_member_group": r.raw("AUTH_PROXY_MEMBER_GROUP"),
    }


def normalise_database_url(url: str) -> str:
    """Pin the driver the application ships with for each database family."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError(
            f"DATABASE_URL={redact_url(url)!r} is not a URL; set it like "
            "postgresql+psycopg://user:password@host:5432/noticeboard"
        )
    driver = DRIVERS.get(scheme.lower())
    if driver is None:
        raise SettingsError(
            f"DATABASE_URL uses the unsupported scheme {scheme!r}; use sqlite, "
            "mysql+pymysql (MariaDB) or postgresql+psycopg"
        )
    if driver.endswith("pymysql") and "charset=" not in rest:
        rest += ("&" if "?" in rest else "?") + "charset=utf8mb4"
    return f"{driver}://{rest}"


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ``SettingsError`` naming the first bad one."""
    env_map = os.environ if environ is None else environ
    r = _Reader(env_map)

    env = r.choice("NOTICEBOARD_ENV", (PRODUCTION, DEVELOPMENT))

    secret_key = r.raw("SECRET_KEY")
    generated = False
    if env == PRODUCTION:
        if not secret_key:
            raise SettingsError(
                "SECRET_KEY is not set; production needs one: set SECRET_KEY to the output "
                "of python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        if secret_key.lower() in WEAK_SECRET_KEYS or len(set(secret_key)) < 8:
            raise SettingsError(
                "SECRET_KEY is a well-known or trivial value; set it to a long random "
                "string, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        if len(secret_key) < MIN_SECRET_KEY_LENGTH:
            raise SettingsError(
                f"SECRET_KEY is {len(secret_key)} characters long; production needs at "
                f"least {MIN_SECRET_KEY_LENGTH}: generate one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
    elif not secret_key:
        secret_key = secrets.token_urlsafe(48)
        generated = True

    data_dir_text = r.raw("DATA_DIR")
    data_dir = Path(data_dir_text)
    if not data_dir.is_absolute():
        data_dir = Path.cwd() / data_dir
    upload_text = r.raw("UPLOAD_DIR")
    upload_dir = Path(upload_text) if upload_text else data_dir / "uploads"
    if not upload_dir.is_absolute():
        upload_dir = Path.cwd() / upload_dir

    maintenance_text = r.raw("MAINTENANCE_FILE")
    maintenance_file = Path(maintenance_text) if maintenance_text else data_dir / "maintenance"
    if not maintenance_file.is_absolute():
        maintenance_file = Path.cwd() / maintenance_file

    url_text = r.raw("DATABASE_URL")
    database_url = (
        normalise_database_url(url_text) if url_text else f"sqlite:///{data_dir / 'noticeboard.db'}"
    )

    migrate_text = r.raw("MIGRATE_ON_START").lower()
    if migrate_text == "auto":
        migrate_on_start = database_url.startswith("sqlite")
    elif migrate_text in {"1", "true", "yes", "on"}:
        migrate_on_start = True
    elif migrate_text in {"0", "false", "no", "off"}:
        migrate_on_start = False
    else:
        raise SettingsError(
            f"MIGRATE_ON_START={migrate_text!r} is not valid; set it to auto, true or false"
        )

    bind = r.raw("GUNICORN_BIND")
    host, colon, port = bind.rpartition(":")
    if not bind.startswith("unix:") and (not colon or not host or not port.isdigit()):
        raise SettingsError(f"GUNICORN_BIND={bind!r} is not HOST:PORT; set it like 0.0.0.0:8000")
    if port.isdigit() and not 0 < int(port) < 65536:
        raise SettingsError(f"GUNICORN_BIND={bind!r} has an invalid port; use 1 to 65535")

    return Settings(
        env=env,
        secret_key=secret_key,
        secret_key_generated=generated,
        database_url=database_url,
        data_dir=data_dir,
        upload_dir=upload_dir,
        attachment_store=r.choice("ATTACHMENT_STORE", ATTACHMENT_STORES),
        maintenance_file=maintenance_file,
        max_upload_mb=r.number("MAX_UPLOAD_MB", int, 1, 1024),
        log_level=r.choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), False),
        trusted_proxy_count=r.number("TRUSTED_PROXY_COUNT", int, 0, 5),
        migrate_on_start=migrate_on_start,
        db_wait_timeout=r.number("DB_WAIT_TIMEOUT", float, 0, 3600),
        gunicorn_bind=bind,
        gunicorn_workers=r.number("GUNICORN_WORKERS", int, 1, 64),
        gunicorn_worker_class=r.choice("GUNICORN_WORKER_CLASS", ("eventlet", "gevent")),
        gunicorn_worker_connections=r.number("GUNICORN_WORKER_CONNECTIONS", int, 10, 100000),
        gunicorn_timeout=r.number("GUNICORN_TIMEOUT", int, 5, 3600),
        gunicorn_graceful_timeout=r.number("GUNICORN_GRACEFUL_TIMEOUT", int, 1, 3600),
        sse_heartbeat_seconds=r.number("SSE_HEARTBEAT_SECONDS", float, 1, 300),
        sse_poll_seconds=r.number("SSE_POLL_SECONDS", float, 0.05, 2),
        **_auth(r),
    )


def configure_logging(level: str) -> None:
    """One line per record on stderr, which the container runtime collects."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
        force=True,
    )
    # Alembic announces each of its plugins at INFO on import; that is noise here.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def env_example() -> str:
    """An ``.env`` file listing every setting, defaults commented out."""
    lines = [
        "# Settings of the noticeboard application.",
        "# Generated by `noticeboard settings env-example`; every variable is optional",
        "# unless marked required. Uncomment a line to change its default.",
    ]
    for s in SETTINGS:
        lines.append("")
        lines.extend(f"# {part}" for part in _wrap(_plain(s.description), 76))
        if s.secret:
            lines.append(f"# Or put it in a file and set {s.name}{FILE_SUFFIX} to its path.")
        if s.required:
            lines.append("# Required in production.")
            lines.append(f"{s.name}=")
        else:
            lines.append(f"#{s.name}={s.default or ''}")
    return "\n".join(lines) + "\n"


def rst() -> str:
    """A reStructuredText reference of every setting."""
    lines = [
        "Settings",
        "========",
        "",
        "Every setting is read from an environment variable by ``noticeboard.settings``.",
        "",
    ]
    for s in SETTINGS:
        lines.append(f".. envvar:: {s.name}")
        lines.append("")
        if s.required:
            default = "none; required in production"
        elif s.default:
            default = f"``{s.default}``"
        else:
            default = "empty"
        lines.append(f"   Default: {default}.")
        lines.append("")
        lines.extend(f"   {part}" for part in _wrap(s.description, 80))
        lines.append("")
        if s.secret:
            lines.append(
                f"   Or from a file: ``{s.name}{FILE_SUFFIX}`` names it; its text is the value, "
                "character for character (one final line end dropped), and stays out of "
                "``docker inspect``. Setting both is refused."
            )
            lines.append("")
    return "\n".join(lines)


def _plain(text: str) -> str:
    return text.replace("``", "")


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=width, break_on_hyphens=False, break_long_words=False)

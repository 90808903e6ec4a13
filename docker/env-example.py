#!/usr/bin/env python3
"""Write docker/.env.docker.example: the compose files' variables and every app setting.

Usage::

    docker/env-example.py            # print the example
    docker/env-example.py --write    # regenerate docker/.env.docker.example
    docker/env-example.py --check    # exit 1 when the file differs from what it should be

The compose variables are listed here; the application's settings come from
``noticeboard.settings.env_example()`` (the text of ``noticeboard settings
env-example``), so a new or changed setting reaches the example by regenerating it.
tests/image checks that the file is current and that every variable the compose files
use is documented in it.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docker" / ".env.docker.example"
sys.path.insert(0, str(ROOT / "src"))

from noticeboard import settings  # noqa: E402 - stdlib-only module of the app

# (name, default, required, description); default None means empty.
COMPOSE_VARIABLES: tuple[tuple[str, str | None, bool, str], ...] = (
    (
        "NOTICEBOARD_IMAGE",
        "noticeboard:latest",
        False,
        "Image of the app and the migrate job (docker-compose.prod.yml), e.g. "
        "registry.example.org/noticeboard:v1 or pinned by digest as NAME@sha256:DIGEST.",
    ),
    (
        "NOTICEBOARD_PUBLISH",
        "8000",
        False,
        "Where the app's port 8000 is published on the host: PORT, or ADDRESS:PORT "
        "such as 127.0.0.1:8000 behind a reverse proxy on the same machine.",
    ),
    (
        "ADMIN_PASSWORD_SECRET",
        "./secrets/admin_password",
        False,
        "File on the host (relative to docker/) holding the first admin's password, one "
        "line of at least 12 characters, readable by uid 10001 (mode 0644 in a 0700 "
        "directory). docker-compose.prod.yml hands it to the migrate job only, as the "
        "Compose secret admin_password; `up` fails while it is missing. The admin is "
        "ADMIN_USERNAME (default admin there), created while the database has no admin.",
    ),
    (
        "MARIADB_IMAGE",
        "mariadb:11.8",
        False,
        "Image of the optional MariaDB service (profile mariadb). Choose MariaDB or "
        "PostgreSQL, not both: the app uses the one DATABASE_URL names. Offline machines "
        "use the stand-in from docker/standins/mariadb.",
    ),
    ("MARIADB_DATABASE", "noticeboard", False, "Database MariaDB creates on first start."),
    ("MARIADB_USER", "noticeboard", False, "User MariaDB creates on first start."),
    (
        "MARIADB_PASSWORD",
        None,
        False,
        "Password of MARIADB_USER. Required with the mariadb profile; use it in "
        "DATABASE_URL too, e.g. "
        "DATABASE_URL=mysql+pymysql://noticeboard:${MARIADB_PASSWORD}@mariadb:3306/noticeboard",
    ),
    (
        "POSTGRES_IMAGE",
        "postgres:17",
        False,
        "Image of the optional PostgreSQL service (profile postgres), the other choice "
        "beside MariaDB. Offline machines use the stand-in from docker/standins/postgres.",
    ),
    ("POSTGRES_DB", "noticeboard", False, "Database PostgreSQL creates on first start."),
    (
        "POSTGRES_USER",
        "noticeboard",
        False,
        "User PostgreSQL creates on first start (the owner of every database there).",
    ),
    (
        "POSTGRES_PASSWORD",
        None,
        False,
        "Password of POSTGRES_USER. Required with the postgres profile; use it in "
        "DATABASE_URL too, e.g. "
        "DATABASE_URL=postgresql+psycopg://noticeboard:${POSTGRES_PASSWORD}@postgres:5432/noticeboard",
    ),
    (
        "NOTICEBOARD_DEV_IMAGE",
        "noticeboard:dev",
        False,
        "Development image (docker-compose.yml), built from docker/Dockerfile, target dev.",
    ),
    (
        "NOTICEBOARD_SRC",
        "../src",
        False,
        "Source tree bind-mounted into the development containers (relative to docker/).",
    ),
    (
        "BASE",
        "debian:trixie-slim",
        False,
        "Base image of the development build (the runtime's Debian release).",
    ),
    (
        "BUILD_BASE",
        "debian:trixie-slim",
        False,
        "Image the development build makes the front end and the wheel on.",
    ),
    (
        "DEV_PUBLISH",
        "127.0.0.1:8000",
        False,
        "Where the development server is published on the host.",
    ),
    (
        "DEBUGPY_PUBLISH",
        "127.0.0.1:5678",
        False,
        "Where debugpy listens on the host with the debug profile (attach your IDE here); "
        "that profile's Flask server is on DEBUG_PUBLISH.",
    ),
    (
        "DEBUG_PUBLISH",
        "127.0.0.1:8001",
        False,
        "Where the debug profile's Flask development server is published.",
    ),
    (
        "NODE_IMAGE",
        "node:22-bookworm-slim",
        False,
        "Image of the optional front-end watcher (profile frontend). Offline machines "
        "use the stand-in from docker/standins/node.",
    ),
    (
        "NOTICEBOARD_FRONTEND",
        "../frontend",
        False,
        "Front-end source tree the watcher builds from (relative to docker/); it writes "
        "into NOTICEBOARD_SRC, the tree the development app serves.",
    ),
)

HEADER = """\
# Variables of docker/docker-compose.prod.yml and docker/docker-compose.yml.
#
# Copy this file to docker/.env (next to the compose files, where Compose reads it)
# and edit it there. Generated by docker/env-example.py; do not edit by hand.
# Each entry: what it is, then its default as a commented line, or an empty
# assignment when it is required.
"""

APP_HEADER = """\
# --- Application settings ------------------------------------------------------
# From `noticeboard settings env-example`. The compose files fix DATA_DIR=/data and
# GUNICORN_BIND=0.0.0.0:8000 inside the container, and set NOTICEBOARD_ENV and
# MIGRATE_ON_START per service (the migrate job runs migrations); the others pass
# through, empty meaning the default shown. In docker-compose.prod.yml AUTH_MODE is
# accounts and ADMIN_USERNAME admin unless set here, and the admin's password comes
# from the file ADMIN_PASSWORD_SECRET names, never from ADMIN_PASSWORD.
"""


def render() -> str:
    parts = [
        HEADER,
        "# --- Compose: images, ports, MariaDB or PostgreSQL ------------------------------\n",
    ]
    for name, default, required, description in COMPOSE_VARIABLES:
        lines = [f"# {line}" for line in textwrap.wrap(description, 80, break_long_words=False)]
        lines.append(f"{name}=" if required else f"#{name}={default or ''}")
        parts.append("\n".join(lines) + "\n\n")
    parts.append(APP_HEADER + "\n")
    parts.append(settings.env_example())
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {TARGET.name}")
    group.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        TARGET.write_text(text)
    elif args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run docker/env-example.py --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real services for the tests: Debian packages, MariaDB and PostgreSQL on loopback.

Whatever is missing is installed with apt-get and started with ``service`` (there is
no systemd here). Anything that still does not work raises ``ServiceError``, which
the fixtures turn into a test failure: a missing server never skips a test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

PACKAGES = {
    "mariadb-server": "/usr/sbin/mariadbd",
    "postgresql": "/usr/bin/pg_ctlcluster",
    "chromium": "/usr/bin/chromium",
}

DB_USER = "nbtest"
DB_PASSWORD = "nbtest-loopback-only"
MARIADB_PORT = 3306
POSTGRES_PORT = 5432
APT_LOG = Path("/tmp/apt-install.log")


class ServiceError(RuntimeError):
    """A service the tests need is not available."""


def _run(*cmd: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise ServiceError(
            f"`{' '.join(cmd)}` failed with exit code {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result


def _apt_busy() -> bool:
    if APT_LOG.exists():
        lines = APT_LOG.read_text(errors="replace").strip().splitlines()
        if lines and lines[-1].strip() != "done":
            return True
    ps = _run("ps", "-eo", "comm=", check=False).stdout.split()
    return any(name in {"apt-get", "apt", "dpkg"} for name in ps)


def ensure_packages() -> None:
    missing = [pkg for pkg, path in PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    deadline = time.monotonic() + 900
    while _apt_busy() and time.monotonic() < deadline:
        time.sleep(5)
    missing = [pkg for pkg, path in PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise ServiceError(f"packages {missing} are missing and apt-get is not available")
    # The image session runs beside this one (scripts/test-all) and may be installing
    # packages itself: wait for dpkg's lock rather than fail on it.
    wait = ("-o", "DPkg::Lock::Timeout=900")
    install = ("apt-get", *wait, "install", "-y", "--no-install-recommends", *missing)
    if _run(*install, check=False).returncode != 0:
        _run("apt-get", *wait, "update")
        _run(*install)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def wait_port(port: int, up: bool, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            state = "open" if up else "close"
            raise ServiceError(f"port {port} did not {state} within {timeout} s")
        time.sleep(0.3)


def start_service(name: str, port: int) -> None:
    if port_open(port):
        return
    _run("service", name, "start", check=False, timeout=180)
    wait_port(port, up=True)


def stop_service(name: str, port: int) -> None:
    _run("service", name, "stop", timeout=180)
    wait_port(port, up=False)


def start_mariadb() -> None:
    ensure_packages()
    start_service("mariadb", MARIADB_PORT)
    statements = "".join(
        f"CREATE USER IF NOT EXISTS '{DB_USER}'@'{host}' IDENTIFIED BY '{DB_PASSWORD}';"
        f"GRANT ALL PRIVILEGES ON `nbt\\_%`.* TO '{DB_USER}'@'{host}';"
        # PROCESS lets a test see transactions waiting on a lock.
        f"GRANT PROCESS ON *.* TO '{DB_USER}'@'{host}';"
        for host in ("localhost", "127.0.0.1")
    )
    _run("mariadb", "-u", "root", "-e", statements + "FLUSH PRIVILEGES;")


def start_postgresql() -> None:
    ensure_packages()
    start_service("postgresql", POSTGRES_PORT)
    sql = (
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_USER}') THEN "
        f"CREATE ROLE {DB_USER} LOGIN CREATEDB PASSWORD '{DB_PASSWORD}'; END IF; END $$;"
    )
    _run("runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-c", sql)


def mariadb_admin_url(database: str = "") -> str:
    return f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{MARIADB_PORT}/{database}"


def postgres_admin_url(database: str = "postgres") -> str:
    return f"postgresql+psycopg://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{POSTGRES_PORT}/{database}"


def _admin(url: str, statement: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def create_database(backend: str, tmp_dir: Path) -> str:
    """A new, empty database; returns its URL."""
    name = f"nbt_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / (name + '.db')}"
    if backend == "mariadb":
        _admin(mariadb_admin_url(), f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        return mariadb_admin_url(name) + "?charset=utf8mb4"
    if backend == "postgresql":
        _admin(postgres_admin_url(), f"CREATE DATABASE {name}")
        return postgres_admin_url(name)
    raise ValueError(backend)


def drop_database(backend: str, url: str) -> None:
    name = sa.make_url(url).database
    if backend == "mariadb" and port_open(MARIADB_PORT):
        _admin(mariadb_admin_url(), f"DROP DATABASE IF EXISTS {name}")
    elif backend == "postgresql" and port_open(POSTGRES_PORT):
        _admin(postgres_admin_url(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


SERVICES = {
    "mariadb": ("mariadb", MARIADB_PORT, start_mariadb),
    "postgresql": ("postgresql", POSTGRES_PORT, start_postgresql),
}


@contextlib.contextmanager
def new_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """A new, empty database for the duration of a ``with`` block, then dropped; its URL.

    The backend's server must have been installed and set up (its ``SERVICES`` start
    function); one stopped since, by an outage test, is started again here.
    """
    if backend != "sqlite":
        start_service(*SERVICES[backend][:2])
    url = create_database(backend, tmp_dir)
    try:
        yield url
    finally:
        drop_database(backend, url)

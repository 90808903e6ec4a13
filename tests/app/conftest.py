"""Fixtures: real databases for each backend, the app on them, Gunicorn processes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings

from noticeboard import migrate, settings
from noticeboard.app import create_app

import services
from helpers import base_env

# Property tests (test_properties.py). "ci", the default, tries the same bounded set of
# examples on every run, so a change only fails on what it broke. "explore" searches at
# random with ten times as many, shrinks what it finds and remembers it in .hypothesis/:
#     HYPOTHESIS_PROFILE=explore .venv/bin/nox -s tests -- -k test_properties --timeout=0
# PROPERTY_EXAMPLES changes the ci count (500 per test and backend).
_PROPERTY_CHECKS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
hypothesis_settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "500")),
    derandomize=True,
    database=None,
    # No shrinking in CI: the failing example is printed as found, and a run stays bounded.
    phases=[Phase.explicit, Phase.generate],
    **_PROPERTY_CHECKS,
)
hypothesis_settings.register_profile("explore", max_examples=5000, **_PROPERTY_CHECKS)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BACKENDS = ["sqlite", "mariadb", "postgresql"]
SERVER_BACKENDS = ["mariadb", "postgresql"]

_started: set[str] = set()


def ensure_backend(backend: str) -> None:
    """Install and start the server for ``backend``; any problem fails the test."""
    if backend == "sqlite" or backend in _started:
        return
    _, _, start = services.SERVICES[backend]
    try:
        start()
    except services.ServiceError as exc:
        pytest.fail(f"{backend} is required for these tests and could not be started: {exc}")
    _started.add(backend)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    ensure_backend(request.param)
    return request.param


@contextlib.contextmanager
def new_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    ensure_backend(backend)
    with services.new_database(backend, tmp_dir) as url:
        yield url


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the current backend."""
    with new_database(backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def shared_url(backend: str, tmp_path_factory) -> Iterator[str]:
    """One migrated database per backend, emptied by the ``app`` fixture for each test."""
    with new_database(backend, tmp_path_factory.mktemp(backend)) as url:
        migrate.upgrade(url)
        yield url


def config_for(url: str, data_dir: Path, **extra: str) -> settings.Settings:
    return settings.load(base_env(url, data_dir, **extra))


@pytest.fixture
def app(shared_url: str, tmp_path: Path):
    engine = sa.create_engine(shared_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM notes"))
        conn.execute(sa.text("DELETE FROM events"))
        conn.execute(sa.text("DELETE FROM attachment_blobs"))
        conn.execute(sa.text("DELETE FROM users"))
        conn.execute(sa.text("DELETE FROM sign_in_failures"))
    engine.dispose()
    application = create_app(config_for(shared_url, tmp_path / "data", MAX_UPLOAD_MB="1"))
    yield application
    application.extensions["noticeboard.db"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()

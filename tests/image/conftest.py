"""Fixtures of tests/image; the code lives in imagetools.py (a unique module name)."""

from __future__ import annotations

import pytest
from imagetools import (  # noqa: F401 - fixtures are found by name
    client,
    compose_project,
    containers,
    dev_image,
    image,
    mariadb_image,
    node_image,
    postgres_image,
    src_copy,
)

# Image builds happen in fixtures; a cold arm64 build under emulation takes many
# minutes, far above the per-test default meant for the application's tests.
BUILD_TIMEOUT = 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT))

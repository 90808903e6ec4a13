"""The mariadb_native scenario has no Molecule idempotence step (molecule.yml): its
re-run test is the check, so it runs first, on the hosts exactly as converge left them,
before any other test writes to them."""

from __future__ import annotations

IDEMPOTENCE = "test_rerun_changes_nothing_and_keeps_the_server_running"


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.originalname != IDEMPOTENCE)

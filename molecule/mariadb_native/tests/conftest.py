"""The mariadb_native scenario's shared pieces.

It has no Molecule idempotence step (molecule.yml): its re-run test is the check, so it
runs first, on the hosts exactly as converge left them, before any other test (a backup,
a restore) writes to them.
"""

from __future__ import annotations

from verifylib import host_named, hosts_in

IDEMPOTENCE = "test_rerun_changes_nothing_and_keeps_the_server_running"
DB = hosts_in("db")[0]
APP = hosts_in("app")[0]
# The role's drop-in and the firewall's chain on the db host.
CONFIG = "/etc/mysql/mariadb.conf.d/90-noticeboard.cnf"
CHAIN = "NOTICEBOARD-MARIADB"


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.originalname != IDEMPOTENCE)


def sql(statement: str) -> list[list[str]]:
    """Runs SQL as root on the db host (unix-socket login) and returns the rows."""
    cmd = host_named(DB).run("mariadb --batch --skip-column-names -e %s", statement)
    assert cmd.rc == 0, cmd.stderr
    return [line.split("\t") for line in cmd.stdout.splitlines()]

"""playbooks/uninstall.yml on the native MariaDB host (and an app host that never had the
app): Debian's server, its drop-in and its firewall go, the databases stay, and the role
brings the same data back. Files run in name order: this one comes last.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from test_mariadb_native import (
    CONFIG,
    DB,
    INVENTORY,
    SCENARIO,
    host,
    sql,
    test_app_host_logs_in_and_writes_a_row,
    test_firewall_drops_all_but_the_app_host,
)

PLAYBOOK = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", "uninstall.yml")
FIREWALL = ["/etc/systemd/system/noticeboard-mariadb-firewall.service",
            "/usr/local/sbin/noticeboard-mariadb-firewall"]  # fmt: skip
CHAIN = "NOTICEBOARD-MARIADB"
KEPT = "/var/lib/mysql/noticeboard/molecule_probe.ibd"


def run(playbook: str, *extra: str) -> dict[str, int]:
    """Run a playbook against the scenario's hosts; each host's changed= count."""
    done = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, playbook, *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return {
        name: int(count)
        for name, count in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", done.stdout, re.M)
    }


def installed() -> bool:
    return host(DB).package("mariadb-server").is_installed


@pytest.mark.timeout(900)
def test_uninstall_removes_the_server_and_its_firewall_and_keeps_the_data():
    db = host(DB)
    if installed():
        test_app_host_logs_in_and_writes_a_row()
        rows = sql("SELECT COUNT(*) FROM noticeboard.molecule_probe")

        # --check reports and changes nothing.
        assert run(PLAYBOOK, "--check")[DB] > 0
        assert installed() and db.service("mariadb").is_running
        assert sql("SELECT COUNT(*) FROM noticeboard.molecule_probe") == rows

        assert run(PLAYBOOK)[DB] > 0

    assert not installed()
    assert not db.process.filter(comm="mariadbd")
    assert not db.file(CONFIG).exists
    for path in FIREWALL:
        assert not db.file(path).exists, path
    # The chain is gone, and no INPUT rule jumps to it.
    assert db.run(f"iptables -w 10 -S {CHAIN}").rc != 0
    assert CHAIN not in db.check_output("iptables -w 10 -S INPUT")
    # Removed, not purged: the databases stay for a later install.
    assert db.file(KEPT).exists

    # Nothing is left to do: a second run changes nothing anywhere.
    assert set(run(PLAYBOOK).values()) == {0}


@pytest.mark.timeout(900)
def test_the_role_serves_the_kept_data_again():
    if not installed():
        run(str(SCENARIO / "converge.yml"))
    assert host(DB).service("mariadb").is_running
    assert sql("SELECT COUNT(*) FROM noticeboard.molecule_probe")[0][0] != "0"
    test_firewall_drops_all_but_the_app_host()
    test_app_host_logs_in_and_writes_a_row()

"""playbooks/uninstall.yml on the native MariaDB host (and an app host that never had the
app): Debian's server, its drop-in and its firewall go, the databases stay, and the role
brings the same data back. Files run in name order: this one comes last.
"""

from __future__ import annotations

import pytest
from conftest import APP, CHAIN, CONFIG, DB, sql
from verifylib import converge, host_named, run_playbook

FIREWALL = ["/etc/systemd/system/noticeboard-mariadb-firewall.service",
            "/usr/local/sbin/noticeboard-mariadb-firewall"]  # fmt: skip


def installed() -> bool:
    return host_named(DB).package("mariadb-server").is_installed


@pytest.mark.timeout(900)
def test_uninstall_removes_the_server_and_its_firewall_and_keeps_the_data():
    db = host_named(DB)
    if installed():
        sql("CREATE TABLE IF NOT EXISTS noticeboard.uninstall_probe (body VARCHAR(64))")
        sql("INSERT INTO noticeboard.uninstall_probe VALUES ('written before the uninstall')")

        # --check reports and changes nothing.
        assert run_playbook("uninstall", check_mode=True).counter(DB) > 0
        assert installed() and db.service("mariadb").is_running

        assert run_playbook("uninstall").counter(DB) > 0

    assert not installed()
    assert not db.process.filter(comm="mariadbd")
    assert not db.file(CONFIG).exists
    for path in FIREWALL:
        assert not db.file(path).exists, path
    # The chain is gone, and no INPUT rule jumps to it.
    assert db.run(f"iptables -w 10 -S {CHAIN}").rc != 0
    assert CHAIN not in db.check_output("iptables -w 10 -S INPUT")
    # Removed, not purged: the databases stay for a later install.
    assert db.file("/var/lib/mysql/noticeboard/uninstall_probe.frm").exists

    # Nothing is left to do: a second run changes nothing on any host.
    again = run_playbook("uninstall")
    # localhost: the plays that take and give back the lock (roles/lock).
    changed = {host: row["changed"] for host, row in again.recap.items()}
    assert changed == {"localhost": 0, DB: 0, APP: 0}


@pytest.mark.timeout(900)
def test_the_role_serves_the_kept_data_again():
    if not installed():
        converge()
    assert host_named(DB).service("mariadb").is_running
    assert sql("SELECT body FROM noticeboard.uninstall_probe") == [["written before the uninstall"]]
    assert host_named(DB).service("noticeboard-mariadb-firewall").is_enabled

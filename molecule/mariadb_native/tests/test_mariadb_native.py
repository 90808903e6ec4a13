"""The mariadb role's native mode: Debian's MariaDB listens where the inventory says, the
app host logs in with the app's account and writes, any other host cannot even connect,
root logs in from the db host only, and running the role again changes nothing.

Commands go through `docker exec` (testinfra's docker backend): the hosts are Molecule's
containers, found by inventory group.
"""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
from conftest import APP, CHAIN, CONFIG, DB, sql
from verifylib import booted, converge, host_named, hosts_in, probe, variables

OTHER = next(h for h in hosts_in("all") if h not in (DB, APP))
DB_VARS = variables(
    DB,
    "noticeboard_mariadb_port",
    "noticeboard_mariadb_password",
    "noticeboard_mariadb_root_password",
)
PORT = int(DB_VARS["noticeboard_mariadb_port"])
DATABASE = "noticeboard"
USER = "noticeboard"
# The role's default: every address, with the firewall admitting the app host only.
BIND_ALL = "0.0.0.0"  # noqa: S104

# Runs on the app host: log in as the app, create a table, write a row, read it back.
APP_CLIENT = """
import sys, pymysql
conn = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3],
                       password=sys.argv[4], database=sys.argv[5], connect_timeout=10)
with conn, conn.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS molecule_probe"
                " (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(64))")
    cur.execute("INSERT INTO molecule_probe (body) VALUES (%s)", (sys.argv[6],))
    conn.commit()
    cur.execute("SELECT body FROM molecule_probe WHERE body = %s", (sys.argv[6],))
    print(cur.fetchone()[0])
"""

host = host_named


def address(name):
    return host(name).check_output("hostname -I").split()[0]


def probe_db(source):
    return probe(host(source), address(DB), PORT, timeout=3)


def test_server_listens_where_the_drop_in_says():
    config = host(DB).file(CONFIG)
    assert config.exists and config.user == "root" and config.mode == 0o644
    assert re.search(r"^bind-address = 0\.0\.0\.0$", config.content_string, re.M)
    assert re.search(rf"^port = {PORT}$", config.content_string, re.M)
    assert sql("SELECT @@port, @@bind_address, @@skip_name_resolve") == [[str(PORT), BIND_ALL, "1"]]
    # noticeboard_mariadb_max_allowed_packet's default: room for attachments in the database.
    assert sql("SELECT @@max_allowed_packet") == [[str(64 * 1024 * 1024)]]


def test_server_is_debians_package_not_a_container():
    assert host(DB).package("mariadb-server").is_installed
    assert not host(DB).exists("docker")
    assert host(DB).process.filter(comm="mariadbd")


def test_the_passwords_hold_what_used_to_need_escaping():
    for name in ("noticeboard_mariadb_password", "noticeboard_mariadb_root_password"):
        assert DB_VARS[name].endswith(" $HOME ${X:-y} $$ ' \" \\ # = @ / % : "), name


def test_app_host_logs_in_and_writes_a_row():
    password = DB_VARS["noticeboard_mariadb_password"]
    marker = f"from-{APP}"[:64]
    out = host(APP).check_output(
        "python3 -c %s %s %s %s %s %s %s",
        APP_CLIENT,
        address(DB),
        str(PORT),
        USER,
        password,
        DATABASE,
        marker,
    )
    assert out.strip() == marker
    assert [marker] in sql("SELECT body FROM noticeboard.molecule_probe")


def test_app_account_exists_for_the_app_host_only():
    assert sql("SELECT Host FROM mysql.user WHERE User = 'noticeboard'") == [[address(APP)]]


def test_other_host_cannot_connect():
    # The control: the same probe from the app host gets MariaDB's greeting.
    assert probe_db(APP).startswith("ok")
    result = probe_db(OTHER)
    assert result.startswith("error"), result


def test_firewall_drops_all_but_the_app_host():
    rules = host(DB).check_output(f"iptables -w 10 -S {CHAIN}").splitlines()
    accepted = [r for r in rules if "-j RETURN" in r]
    dropped = [r for r in rules if "-j DROP" in r]
    assert len(accepted) == 1 and f"-s {address(APP)}/32" in accepted[0]
    assert len(dropped) == 1 and f"--ctorigdstport {PORT}" in dropped[0]
    first = next(
        r
        for r in host(DB).check_output("iptables -w 10 -S INPUT").splitlines()
        if r.startswith("-A ")
    )
    assert first == f"-A INPUT -j {CHAIN}"


def test_root_logs_in_from_localhost_only():
    assert sql("SELECT Host FROM mysql.user WHERE User = 'root'") == [["localhost"]]
    root_password = DB_VARS["noticeboard_mariadb_root_password"]
    # The password works on the db host itself, for a system user the socket login refuses...
    local = host(DB).run(
        "su -s /bin/sh nobody -c %s",
        f"MYSQL_PWD={shlex.quote(root_password)} mariadb -uroot -e 'SELECT CURRENT_USER()'",
    )
    assert local.rc == 0 and "root@localhost" in local.stdout, local.stderr
    # ... and not from the app host, which the firewall does let through.
    remote = host(APP).run(
        "python3 -c %s %s",
        "import pymysql,sys\n"
        "try:\n"
        f"    pymysql.connect(host='{address(DB)}', port={PORT}, user='root',\n"
        "                    password=sys.argv[1], connect_timeout=5)\n"
        "    print('logged in')\n"
        "except pymysql.err.OperationalError as e:\n"
        "    print('refused', e.args[0])\n",
        root_password,
    )
    assert remote.stdout.startswith("refused 1045") or remote.stdout.startswith("refused 1130"), (
        remote.stdout
    )


# Molecule's idempotence step is left out (molecule.yml): this re-run is the check.
@pytest.mark.timeout(600)
def test_rerun_changes_nothing_and_keeps_the_server_running():
    uptime_before = int(sql("SHOW GLOBAL STATUS LIKE 'Uptime'")[0][1])
    run = converge()
    # converge.yml plays on the app and db hosts; `other` is only a client here.
    assert set(run.recap) == {DB, APP}, run.recap
    for name, counters in run.recap.items():
        assert (counters["changed"], counters["failed"]) == (0, 0), (name, run.changed_tasks())
    assert int(sql("SHOW GLOBAL STATUS LIKE 'Uptime'")[0][1]) >= uptime_before


def test_server_and_firewall_restore_are_systemd_units_enabled_at_boot():
    db = host(DB)
    assert db.service("mariadb").is_enabled and db.service("mariadb").is_running
    assert db.service("noticeboard-mariadb-firewall").is_enabled


@pytest.mark.timeout(300)
def test_after_a_reboot_the_server_and_its_firewall_come_back_by_themselves():
    # A reboot of the container: systemd boots again, with empty iptables chains and no
    # server, and no Ansible run in between.
    subprocess.run(["docker", "restart", DB], check=True, capture_output=True, timeout=120)
    assert booted(host(DB)) == "running", host(DB).run("systemctl --failed").stdout
    test_firewall_drops_all_but_the_app_host()
    test_other_host_cannot_connect()
    test_app_host_logs_in_and_writes_a_row()

"""Fault drills on the cluster. Each starts from release v1 serving on both app hosts
(the v1_serving fixture: a no-op after converge or after test_upgrade.py's rollback) and
ends with v1 serving through the load balancer, every note still there, and, where a
playbook stopped, a message that says what happened and what to do.

  e) the db host unreachable when upgrade.yml starts -> it stops before touching any host
  a) a migration that fails half-way                -> it stops before switching any host
  b) a new image that never becomes ready           -> that host goes back to v1, the run
                                                       stops with the other host serving
  c) an app container killed                        -> restarted by its policy; the load
                                                       balancer routes around it meanwhile
  d) dockerd restarted on an app host               -> the stack comes back
  f) every host rebooted at once                    -> Docker, MariaDB, the app, HAProxy
                                                       and the firewall come back with no
                                                       Ansible run
"""

from __future__ import annotations

import subprocess

import pytest
import test_security as security
from conftest import (
    APP_CONTAINER,
    APP_DIR,
    IMAGE,
    LB_NAME,
    LB_URL,
    address,
    both_servers_up,
    lb_servers,
    revision,
    running_image,
    sql,
    started_at,
    via_lb,
)
from verifylib import booted, run_playbook, wait_ready, wait_until


def notes(db) -> set[tuple[str, str]]:
    return {(row[0], row[1]) for row in sql(db, "SELECT id, title FROM notes")}


def serving_v1(lb, apps) -> None:
    assert {running_image(app) for app in apps} == {f"{IMAGE}:v1"}
    assert set(both_servers_up(lb).values()) == {"UP"}, lb_servers(lb)
    assert via_lb(lb, "GET", "/readyz").status == 200


@pytest.fixture
def before(lb, apps, db, v1_serving):
    serving_v1(lb, apps)
    assert via_lb(lb, "POST", "/api/notes", {"body": "written before the drill"}).status == 201
    return {"notes": notes(db), "started": [started_at(app) for app in apps]}


@pytest.mark.timeout(900)
def test_e_an_unreachable_db_host_stops_the_upgrade_before_any_app_host(lb, apps, db, before):
    db_container = db.backend.name
    subprocess.run(["docker", "pause", db_container], check=True)
    try:
        done = run_playbook("upgrade", "-e", "noticeboard_image_tag=upgrade-v2", ok=None)
    finally:
        subprocess.run(["docker", "unpause", db_container], check=True)
    said = done.said
    assert done.returncode != 0, said[-3000:]
    assert f"Ansible cannot reach the db host {db_container}" in said, said[-3000:]
    assert "No app host was changed" in said
    assert "PLAY [Back up before the upgrade]" not in done.stdout
    assert [started_at(app) for app in apps] == before["started"]
    for app in apps:
        assert not app.file(f"{APP_DIR}/release-previous.json").exists
    serving_v1(lb, apps)
    assert notes(db) >= before["notes"]


@pytest.mark.timeout(900)
def test_a_a_migration_failing_half_way_stops_before_any_host_switches(lb, apps, db, before):
    revision_before = revision(db)
    done = run_playbook("upgrade", "-e", "noticeboard_image_tag=upgrade-failing-migration", ok=None)
    said = done.said
    assert done.returncode != 0, said[-3000:]
    assert f"with {IMAGE}:upgrade-failing-migration failed" in said, said[-3000:]
    assert "No app host was switched; the previous release still serves" in said
    assert "playbooks/restore.yml -e noticeboard_restore_backup=" in said
    assert "PLAY [Switch the app hosts one at a time]" not in done.stdout
    assert [started_at(app) for app in apps] == before["started"]
    assert revision(db) == revision_before
    serving_v1(lb, apps)
    assert notes(db) >= before["notes"]


@pytest.mark.timeout(900)
def test_b_a_release_that_never_gets_ready_is_rolled_back_on_its_host(lb, apps, db, before):
    first, second = apps
    done = run_playbook(
        "upgrade",
        "-e",
        "noticeboard_image_tag=upgrade-never-ready",
        "-e",
        "noticeboard_wait_timeout=30",
        ok=None,
    )
    said = done.said
    name = first.backend.name
    assert done.returncode != 0, said[-3000:]
    assert f"Upgrading {name} to {IMAGE}:upgrade-never-ready failed" in said, said[-3000:]
    assert f"{name} was rolled back to {IMAGE}:v1 and serves again" in said
    assert "the hosts after it were not touched" in said
    assert started_at(first) != before["started"][0]
    assert started_at(second) == before["started"][1]
    serving_v1(lb, apps)
    assert notes(db) >= before["notes"]


@pytest.mark.timeout(900)
def test_c_a_killed_app_container_restarts_and_the_lb_routes_around_it(lb, apps, db, before):
    victim = apps[0]
    restarts = int(victim.check_output("docker inspect -f '{{.RestartCount}}' %s", APP_CONTAINER))
    pid = victim.check_output("docker inspect -f '{{.State.Pid}}' %s", APP_CONTAINER)
    # A crash, not `docker kill`: the daemon counts a kill as a manual stop and would not
    # restart the container.
    victim.check_output("kill -KILL %s", pid)
    wait_until(
        lambda: victim.check_output("docker inspect -f '{{.State.Pid}}' %s", APP_CONTAINER) != pid,
        "the killed process gone",
    )
    answers = [via_lb(lb, "GET", "/api/notes?limit=1").status for _ in range(10)]
    answers += [
        via_lb(lb, "POST", "/api/notes", {"body": f"after the kill {i}"}).status for i in range(5)
    ]
    assert answers == [200] * 10 + [201] * 5
    wait_until(
        lambda: (
            int(victim.check_output("docker inspect -f '{{.RestartCount}}' %s", APP_CONTAINER))
            > restarts
        ),
        "the container restarted by its policy",
    )
    serving_v1(lb, apps)
    assert notes(db) >= before["notes"]


@pytest.mark.timeout(900)
def test_d_the_stack_comes_back_after_dockerd_restarts(lb, apps, db, before):
    host = apps[1]
    host.check_output("systemctl restart docker")
    wait_until(
        lambda: (
            host.run(
                "docker inspect -f '{{.State.Health.Status}}' %s", APP_CONTAINER
            ).stdout.strip()
            == "healthy"
        ),
        "the app container healthy again",
    )
    assert started_at(host) != before["started"][1]
    serving_v1(lb, apps)
    assert notes(db) >= before["notes"]
    # Docker rebuilt its chains: the app's port still answers the lb host only.
    security.test_the_app_port_answers_the_lb_hosts_only(lb, db, [host])


@pytest.mark.timeout(900)
def test_f_every_host_comes_back_by_itself_after_a_reboot(lb, apps, db, db_address, before):
    # All four restarted at once, as after a power cut: systemd boots each again with
    # empty iptables chains and a fresh /run, and no Ansible runs afterwards.
    hosts = [lb, *apps, db]
    names = [host.backend.name for host in hosts]
    subprocess.run(["docker", "restart", "-t", "60", *names], check=True, timeout=600)
    for host in hosts:
        assert booted(host, timeout=180) == "running", (
            host.backend.name,
            host.run("systemctl --failed").stdout,
        )
        assert host.service("docker").is_enabled, host.backend.name
        assert host.service("docker").is_running, host.backend.name
    # The hosts kept their addresses, as servers on a LAN do.
    assert address(db) == db_address
    ready = wait_ready(lb, f"{LB_URL}/readyz", host_header=LB_NAME, within=300)
    assert ready.status == 200, f"not within 300 s: /readyz through the load balancer {ready.text}"
    serving_v1(lb, apps)
    assert notes(db) >= before["notes"]
    # The database's firewall is back before anyone re-applies it: app hosts in, lb out.
    security.test_the_app_hosts_reach_mariadb(apps, db_address)
    security.test_the_lb_host_cannot_connect_to_mariadb(lb, db, apps, db_address)
    security.test_the_app_port_answers_the_lb_hosts_only(lb, db, apps[:1])

"""playbooks/uninstall.yml on the load balancer alone (--limit to the lb host): HAProxy's
container, network, image and directory go (it keeps no data), the app hosts behind it
serve on untouched, a second run changes nothing, and the load balancer's part of site.yml
puts HAProxy back in front of both. Runs last (conftest.ORDER) and leaves HAProxy as
site.yml sets it up.
"""

from __future__ import annotations

import pytest
from conftest import (
    APP_CONTAINER,
    LB_DIR,
    converge_lb,
    group,
    lb_as_site_made_it,
    lb_installed,
    served_by,
    started_at,
)
from verifylib import http, run_playbook, variables

PROJECT = "label=com.docker.compose.project=noticeboard-lb"
LIMIT = ",".join([*group("lb"), "localhost"])


def leftovers(lb) -> str:
    return lb.check_output(
        f"docker ps --all --quiet --filter {PROJECT}; docker network ls --quiet --filter {PROJECT}"
    )


@pytest.mark.timeout(1200)
def test_uninstall_removes_haproxy_and_leaves_the_app_hosts_alone(lb, apps):
    image = variables(group("lb")[0], "noticeboard_lb_image")["noticeboard_lb_image"]
    app_started = [started_at(app) for app in apps]
    if lb_installed(lb):
        assert leftovers(lb)
        # --check reports and changes nothing.
        assert run_playbook("uninstall", check_mode=True, limit=LIMIT).counter(lb.backend.name) > 0
        assert lb_installed(lb) and leftovers(lb)

        assert run_playbook("uninstall", limit=LIMIT).counter(lb.backend.name) > 0

    assert not lb.file(LB_DIR).exists
    assert leftovers(lb) == ""
    assert lb.run("docker image inspect %s", image).rc != 0
    # Docker stays (its removal was not asked for); the app hosts serve on, untouched.
    assert lb.service("docker").is_running
    assert [started_at(app) for app in apps] == app_started
    for app in apps:
        assert app.check_output("docker inspect -f '{{.State.Status}}' %s", APP_CONTAINER) == (
            "running"
        )
        assert http(app, "GET", "http://127.0.0.1:8000/readyz").status == 200, app.backend.name

    # Nothing is left to do: a second run changes nothing on any host.
    again = run_playbook("uninstall", limit=LIMIT)
    assert {row["changed"] for row in again.recap.values()} == {0}, again.changed_tasks()


@pytest.mark.timeout(1200)
def test_the_role_puts_haproxy_back(lb, db):
    if not lb_installed(lb):
        converge_lb()
    assert lb_as_site_made_it(lb)
    assert served_by(lb, db) == set(group("app"))
